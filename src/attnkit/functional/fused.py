"""The fused path of :mod:`attnkit.functional.dispatch`: torch's ``scaled_dot_product_attention`` (SDPA).

Taken for the named scores (dot, scaled_dot, cosine) when the weights are not asked for; SDPA's
memory-efficient kernels never build the ``(..., Tq, Tk)`` matrix. It equals the reference path
``masked_softmax(scale * q k^T + bias, mask) @ v`` (tested against it and against float64).

Shape legend: ``...`` leading dims, folded to SDPA's 4-D ``(N, H, T, D)`` with ``N * H = prod(...)``;
Tq query length, Tk key length, Dk query/key width, Dv value width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.functional._checks import batch_shape, with_causal
from attnkit.functional._named import unit_rows


def _to_4d(t: Tensor, batch: torch.Size) -> Tensor:
    if t.shape[:-2] != batch:
        t = t.expand(*batch, *t.shape[-2:])
    if t.dim() == 4:
        return t
    if t.dim() < 4:
        return t.reshape((1,) * (4 - t.dim()) + tuple(t.shape))
    return t.reshape(-1, 1, *t.shape[-2:])


def _at_least_2d(t: Tensor | None) -> Tensor | None:
    """A mask or bias of fewer than 2 dims (``(Tk,)`` or a scalar) as ``(1, Tk)`` / ``(1, 1)``: the same broadcast."""
    return t if t is None or t.dim() >= 2 else t.reshape(*(1,) * (2 - t.dim()), *t.shape)


def fused_path(query: Tensor, key: Tensor, value: Tensor, *, score: object, scale: float, mask: Tensor | None,
               causal: bool, dropout_p: float, return_weights: bool, chunk_size: int | None, bias: Tensor | None,
               kind: object) -> tuple[Tensor, None]:
    """SDPA for dot / scaled_dot / cosine (cosine = dot of unit vectors): ``(output (..., Tq, Dv), None)``.

    Example:
        >>> q = k = v = torch.randn(2, 3, 5, 4)
        >>> out, _ = fused_path(q, k, v, score="dot", scale=0.5, mask=None, causal=True, dropout_p=0.0,
        ...                     return_weights=False, chunk_size=None, bias=None, kind=None)
        >>> out.shape
        torch.Size([2, 3, 5, 4])
    """
    if score not in ("dot", "scaled_dot", "cosine") or return_weights:
        raise ValueError(f"Expected a named score and return_weights=False on the fused path. Received: score={score!r}, "
                         f"return_weights={return_weights}")
    if score == "cosine":
        query, key = unit_rows(query), unit_rows(key)
    mask, bias = _at_least_2d(mask), _at_least_2d(bias)  # SDPA takes no 1-D (Tk,) mask
    same = query.dim() == 4 and bias is None and query.shape[:2] == key.shape[:2] == value.shape[:2]
    if same and (mask is None or mask.dim() <= 2 or (mask.dim() == 4 and mask.shape[0] in (1, query.shape[0])
                                                     and mask.shape[1] in (1, query.shape[1]))):  # SDPA's shape
        if mask is not None and causal:
            mask, causal = with_causal(mask, causal, query.shape[-2], key.shape[-2], query.device), False
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout_p,
                                             is_causal=causal, scale=scale)
        if mask is not None and query.device.type != "cpu":  # other backends may leave NaN in all-masked rows
            out = out.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
        return out, None
    return _folded(query, key, value, scale, mask, causal, dropout_p, bias), None


def _folded(query, key, value, scale, mask, causal, dropout_p, bias) -> Tensor:
    """Any leading dims folded to SDPA's 4-D, a bias passed as a float mask: ``(..., Tq, Dv)``."""
    batch = batch_shape(query, key, value, mask, bias)
    out_shape = torch.Size((*batch, query.shape[-2], value.shape[-1]))
    q, k, v = _to_4d(query, batch), _to_4d(key, batch), _to_4d(value, batch)  # (N, H, T, D)
    def as_sdpa_mask(t: Tensor) -> Tensor:  # (..., Tq, Tk) -> broadcastable to (N, H, Tq, Tk)
        return t if t.dim() <= 4 and len(batch) <= 2 else _to_4d(t.expand(*batch, *t.shape[-2:]), batch)

    allowed = None
    if mask is not None or (bias is not None and causal):  # SDPA takes a float mask or is_causal, not both
        allowed = with_causal(mask, causal, q.shape[-2], k.shape[-2], q.device)
        causal = False
    attn_mask = allowed
    if bias is not None:  # additive float mask: the bias, and -inf where attending is not allowed
        attn_mask = bias.to(q.dtype) if allowed is None else torch.where(allowed, bias.to(q.dtype), float("-inf"))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if attn_mask is None else as_sdpa_mask(attn_mask),
                                         dropout_p=dropout_p, is_causal=causal, scale=scale)
    if allowed is not None and q.device.type != "cpu":
        # Other backends may leave NaN in rows with no allowed key; the CPU kernels return zeros.
        out = out.masked_fill(~as_sdpa_mask(allowed.any(dim=-1, keepdim=True)), 0.0)
    return out if out.shape == out_shape else out.reshape(out_shape)
