"""Small parts of :class:`attnkit.layers.MultiHeadAttention`: argument checks, the projection view,
mask helpers.

Shape legend: B batch, H query heads, Tq/Tk query/key positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from attnkit.functional.masks import misaligned_batch_mask
from attnkit.kernels import linear
from attnkit.layers._checks import check_dropout, check_mask


def positive_int(value: object, name: str, *, allow_none: bool = False) -> None:
    """Raise unless ``value`` is a positive int (or None when allowed)."""
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={value!r}")


def check_head_args(num_heads: int, key_dim: int, value_dim: int | None, num_key_value_heads: int | None,
                    dropout: float) -> int:
    """Check the head arguments of ``MultiHeadAttention``; return the number of key/value heads."""
    positive_int(num_heads, "num_heads")
    positive_int(key_dim, "key_dim")
    positive_int(value_dim, "value_dim", allow_none=True)
    positive_int(num_key_value_heads, "num_key_value_heads", allow_none=True)
    check_dropout(dropout)
    kv_heads = num_heads if num_key_value_heads is None else num_key_value_heads
    if num_heads % kv_heads:
        raise ValueError(
            "Expected `num_heads` to be divisible by `num_key_value_heads`. "
            f"Received: num_heads={num_heads}, num_key_value_heads={num_key_value_heads}"
        )
    return kv_heads


def int_tuple(value: int | Sequence[int] | None, name: str, *, positive: bool) -> tuple[int, ...] | None:
    """``output_shape`` / ``attention_axes``: an int or a non-empty sequence of ints, as a tuple."""
    if value is None:
        return None
    value = (value,) if isinstance(value, int) else tuple(value)
    if not value or any(not isinstance(s, int) or (positive and s <= 0) for s in value):
        kind = "a positive int or a tuple of them" if positive else "an int or a tuple of ints"
        raise ValueError(f"Expected `{name}` to be {kind}. Received: {name}={value}")
    return value


def input_widths(query_dim: int | None, key_dim_in: int | None, value_dim_in: int | None) -> tuple[int, int, int] | None:
    """The (query, value, key) input widths given up front, defaults filled in; None when none is given."""
    if query_dim is None and value_dim_in is None and key_dim_in is None:
        return None
    q = query_dim if query_dim is not None else (value_dim_in or key_dim_in)
    v = value_dim_in if value_dim_in is not None else (key_dim_in or q)
    k = key_dim_in if key_dim_in is not None else v
    return q, v, k  # type: ignore[return-value]


@dataclass(frozen=True)
class Projection:
    """One input projection ``x -> x W^T + b`` over views of ``MultiHeadAttention``'s parameters.

    ``weight`` ``(out, in)``, ``bias`` ``(out,)`` or ``None``; writing into them (e.g. ``copy_`` under
    ``torch.no_grad()``) writes into the layer.

    Example:
        >>> import torch
        >>> p = Projection(torch.eye(3), None)
        >>> p(torch.ones(2, 3)).tolist(), p.in_features
        ([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], 3)
    """

    weight: Tensor
    bias: Tensor | None

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def __call__(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


def both(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    """``a & b`` where either may be None (= everything allowed)."""
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def inverse(perm: list[int]) -> list[int]:
    """The inverse permutation of ``perm``."""
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def sequence_attention_mask(mask: object, b: int, h: int, tq: int, tk: int) -> Tensor:
    """Bring an ``attention_mask`` of shape ``(Tq, Tk)``, ``(B, Tq, Tk)`` or ``(B, H, Tq, Tk)`` to a
    rank-4 (or rank-2) mask broadcastable to ``(B, H, Tq, Tk)``. A rank-3 mask is Keras's ``(B, Tq, Tk)``.

    A rank-2 mask whose first axis has the batch size ``B > 1`` is refused (Keras refuses every rank-2
    ``attention_mask``): it is most likely a ``(B, Tk)`` padding mask, which ``value_mask`` takes, and read as
    ``(Tq, Tk)`` it would put weight on padding whenever ``B == Tq``
    (:func:`attnkit.functional.masks.misaligned_batch_mask`, the rule of ``attention(mask=)`` too)."""
    if not isinstance(mask, Tensor) or mask.dim() not in (2, 3, 4):
        got = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(
            f"Expected `attention_mask` of shape (Tq, Tk) = {(tq, tk)}, (B, Tq, Tk) = {(b, tq, tk)} or "
            f"(B, H, Tq, Tk) = {(b, h, tq, tk)}. "
            f"Received: attention_mask.shape={got}"
        )
    if misaligned_batch_mask(tuple(mask.shape), (b,)):  # (B, Tk) would be read as (Tq, Tk): refused, not guessed
        raise ValueError(
            f"Expected `attention_mask` as a pair mask (B, Tq, Tk) = {(b, tq, tk)}, or (Tq, Tk) shared by a batch of "
            f"another size. Received: attention_mask.shape={tuple(mask.shape)} with batch size B = {b}, which reads as "
            "a (B, Tk) padding mask: pass it as value_mask=pad (True = real token), or a pair mask shared by the "
            "batch as attention_mask=m[None]"
        )
    full = {2: (tq, tk), 3: (b, tq, tk), 4: (b, h, tq, tk)}[mask.dim()]
    mask = check_mask(mask, "attention_mask", full)  # bool (0/1 masks cast, as in Keras)
    if mask.dim() == 3:
        return mask[:, None]  # (B, 1, Tq, Tk)
    return mask  # (Tq, Tk) or (B, H, Tq, Tk)
