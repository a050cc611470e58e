"""Output objects of attnkit's models.

A model's ``forward`` returns one of these dataclasses, never a bare tuple. The field names are the
ones users of the ``transformers`` library know, so ``out.last_hidden_state`` or ``out.logits`` read
the same in both.

Shape legend: B batch, T positions of this call, S key positions (cached + new), D width,
H heads, V vocabulary size, C classes, L layers (for the captioner: image regions).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from torch import Tensor


class ModelOutput:
    """Indexing of ``transformers``' ``ModelOutput`` for the output dataclasses: by name (``out["logits"]``),
    by position over the fields that are not None, loss first (``out[0]``, ``out[:2]``), ``to_tuple()``, ``keys()``,
    ``items()``, ``"loss" in out`` and ``**out``; attributes (``out.logits``) as before.

    Example:
        >>> import torch
        >>> out = CausalLMOutput(logits=torch.zeros(1, 2, 3))
        >>> out[0] is out["logits"] is out.logits, len(out.to_tuple()), "loss" in out
        (True, 1, False)
    """

    def keys(self) -> list[str]:
        """Names of the fields that are not None, ``loss`` first (as ``transformers`` orders them, so that
        ``out[0]`` is the loss when labels were given), then the others in order."""
        names = [f.name for f in fields(self) if getattr(self, f.name) is not None]  # type: ignore[arg-type]
        return sorted(names, key=lambda name: name != "loss")  # stable: only moves "loss" to the front

    def to_tuple(self) -> tuple[Any, ...]:
        """The fields that are not None, in order."""
        return tuple(getattr(self, k) for k in self.keys())

    def values(self) -> list[Any]:
        return list(self.to_tuple())

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(f"{key!r}: expected one of {self.keys()} (fields that are not None)")
            return getattr(self, key)
        return self.to_tuple()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())


@dataclass
class EncoderOutput(ModelOutput):
    """Output of an encoder such as :class:`attnkit.models.Bert`.

    Attributes:
        last_hidden_state: ``(B, T, D)`` hidden states after the last layer.
        pooler_output: ``(B, D)`` ``tanh(W h_[CLS] + b)``, or None for a model without a pooler.
        hidden_states: with ``output_hidden_states=True``, a tuple of L + 1 tensors ``(B, T, D)``:
            the embeddings, then the output of each layer.
        attentions: with ``output_attentions=True``, a tuple of L per-head weights ``(B, H, T, T)``.
    """

    last_hidden_state: Tensor
    pooler_output: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class CausalLMOutput(ModelOutput):
    """Output of a causal language model such as :class:`attnkit.models.GPT`.

    Attributes:
        logits: ``(B, T, V)`` next-token scores before the softmax.
        loss: scalar mean cross-entropy of ``logits[:, t]`` against ``labels[:, t + 1]`` when labels
            were given, else None.
        past_key_values: with ``use_cache=True``, the list of per-layer :class:`attnkit.layers.KVCache`
            holding keys and values ``(B, H, S, Dh)``; pass it back to continue.
        hidden_states: with ``output_hidden_states=True``, L + 1 tensors ``(B, T, D)``: the input of
            every block, then the final (normalised) output.
        attentions: with ``output_attentions=True``, L per-head weights ``(B, H, T, S)``.
    """

    logits: Tensor
    loss: Tensor | None = None
    past_key_values: object | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class MaskedLMOutput(ModelOutput):
    """Output of a masked language model head.

    Attributes:
        logits: ``(B, T, V)`` scores of the token at each position.
        loss: mean cross-entropy over positions whose label is not -100, or None.
        hidden_states, attentions: as in :class:`EncoderOutput`.
    """

    logits: Tensor
    loss: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class PreTrainingOutput(ModelOutput):
    """Output of the BERT pretraining heads (masked LM + next-sentence prediction).

    Attributes:
        prediction_logits: ``(B, T, V)`` masked-LM scores.
        seq_relationship_logits: ``(B, 2)`` next-sentence scores (index 0 = "B follows A").
        loss: masked-LM loss + next-sentence loss when both label sets were given, else None.
        hidden_states, attentions: as in :class:`EncoderOutput`.
    """

    prediction_logits: Tensor
    seq_relationship_logits: Tensor
    loss: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    """Output of a sequence-classification head.

    Attributes:
        logits: ``(B, C)`` class scores.
        loss: mean cross-entropy against ``labels`` ``(B,)``, or None.
        hidden_states, attentions: as in :class:`EncoderOutput`.
    """

    logits: Tensor
    loss: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class Seq2SeqOutput(ModelOutput):
    """Output of :meth:`Seq2Seq.forward` (teacher forcing).

    Attributes:
        logits: ``(B, T, V)`` next-token scores.
        alignments: ``(B, T, S)`` alignment weights ``a_ij``, or ``None`` for ``attention="none"``.
        loss: mean cross-entropy over non-pad targets when ``tgt_out`` was given, else ``None``.
    """

    logits: Tensor
    alignments: Tensor | None = None
    loss: Tensor | None = None


@dataclass
class TransformerOutput(ModelOutput):
    """Output of :meth:`Transformer.forward` (teacher forcing).

    Attributes:
        logits: ``(B, T, V)`` next-token scores.
        loss: label-smoothed cross-entropy over non-pad targets when ``tgt_out`` was given, else ``None``.
        encoder_last_hidden_state: ``(B, S, D)`` encoder output (the memory the decoder attends to).
        alignments: with ``output_attentions=True``, ``(B, T, S)``: last decoder layer's cross-attention
            averaged over heads (the alignment ``translate`` returns).
        encoder_attentions, decoder_attentions, cross_attentions: with ``output_attentions=True``, one
            per-head weight tensor per layer: ``(B, H, S, S)``, ``(B, H, T, T)``, ``(B, H, T, S)``.
    """

    logits: Tensor
    loss: Tensor | None = None
    encoder_last_hidden_state: Tensor | None = None
    alignments: Tensor | None = None
    encoder_attentions: tuple[Tensor, ...] | None = None
    decoder_attentions: tuple[Tensor, ...] | None = None
    cross_attentions: tuple[Tensor, ...] | None = None


@dataclass
class CaptionerOutput(ModelOutput):
    """Output of :meth:`attnkit.models.Captioner.forward` (teacher forcing).

    Attributes:
        logits: ``(B, T, V)`` next-word scores.
        alignments: ``(B, T, L)`` attention over the L image regions at each step (rows sum to 1).
        loss: the training loss when ``tgt_out`` was given (cross-entropy + penalty, or the REINFORCE
            surrogate), else None.
        sample_log_probs: hard attention: ``(B, T)`` ``log p(s_t)`` of the chosen regions; else None.
    """

    logits: Tensor
    alignments: Tensor
    loss: Tensor | None = None
    sample_log_probs: Tensor | None = None


@dataclass
class ClassifierOutput(ModelOutput):
    """Output of :meth:`attnkit.models.AttentionClassifier.forward`.

    Attributes:
        logits: ``(B, 1)`` for two classes (the logit of ``labels[1]``), else ``(B, C)``.
        loss: mean cross-entropy (binary: of the sigmoid) when labels were given, else None.
        attentions: with ``output_attentions=True`` and self-attention, a 1-tuple of weights ``(B, H, T, T)``
            (``H = 1`` for ``"dot"``).
        word_weights: ``(B, T)`` weights over the words that sum to 1 over the real words: the pooling
            weights (attention pooling, always), or the self-attention each word received (max/mean pooling,
            with ``output_attentions=True``); else None.
    """

    logits: Tensor
    loss: Tensor | None = None
    attentions: tuple[Tensor, ...] | None = None
    word_weights: Tensor | None = None


class BlockOutput(NamedTuple):
    """What a Transformer block returns (:mod:`attnkit.models.blocks`): ``hidden (B, T, D)``; ``self_weights
    (B, H, T, S)`` and ``cross_weights (B, H, T, S_src)`` when asked for, else None.

    Example:
        >>> import torch
        >>> BlockOutput(torch.zeros(2, 3, 4)).cross_weights is None
        True
    """

    hidden: Tensor
    self_weights: Tensor | None = None
    cross_weights: Tensor | None = None
