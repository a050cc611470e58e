"""Pieces shared by the attention kinds: the masks they accept, a NaN-free masked softmax, dtypes.

Every kind accepts a **key padding mask** only: a bool ``mask`` broadcastable to ``(..., Tq, Tk)`` whose
query axis has size 1, e.g. ``(B, 1, Tk)``, ``(B, 1, 1, Tk)`` or ``(Tk,)`` (True = may attend), and
``causal=True``. A pair mask ``(..., Tq, Tk)`` would undo what makes a kind cheap, so it is refused with
an "Expected ... Received: ..." error naming the kind.

Shape legend: ``...`` leading dims (batch, heads), Tq query length, Tk key length, D width.
"""

from __future__ import annotations

import torch
from torch import Tensor


def key_padding(mask: Tensor | None, batch: torch.Size, tk: int, kind: str) -> Tensor | None:
    """``mask`` as a key padding mask ``(..., Tk)`` expanded over the leading dims ``batch``, or None.

    Example:
        >>> import torch
        >>> key_padding(torch.tensor([[[True, False]]]), torch.Size([3]), 2, "linear").shape
        torch.Size([3, 2])
    """
    if mask is None:
        return None
    if mask.dim() >= 2 and mask.shape[-2] != 1:
        raise ValueError(
            f"Expected a key padding mask for kind={kind!r}: bool, broadcastable to (..., 1, Tk), e.g. "
            f"key_mask[:, None, :]; pair masks (..., Tq, Tk) are not supported by this kind. "
            f"Received: mask of shape {tuple(mask.shape)}"
        )
    keys = mask if mask.dim() < 2 else mask[..., 0, :]  # (..., Tk)
    return keys.expand(*batch, tk)


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """The dtype the kinds compute in: the promoted input dtype, at least float32."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return torch.promote_types(dtype, torch.float32)


def safe_softmax(scores: Tensor, allowed: Tensor) -> Tensor:
    """Softmax over the last axis of the allowed entries; rows with none allowed are zeros (never NaN).

    Example:
        >>> import torch
        >>> safe_softmax(torch.zeros(2, 2), torch.tensor([[True, True], [False, False]]))
        tensor([[0.5000, 0.5000],
                [0.0000, 0.0000]])
    """
    s = scores.masked_fill(~allowed, float("-inf"))  # its backward zeroes the gradient of masked entries
    w = torch.softmax(s, dim=-1)
    return w.masked_fill(~allowed.any(dim=-1, keepdim=True), 0.0)  # all-masked rows were NaN


def expand_leading(t: Tensor, batch: torch.Size) -> Tensor:
    """``t (..., T, D)`` expanded (a view) to the leading dims ``batch``."""
    return t if t.shape[:-2] == batch else t.expand(*batch, *t.shape[-2:])
