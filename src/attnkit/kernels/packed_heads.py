"""Self-attention's packed projection and head split, with a backward pass that copies nothing.

Plain twin: ``linear(x, W, b).view(B, T, 3, H, Dh).permute(2, 0, 3, 1, 4).unbind(0)``, the queries, keys and
values of every head from one matrix product. Its backward pass through autograd stacks the three head
gradients (one copy) and makes the stack contiguous again in ``(B, T, 3 H Dh)`` order (a second copy) before
the product's own backward. Here the three gradients ``dq, dk, dv`` (as SDPA returns them, ``(B, H, T, Dh)``
views of ``(B, T, H, Dh)`` memory) are read as ``(B T, H Dh)`` matrices in place:

    dx = dq W_q + dk W_k + dv W_v        dW = [dq^T x ; dk^T x ; dv^T x]        db = [sum dq ; sum dk ; sum dv]

which are the same products as the packed backward, in three parts. For ``MultiHeadAttention`` of width 512,
8 heads, batch 8 x 512 positions, the two copies took 17 of the 274 ms of a forward+backward call
(``attnkit bench layers``, one 2-core AMD EPYC).

Shape legend: B batch, T positions, D input width, H heads, Dh head width.

Example:
    >>> x = torch.randn(2, 5, 8, requires_grad=True)
    >>> w, b = torch.randn(12, 8, requires_grad=True), torch.zeros(12, requires_grad=True)
    >>> q, k, v = packed_heads(x, w, b, heads=2)
    >>> tuple(q.shape)
    (2, 2, 5, 2)
"""

from __future__ import annotations

import torch
from torch import Tensor

from attnkit.functional import _switch
from attnkit.kernels.onednn_linear import linear


def packed_heads(x: Tensor, weight: Tensor, bias: Tensor | None, heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """``q, k, v`` ``(B, H, T, Dh)`` of ``x (B, T, D)`` with the packed ``weight (3 H Dh, D)`` (rows: query,
    key, value) and ``bias (3 H Dh,)``; the backward pass as in the module docstring when gradients flow
    (with the fast paths off or under autocast, autograd's own through the plain twin).

    Example:
        >>> x, w = torch.randn(3, 4, 6), torch.randn(18, 6)
        >>> q, k, v = packed_heads(x, w, None, heads=3)
        >>> bool(torch.allclose(k.transpose(1, 2).reshape(3, 4, 6), x @ w[6:12].T, atol=1e-5))
        True
    """
    if (_switch._ENABLED and torch.is_grad_enabled() and not torch.is_autocast_enabled(x.device.type)
            and (x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad))):
        return _PackedHeads.apply(x, weight, bias, heads)
    return _split(linear(x, weight, bias), heads)


def _split(qkv: Tensor, heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(B, T, 3 H Dh) -> 3 x (B, H, T, Dh)`` views."""
    b, t, n = qkv.shape
    return qkv.view(b, t, 3, heads, n // (3 * heads)).permute(2, 0, 3, 1, 4).unbind(0)  # type: ignore[return-value]


class _PackedHeads(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, heads: int):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _split(linear(x, weight, bias), heads)

    @staticmethod
    def backward(ctx, dq: Tensor | None, dk: Tensor | None, dv: Tensor | None):
        x, weight = ctx.saved_tensors
        n = weight.shape[0] // 3
        x2 = x.reshape(-1, x.shape[-1])  # (M, D)
        # (B, H, T, Dh) -> (M, H Dh): a view when the gradient lies in (B, T, H, Dh) order, as SDPA's does
        grads = [x2.new_zeros(x2.shape[0], n) if g is None else g.transpose(1, 2).reshape(x2.shape[0], n)
                 for g in (dq, dk, dv)]
        parts = weight.split(n)  # 3 x (H Dh, D)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:  # dx = sum_i g_i W_i: (B, T, D)
            dx = grads[0] @ parts[0]
            for g, w in zip(grads[1:], parts[1:], strict=True):  # accumulate in place (addmm with out=, which
                # torch's FLOP counter counts; it skips addmm_)
                dx = torch.addmm(dx, g, w, out=dx) if not torch.is_grad_enabled() else dx + g @ w
            dx = dx.view(x.shape)
        if ctx.needs_input_grad[1]:  # (3 H Dh, D), each third a product in place
            if torch.is_grad_enabled():  # create_graph: differentiable products
                dw = torch.cat([g.t() @ x2 for g in grads])
            else:
                dw = weight.new_empty(weight.shape)
                for i, g in enumerate(grads):
                    torch.mm(g.t(), x2, out=dw[i * n:(i + 1) * n])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = torch.cat([g.sum(0) for g in grads])
        return dx, dw, db, None
