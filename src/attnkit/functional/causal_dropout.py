"""Causal attention with dropout on the weights, block by block over the queries: a kernel path of
:mod:`attnkit.functional.dispatch` (switched by :func:`attnkit.kernels.set_fast_paths`).

Plain twin: ``torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True,
dropout_p=p, scale=scale)``. Torch's fused CPU kernels take no dropout, so with dropout its plain
path computes the whole ``(T, T)`` score matrix, hidden half included. Here queries are processed
``block_size`` at a time, each block against keys ``0 .. end of block`` only, so the key blocks that
the causal mask hides are never computed (about 3/8 of the work at ``T = 4 * block_size``) and the
dropout masks are drawn for the visible part only. Same distribution as the twin (independent
Bernoulli keep masks drawn by :func:`keep_mask`, as :func:`attnkit.kernels.dropout` draws them).

Per query block ``[s, e)`` against keys ``[0, e)`` (the block's own keys masked causally)::

    P = softmax(scale * Q K^T),   A = P * M  (M the scaled keep mask),   out = A V

Backward: ``dV += A^T dout``; ``dA = dout V^T``; ``dS = P * (dA M - rowsum(dA M * P))``;
``dQ = scale * dS K``; ``dK += scale * dS^T Q``.

Shape legend: B batch, H heads, T positions, Dh head width, N = B*H.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from attnkit.functional import _switch


def keep_mask(like: Tensor, p: float) -> Tensor:
    """A mask shaped like ``like``: ``1 / (1 - p)`` with probability ``1 - p``, else 0, drawn as ``U[0, 1) >= p``
    (about twice as fast on CPU as ``bernoulli_``, the same distribution).

    Example:
        >>> m = keep_mask(torch.empty(1000), 0.5)
        >>> sorted(set(m.tolist()))
        [0.0, 2.0]
    """
    return torch.rand_like(like).ge_(p).mul_(1.0 / (1.0 - p))


def causal_dropout_path(query: Tensor, key: Tensor, value: Tensor, *, score: object, scale: float,
                        mask: Tensor | None, causal: bool, dropout_p: float, return_weights: bool,
                        chunk_size: int | None, bias: Tensor | None, kind: object) -> tuple[Tensor, None]:
    """:func:`causal_dropout_attention` with the signature of :data:`attnkit.functional.dispatch.PATHS`: causal
    self-attention ``(B, H, T, Dh)`` of a dot score, without a mask, bias or weights.

    Example:
        >>> q = k = v = torch.randn(2, 3, 5, 4)
        >>> out, _ = causal_dropout_path(q, k, v, score="scaled_dot", scale=0.5, mask=None, causal=True,
        ...                              dropout_p=0.1, return_weights=False, chunk_size=None, bias=None, kind=None)
        >>> out.shape
        torch.Size([2, 3, 5, 4])
    """
    if score not in ("dot", "scaled_dot") or not causal or mask is not None or bias is not None or return_weights:
        raise ValueError("Expected a dot score, causal=True, no mask, no bias and no weights on the causal dropout "
                         f"path. Received: score={score!r}, causal={causal}, mask={mask is not None}, "
                         f"bias={bias is not None}, return_weights={return_weights}")
    return causal_dropout_attention(query, key, value, dropout_p, scale), None


def causal_dropout_attention(
    q: Tensor, k: Tensor, v: Tensor, dropout_p: float, scale: float | None = None, block_size: int = 64
) -> Tensor:
    """``dropout(softmax(scale * q k^T + causal)) v`` for self-attention, position ``t`` seeing ``0..t``.

    Args:
        q, k, v: ``(B, H, T, Dh)`` each (the same ``T``: self-attention without a cache).
        dropout_p: probability of zeroing each attention weight, in ``[0, 1)``.
        scale: score scale, default ``Dh ** -0.5``.
        block_size: queries per block.

    Returns:
        ``(B, H, T, Dh)``, a view of a ``(B, T, H, Dh)`` buffer, so that ``out.transpose(1, 2)``
        is contiguous (ready for the output projection).

    Example:
        >>> q = k = v = torch.randn(2, 3, 5, 4)
        >>> causal_dropout_attention(q, k, v, dropout_p=0.1).shape
        torch.Size([2, 3, 5, 4])
    """
    if q.dim() != 4 or q.shape != k.shape or k.shape != v.shape:
        raise ValueError("Expected q, k, v of one shape (B, H, T, Dh). "
                         f"Received: {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"Expected dropout_p in [0, 1). Received: {dropout_p!r}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if not _switch._ENABLED:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p, scale=scale)
    return _CausalDropoutAttention.apply(q, k, v, dropout_p, scale, block_size)


class _CausalDropoutAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, dropout_p: float, scale: float, block_size: int) -> Tensor:
        B, H, T, D = q.shape
        q3, k3, v3 = (x.reshape(B * H, T, D) for x in (q, k, v))  # (N, T, Dh) each
        out = q.new_empty(B, T, H, D)
        out_heads = out.permute(0, 2, 1, 3)  # (B, H, T, Dh) view written per block
        future = torch.ones(block_size, block_size, dtype=torch.bool, device=q.device).triu(1)  # (b, b)
        zero = q.new_zeros(())  # baddbmm's ignored input (beta=0)
        saved = []
        for s in range(0, T, block_size):
            e = min(s + block_size, T)
            scores = torch.baddbmm(zero, q3[:, s:e], k3[:, :e].transpose(1, 2), beta=0, alpha=scale)  # (N, b, e)
            scores[:, :, s:].masked_fill_(future[: e - s, : e - s], float("-inf"))
            probs = torch.softmax(scores, dim=-1)  # (N, b, e)
            keep = keep_mask(probs, dropout_p)  # (N, b, e)
            dropped = probs * keep  # (N, b, e)
            out_heads[:, :, s:e] = torch.bmm(dropped, v3[:, :e]).view(B, H, e - s, D)
            saved += [probs, keep, dropped]
        ctx.save_for_backward(q3, k3, v3, *saved)
        ctx.block_size, ctx.scale, ctx.shape = block_size, scale, (B, H, T, D)
        return out_heads

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        q, k, v, *saved = ctx.saved_tensors
        B, H, T, D = ctx.shape
        d_out = grad_out.reshape(B * H, T, D)  # (N, T, Dh)
        dq, dk, dv = (torch.empty_like(q) for _ in range(3))  # (N, T, Dh) each
        starts = list(range(0, T, ctx.block_size))
        zero = q.new_zeros(())
        # last block first: it reaches every key, so it initialises dk and dv whole; the earlier blocks'
        # products are added into the leading rows
        for i in reversed(range(len(starts))):
            s, e = starts[i], min(starts[i] + ctx.block_size, T)
            probs, keep, dropped = saved[3 * i : 3 * i + 3]  # (N, b, e) each
            last = e == T
            d_v = torch.bmm(dropped.transpose(1, 2), d_out[:, s:e], out=dv if last else None)  # (N, e, Dh)
            d_probs = torch.bmm(d_out[:, s:e], v[:, :e].transpose(1, 2)).mul_(keep)  # (N, b, e)
            d_scores = torch._softmax_backward_data(d_probs, probs, -1, probs.dtype)  # (N, b, e)
            dq[:, s:e] = torch.baddbmm(zero, d_scores, k[:, :e], beta=0, alpha=ctx.scale)  # (N, b, Dh)
            d_k = torch.baddbmm(zero, d_scores.transpose(1, 2), q[:, s:e], beta=0, alpha=ctx.scale,
                                out=dk if last else None)  # (N, e, Dh)
            if not last:
                dk[:, :e] += d_k
                dv[:, :e] += d_v
        shape = (B, H, T, D)
        return dq.view(shape), dk.view(shape), dv.view(shape), None, None, None
