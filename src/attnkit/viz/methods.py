"""The matrices of the ``--method`` choices for one :class:`AttentionRecord`, each computed once per record.

Shape legend: L layers, H heads, T tokens.

Example:
    >>> import torch
    >>> from attnkit.viz.record import AttentionRecord
    >>> rec = AttentionRecord("bert", list("abc"), tuple(torch.softmax(torch.randn(2, 3, 3), -1) for _ in range(4)))
    >>> method_matrix(rec, "rollout").shape, method_matrix(rec, "raw", layer=1).shape
    (torch.Size([3, 3]), torch.Size([3, 3]))
"""

from __future__ import annotations

import torch

from attnkit.viz.interpret import attention_flow, attention_rollout, gradient_weighted_attention
from attnkit.viz.record import AttentionRecord

METHODS = ("raw", "rollout", "flow", "grad")


def grad_maps(rec: AttentionRecord) -> torch.Tensor:
    """``(L, T, T)`` gradient-weighted attention of every layer (computed once, kept in ``rec.derived``)."""
    if "grad" not in rec.derived:
        if rec.gradients is None:
            raise ValueError("Expected a record with gradients for method 'grad'. Received: gradients=None")
        rec.derived["grad"] = gradient_weighted_attention(rec.batched(), tuple(g.unsqueeze(0) for g in rec.gradients))[:, 0]
    return rec.derived["grad"]


def method_matrix(rec: AttentionRecord, method: str, layer: int = -1) -> torch.Tensor:
    """``(T, T)`` float64: raw = mean of the heads of ``layer``; rollout; flow; grad = ``grad_maps`` at ``layer``."""
    if method == "raw":
        return rec.attentions[layer].double().mean(0)
    if method == "grad":
        return grad_maps(rec)[layer]
    if method not in METHODS:
        raise ValueError(f"Expected method in {METHODS}. Received: {method!r}")
    if method not in rec.derived:
        fn = attention_rollout if method == "rollout" else attention_flow
        rec.derived[method] = fn(rec.batched())[0]
    return rec.derived[method]


__all__ = ["METHODS", "grad_maps", "method_matrix"]
