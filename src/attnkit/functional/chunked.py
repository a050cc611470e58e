"""The chunked online-softmax path of :func:`attnkit.functional.attention`.

Shape legend: ``...`` leading dims (batch, heads), Tq query length, Tk key length, C keys per chunk,
Dv value width; ``q'``/``k'`` are what a score's optional ``project`` makes of query and key.

Keys are processed ``C`` at a time keeping a running max ``m`` and a running sum ``l`` per query (as
FlashAttention does), so the ``(..., Tq, Tk)`` scores, and whatever larger tensors a score builds on
the way (an additive score's ``(..., Tq, Tk, A)`` hidden layer), only ever exist for one chunk:

    s     = score(q', k'[chunk])                  # (..., Tq, C)
    m_new = max(m, rowmax(s))
    l     = l * exp(m - m_new) + rowsum(exp(s - m_new))
    acc   = acc * exp(m - m_new) + exp(s - m_new) @ v[chunk]
    out   = acc / l                               # (..., Tq, Dv), once every chunk is in

It equals ``softmax(score(q, k)) @ v`` exactly in exact arithmetic; gradients are exact too. Two
backward passes: scores with known parameters (attnkit's modules and the named scores) use
:class:`_ChunkedAttention`, a FlashAttention-style backward that keeps only ``out`` and the row
log-sum-exp; any other callable (a closure, whose weights are unknown) checkpoints each chunk, so
autograd recomputes it in the backward pass and reaches whatever tensors the callable uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from attnkit.functional._checks import ScoreFn, batch_shape
from attnkit.functional._named import named_score


def _chunk_step(
    combine: ScoreFn, q_proj: Tensor, k_chunk: Tensor, v_chunk: Tensor, mask_chunk: Tensor | None,
    bias_chunk: Tensor | None, run_max: Tensor, run_sum: Tensor, acc: Tensor, dropout_p: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """One online-softmax update over a chunk of C keys (accumulators at least float32)."""
    s = combine(q_proj, k_chunk).to(acc.dtype)  # (..., Tq, C)
    if bias_chunk is not None:
        s = s + bias_chunk
    if mask_chunk is not None:
        s = s.masked_fill(~mask_chunk, float("-inf"))
    new_max = torch.maximum(run_max, s.amax(dim=-1, keepdim=True)).detach()  # (..., Tq, 1)
    safe_max = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)
    correction = torch.exp(run_max - safe_max)  # rescales what was summed under the old max
    p = torch.exp(s - safe_max)  # (..., Tq, C); 0 where masked
    run_sum = run_sum * correction + p.sum(dim=-1, keepdim=True)
    if dropout_p > 0:
        p = F.dropout(p, dropout_p)
    acc = acc * correction + p @ v_chunk.to(acc.dtype)  # (..., Tq, Dv)
    return new_max, run_sum, acc


def _chunk_masks(mask: Tensor | None, causal: bool, tq: int, tk: int, chunk_size: int, device) -> list[tuple[int, int, Tensor | None]]:
    """(start, stop, mask of that key chunk) for every chunk; causal rows are top-left aligned."""
    chunks = []
    for start in range(0, tk, chunk_size):
        stop = min(start + chunk_size, tk)
        mask_chunk = None
        if mask is not None:
            mask_chunk = mask[..., start:stop] if mask.shape[-1] != 1 else mask
        if causal:
            allowed = torch.arange(start, stop, device=device)[None, :] <= torch.arange(tq, device=device)[:, None]  # (Tq, C)
            mask_chunk = allowed if mask_chunk is None else mask_chunk & allowed
        chunks.append((start, stop, mask_chunk))
    return chunks


def _key_slice(t: Tensor | None, start: int, stop: int) -> Tensor | None:
    """Keys ``start:stop`` of a mask or bias ``(..., Tq, Tk)`` (unchanged when broadcast over keys)."""
    return t if t is None or t.shape[-1] == 1 else t[..., start:stop]


def _online_softmax(combine, q_proj, k_proj, value, bias, batch, chunks, acc_dtype, dropout_p=0.0, checkpointed=False):
    """Run :func:`_chunk_step` over every key chunk; returns ``out (..., Tq, Dv)`` and the row log-sum-exp
    ``lse (..., Tq, 1)`` (``+inf`` for rows with no allowed key, so ``exp(s - lse) = 0`` there)."""
    tq, dv = q_proj.shape[-2], value.shape[-1]
    run_max = torch.full((*batch, tq, 1), float("-inf"), device=value.device, dtype=acc_dtype)
    run_sum = torch.zeros((*batch, tq, 1), device=value.device, dtype=acc_dtype)
    acc = torch.zeros((*batch, tq, dv), device=value.device, dtype=acc_dtype)
    for start, stop, mask_chunk in chunks:
        args = (combine, q_proj, k_proj[..., start:stop, :], value[..., start:stop, :], mask_chunk,
                _key_slice(bias, start, stop), run_max, run_sum, acc, dropout_p)
        if checkpointed:  # keep nothing of the chunk: the backward pass recomputes it
            run_max, run_sum, acc = checkpoint(_chunk_step, *args, use_reentrant=False)
        else:
            run_max, run_sum, acc = _chunk_step(*args)
    tiny = torch.finfo(acc_dtype).tiny
    found = run_sum != 0  # 0 only with no allowed key; a NaN query row stays NaN, as on every path
    out = torch.where(found, acc / run_sum.clamp_min(tiny), torch.zeros_like(acc))
    lse = torch.where(found, run_max + torch.log(run_sum.clamp_min(tiny)), torch.full_like(run_sum, float("inf")))
    return out, lse


class _ChunkedAttention(torch.autograd.Function):
    """Online-softmax attention over key chunks with a FlashAttention-style backward.

    Forward keeps only ``out`` and the row log-sum-exp ``L``; backward recomputes each chunk's scores
    with autograd on, and uses ``dS = P * (dO V^T - rowsum(dO * O))`` with ``P = exp(S - L)``, so memory
    stays ``O(Tq x chunk x expansion)`` in both passes. ``params`` are the tensors the ``combine`` callable
    differentiates through (a module's parameters).
    """

    @staticmethod
    def forward(ctx, q_proj, k_proj, value, bias, batch, chunks, combine, acc_dtype, *params):
        out, lse = _online_softmax(combine, q_proj, k_proj, value, bias, batch, chunks, acc_dtype)
        ctx.has_bias = bias is not None
        ctx.save_for_backward(q_proj, k_proj, value, out, lse, *([bias] if bias is not None else []), *params)
        ctx.chunks, ctx.combine = chunks, combine
        return out.to(value.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        q_proj, k_proj, value, out, lse, *params = ctx.saved_tensors
        bias = params.pop(0) if ctx.has_bias else None
        grad_out = grad_out.to(out.dtype)
        delta = (grad_out * out).sum(dim=-1, keepdim=True)  # (..., Tq, 1)
        want_q, want_k, want_v, want_bias = ctx.needs_input_grad[:4]
        d_q = torch.zeros_like(q_proj) if want_q else None
        d_k = torch.zeros_like(k_proj) if want_k else None
        d_v = torch.zeros_like(value) if want_v else None
        d_bias = torch.zeros_like(bias) if want_bias else None
        d_params = [torch.zeros_like(p) for p in params]
        for start, stop, mask_chunk in ctx.chunks:
            v_chunk = value[..., start:stop, :]
            with torch.enable_grad():
                q_leaf = q_proj.detach().requires_grad_(want_q)
                k_leaf = k_proj[..., start:stop, :].detach().requires_grad_(want_k)
                s = ctx.combine(q_leaf, k_leaf).to(out.dtype)  # (..., Tq, C)
            bias_chunk = _key_slice(bias, start, stop)
            p = torch.exp(s.detach() + (0.0 if bias_chunk is None else bias_chunk) - lse)  # (..., Tq, C): the forward's weights
            if mask_chunk is not None:
                p = p.masked_fill(~mask_chunk, 0.0)
            if want_v:
                d_v[..., start:stop, :] += (p.transpose(-2, -1) @ grad_out).to(value.dtype).sum_to_size(v_chunk.shape)
            d_s = p * (grad_out @ v_chunk.to(out.dtype).transpose(-2, -1) - delta)  # (..., Tq, C)
            if want_bias:
                if bias.shape[-1] == 1:
                    d_bias += d_s.sum_to_size(bias.shape).to(bias.dtype)
                else:
                    d_bias[..., start:stop] += d_s.sum_to_size(bias_chunk.shape).to(bias.dtype)
            # (tensor the score was computed from, where its gradient accumulates)
            targets = [(q_leaf, d_q), (k_leaf, None if d_k is None else d_k[..., start:stop, :]), *zip(params, d_params, strict=True)]
            targets = [(t, sink) for t, sink in targets if t.requires_grad]
            if targets:
                grads = torch.autograd.grad(s, [t for t, _ in targets], d_s, allow_unused=True)
                for (_, sink), g in zip(targets, grads, strict=True):
                    if g is not None:
                        sink += g
        return (d_q, d_k, d_v, d_bias, None, None, None, None, *d_params)


def chunked_attention(query, key, value, score, mask, causal, dropout_p, chunk_size, batch, bias=None) -> Tensor:
    """``softmax(score(query, key) + bias, masked) @ value`` over key chunks of ``chunk_size``: ``(..., Tq, Dv)``.

    ``score`` may offer ``project(query, key) -> (q', k')`` and ``combine(q', k'[chunk]) -> (..., Tq, C)``
    so projections run once; otherwise the whole callable is called on each key chunk.
    """
    if hasattr(score, "project") and hasattr(score, "combine"):
        q_proj, k_proj = score.project(query, key)
        combine = score.combine
    else:
        q_proj, k_proj, combine = query, key, score
    # accumulate in float32 for half inputs, else in the inputs' own precision
    acc_dtype = torch.promote_types(torch.promote_types(query.dtype, value.dtype), torch.float32)
    chunks = _chunk_masks(mask, causal, query.shape[-2], key.shape[-2], chunk_size, query.device)
    owner = getattr(combine, "__self__", combine)
    known_params = isinstance(owner, torch.nn.Module) or getattr(owner, "_attnkit_named", False)
    if dropout_p == 0 and known_params:
        params = [p for p in owner.parameters() if p.requires_grad] if isinstance(owner, torch.nn.Module) else []
        return _ChunkedAttention.apply(q_proj, k_proj, value, bias, batch, chunks, combine, acc_dtype, *params)
    # Any other callable (its weights unknown, e.g. a closure) or dropout: checkpoint each chunk instead.
    out, _ = _online_softmax(combine, q_proj, k_proj, value, bias, batch, chunks, acc_dtype, dropout_p,
                             checkpointed=torch.is_grad_enabled())
    return out.to(value.dtype)


#: Keys per chunk of the chunked path when it is called alone without ``chunk_size``.
DEFAULT_CHUNK = 512


def chunked_path(query: Tensor, key: Tensor, value: Tensor, *, score: str | ScoreFn, scale: float,
                 mask: Tensor | None, causal: bool, dropout_p: float, return_weights: bool, chunk_size: int | None,
                 bias: Tensor | None, kind: object) -> tuple[Tensor, None]:
    """:func:`chunked_attention` with the signature of :data:`attnkit.functional.dispatch.PATHS` (no weights);
    ``chunk_size`` None means :data:`DEFAULT_CHUNK` keys per chunk."""
    if return_weights or getattr(score, "chunkable", True) is False:
        raise ValueError(f"Expected return_weights=False and a chunkable score on the chunked path. "
                         f"Received: return_weights={return_weights}, score={type(score).__name__}")
    fn = named_score(score, scale) if isinstance(score, str) else score
    batch = batch_shape(query, key, value, mask, bias)
    return chunked_attention(query, key, value, fn, mask, causal, dropout_p, chunk_size or DEFAULT_CHUNK, batch,
                             bias), None
