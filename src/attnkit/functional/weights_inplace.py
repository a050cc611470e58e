"""Attention that also returns its weights, in inference, with one ``(B, H, Tq, Tk)`` buffer: a kernel path
of :mod:`attnkit.functional.dispatch` (switched by :func:`attnkit.kernels.set_fast_paths`).

Plain twin: the reference path, ``attnkit.functional.attention(q, k, v, score="dot", scale=scale, mask=mask,
causal=causal, return_weights=True)``. Here the batched products run on ``(B*H, T, Dh)`` views (no
copy of the transposed keys, the scale applied inside the score product) and the softmax is taken in
place in the score buffer, one allocation instead of two. Same numbers, including zero rows for
queries with no allowed key. Used only without autograd and dropout, on CPU in float32/float64.

Shape legend: B batch, H heads, Tq/Tk query/key positions, Dh head width.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attnkit.functional import _switch
from attnkit.functional.reference import reference_path


def attention_with_weights(
    q: Tensor, k: Tensor, v: Tensor, scale: float, mask: Tensor | None = None, causal: bool = False
) -> tuple[Tensor, Tensor]:
    """``(softmax(scale * q k^T + mask) v, weights)`` for inference.

    Args:
        q: ``(B, H, Tq, Dh)``; k: ``(B, H, Tk, Dh)``; v: ``(B, H, Tk, Dv)``.
        scale: score scale (``Dh ** -0.5`` for scaled dot-product attention).
        mask: bool, broadcastable to ``(B, H, Tq, Tk)``, True = may attend; or None.
        causal: query ``i`` sees keys ``j <= i`` (top-left aligned).

    Returns:
        ``(output (B, H, Tq, Dv), weights (B, H, Tq, Tk))``.

    Example:
        >>> q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 6)
        >>> out, w = attention_with_weights(q, k, v, scale=8 ** -0.5)
        >>> tuple(out.shape), tuple(w.shape)
        ((2, 3, 4, 6), (2, 3, 4, 5))
    """
    if not _switch._ENABLED or torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v)):
        return reference_path(q, k, v, score="dot", scale=scale, mask=mask, causal=causal, dropout_p=0.0,
                              return_weights=True, chunk_size=None, bias=None, kind=None)  # the twin
    b, h, tq, d = q.shape
    tk, dv = k.shape[-2], v.shape[-1]
    q3, k3 = q.reshape(b * h, tq, d), k.reshape(b * h, tk, d)  # (B*H, Tq, Dh), (B*H, Tk, Dh)
    scores = torch.baddbmm(q.new_empty(b * h, tq, tk), q3, k3.transpose(1, 2), beta=0.0, alpha=scale)
    scores = scores.view(b, h, tq, tk)  # scale * q k^T
    if causal:
        tril = torch.ones(tq, tk, dtype=torch.bool, device=q.device).tril()
        mask = tril if mask is None else mask & tril
    if mask is not None:
        scores.masked_fill_(~mask, float("-inf"))
    torch.ops.aten._softmax.out(scores, -1, False, out=scores)  # in place
    if mask is not None:
        row_ok = mask.any(dim=-1, keepdim=True)
        if not bool(row_ok.all()):
            scores.masked_fill_(~row_ok, 0.0)  # rows with no allowed key: zeros, not NaN
    out = torch.bmm(scores.view(b * h, tq, tk), v.reshape(b * h, tk, dv))  # (B*H, Tq, Dv)
    return out.view(b, h, tq, dv), scores


def weights_path(query: Tensor, key: Tensor, value: Tensor, *, score: object, scale: float, mask: Tensor | None,
                 causal: bool, dropout_p: float, return_weights: bool, chunk_size: int | None, bias: Tensor | None,
                 kind: object) -> tuple[Tensor, Tensor]:
    """:func:`attention_with_weights` with the signature of :data:`attnkit.functional.dispatch.PATHS`: a dot
    score over ``(B, H, T, D)`` inputs of one batch and head count, without dropout or bias; weights returned.

    Example:
        >>> q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 6)
        >>> out, w = weights_path(q, k, v, score="dot", scale=1.0, mask=None, causal=False, dropout_p=0.0,
        ...                       return_weights=True, chunk_size=None, bias=None, kind=None)
        >>> tuple(w.shape)
        (2, 3, 4, 5)
    """
    heads = query.dim() == 4 and query.shape[:2] == key.shape[:2] == value.shape[:2]  # (B, H, T, D) each
    if score not in ("dot", "scaled_dot") or dropout_p or bias is not None or not heads:
        raise ValueError("Expected a dot score over (B, H, T, D) inputs, no dropout and no bias on the weights path. "
                         f"Received: score={score!r}, query {tuple(query.shape)}, key {tuple(key.shape)}, "
                         f"dropout_p={dropout_p}, bias={bias is not None}")
    return attention_with_weights(query, key, value, scale, mask, causal)
