"""``AttentionRecord``: everything the pictures and the HTML explorer show about one input, as plain tensors.

An adapter of the application floor (``attnkit.recipes.records``) fills one from a model through its public API; the pictures and the
explorer read only this record, never a model.

Shape legend: L layers, H heads, T input tokens, T_out output tokens, R image regions (a gh x gw grid).

Example:
    >>> import torch
    >>> rec = AttentionRecord(model_type="bert", tokens=["[CLS]", "hi", "[SEP]"],
    ...                       attentions=tuple(torch.softmax(torch.randn(2, 3, 3), -1) for _ in range(4)))
    >>> rec.num_layers, rec.num_heads, rec.has_layers
    (4, 2, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor


@dataclass
class AttentionRecord:
    """The attention of one model on one input.

    Attributes:
        model_type: the model's type (``"bert"``, ``"gpt2"``, ``"seq2seq"``, ``"transformer"``, ``"captioner"``, ...).
        tokens: the ``T`` input tokens as displayed (rows and columns of the self-attention).
        attentions: per-layer ``(H, T, T)`` self-attention weights (``None`` for models without self-attention).
        gradients: per-layer ``dy/dA`` of the same shapes for the chosen output ``y`` (``--method grad``), or None.
        out_tokens: ``T_out`` output tokens (translation, caption), or None.
        alignment: ``(T_out, T)`` encoder-decoder weights (seq2seq, transformer), or None.
        image: ``(h, w, 3)`` uint8 image (captioner), or None.
        image_attention: ``(T_out, R)`` weights over the image regions, R = gh * gw, or None.
        region_grid: ``(gh, gw)`` of the image regions, or None.
        word_weights: ``(T,)`` weights of a single attention over the input (classifier), or None.
        output: what the model produced (translation, caption, ``label (p=0.93)``, next token), for titles.
        notes: extra lines shown by the explorer (e.g. the output ``y`` the gradients are of).
        derived: rollout, flow and grad maps once computed (``attnkit.viz.methods``), so each is computed once.
        text: the input as the user wrote it (the explorer's header), or "".
        model_name: the model as the user named it (a directory's name), for the explorer's header, or "".
    """

    model_type: str
    tokens: list[str]
    attentions: tuple[Tensor, ...] | None = None
    gradients: tuple[Tensor, ...] | None = None
    out_tokens: list[str] | None = None
    alignment: Tensor | None = None
    image: np.ndarray | None = None
    image_attention: Tensor | None = None
    region_grid: tuple[int, int] | None = None
    word_weights: Tensor | None = None
    output: str = ""
    notes: list[str] = field(default_factory=list)
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    text: str = ""
    model_name: str = ""

    @property
    def has_layers(self) -> bool:
        """True when there are per-layer multi-head self-attention weights (raw/rollout/flow apply)."""
        return bool(self.attentions)

    @property
    def num_layers(self) -> int:
        return len(self.attentions) if self.attentions else 0

    @property
    def num_heads(self) -> int:
        return int(self.attentions[0].shape[0]) if self.attentions else 0

    def batched(self) -> tuple[Tensor, ...]:
        """The attentions as the per-layer ``(1, H, T, T)`` tuple the interpretability functions take."""
        if not self.attentions:
            raise ValueError(f"a {self.model_type} model has no per-layer self-attention; rollout, flow and grad need it "
                             f"(use --method raw)")
        return tuple(a.unsqueeze(0) for a in self.attentions)


__all__ = ["AttentionRecord"]
