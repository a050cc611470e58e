"""Argument checks shared by the attention layers.

Every check raises a ``ValueError``/``TypeError`` whose message names the argument and says
"Expected ... Received: ...", so that a wrong shape is found at the call that caused it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def check_tensor(x: object, name: str, *, ndim: int | Sequence[int] | None = None) -> Tensor:
    """Check that ``x`` is a floating tensor with one of the allowed ranks; return it."""
    if not isinstance(x, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor. Received: {name}={type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            ranks = " or ".join(str(r) for r in allowed)
            raise ValueError(
                f"Expected `{name}` of rank {ranks}. Received: {name}.shape={tuple(x.shape)}"
            )
    return x


def check_last_dim(x: Tensor, name: str, expected: int) -> None:
    """Check the feature size of a built layer's input."""
    if x.shape[-1] != expected:
        raise ValueError(
            f"Expected `{name}` with last dimension {expected} (the size this layer was built with). "
            f"Received: {name}.shape={tuple(x.shape)}"
        )


def check_mask(mask: Tensor | None, name: str, expected: Sequence[int]) -> Tensor | None:
    """Check a boolean mask against an expected shape (size-1 dims broadcast); return it.

    ``expected`` is the full shape the mask must broadcast to without adding dimensions.
    """
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"Expected `{name}` to be a bool torch.Tensor. Received: {name}={type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"Expected `{name}` of dtype torch.bool (True = may attend / real token). "
            f"Received: {name}.dtype={mask.dtype}"
        )
    expected = tuple(int(s) for s in expected)
    ok = mask.dim() == len(expected) and all(
        m == e or m == 1 for m, e in zip(mask.shape, expected, strict=True)
    )
    if not ok:
        raise ValueError(f"Expected `{name}` of shape {expected}. Received: {name}.shape={tuple(mask.shape)}")
    return mask


def check_dropout(dropout: float) -> None:
    """Check a dropout rate is in ``[0, 1)``."""
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"Expected `dropout` in [0, 1). Received: dropout={dropout!r}")


def check_query_keys(
    query: object, keys: object, key_mask: Tensor | None, query_size: int, key_size: int
) -> tuple[int, int]:
    """Check a recurrent-decoder attention call; return ``(B, Tk)``.

    ``query`` ``(B, Dq)`` or ``(B, Tq, Dq)``, ``keys`` ``(B, Tk, Dk)`` with ``Dq == query_size`` and
    ``Dk == key_size``, ``key_mask`` bool ``(B, Tk)`` or None.
    """
    query = check_tensor(query, "query", ndim=(2, 3))
    keys = check_tensor(keys, "keys", ndim=3)
    check_last_dim(query, "query", query_size)
    check_last_dim(keys, "keys", key_size)
    b, tk = keys.shape[0], keys.shape[1]
    if query.shape[0] != b:
        raise ValueError(
            f"Expected query and keys with the same batch size. Received: query.shape={tuple(query.shape)}, "
            f"keys.shape={tuple(keys.shape)}"
        )
    check_mask(key_mask, "key_mask", (b, tk))
    return b, tk
