"""``AttentionKind``: the small module every sub-quadratic attention kind is, and what it is called with.

A kind is passed as ``attention(..., kind=obj)`` or ``MultiHeadAttention(..., kind=obj)`` (or named by a
string, see :func:`attnkit.functional.kinds.resolve_kind`). :func:`attnkit.functional.attention` checks
the arguments, turns the mask into a key padding mask, expands the leading dims and calls
``kind(query, key, value, key_mask=..., causal=..., scale=..., dropout_p=..., return_weights=...,
chunk_size=...)``.

Shape legend: ``...`` leading dims (the same for every input), Tq/Tk query/key length, Dk, Dv widths.
"""

from __future__ import annotations

from torch import Tensor, nn


class AttentionKind(nn.Module):
    """Base of the attention kinds (parameter-free modules: a Performer holds its random features as a buffer).

    Call arguments:
        query: ``(..., Tq, Dk)``; key: ``(..., Tk, Dk)``; value: ``(..., Tk, Dv)``, at least float32.
        key_mask: ``(..., Tk)`` bool, True = may attend, or None.
        causal: query ``i`` attends keys ``j <= i`` only.
        scale: the factor of the dot products.
        dropout_p: dropout on the attention weights (only the exact kinds have weights to drop).
        return_weights: also return the ``(..., Tq, Tk)`` weights (materialised).
        chunk_size: the kind's work unit (query block or prefix-sum chunk) or None for its default.

    Returns:
        ``(output (..., Tq, Dv), weights (..., Tq, Tk) or None)``.

    Example:
        >>> from attnkit.functional.kinds import AttentionKind, LinearAttention
        >>> isinstance(LinearAttention(), AttentionKind), LinearAttention().name
        (True, 'linear')
    """

    name = "kind"
    #: whether ``dropout_p > 0`` means something (the exact kinds drop attention weights)
    supports_dropout = False

    def forward(self, query: Tensor, key: Tensor, value: Tensor, *, key_mask: Tensor | None, causal: bool,
                scale: float, dropout_p: float, return_weights: bool,
                chunk_size: int | None) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options().items())

    def options(self) -> dict:
        """The kind's settings (for ``repr`` and reports)."""
        return {}
