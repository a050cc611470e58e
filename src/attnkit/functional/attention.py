"""The attention core: ``attention()``, ``masked_softmax()`` and ``hard_attention()``.

Shape legend: ``...`` leading dims (batch, heads), broadcast between query, key, value and mask;
Tq query length, Tk key length, Dk query/key width, Dv value width.

    scores  = score(query, key)                  # (..., Tq, Tk)
    weights = softmax(scores masked by `mask`)   # (..., Tq, Tk), rows sum to 1 over allowed keys
    output  = weights @ value                    # (..., Tq, Dv)

Three execution paths compute that same output:

1. **reference**: the three lines above, materialising ``(..., Tq, Tk)``; taken when the weights are
   asked for, and for small callable scores.
2. **fused** (dot, scaled_dot, cosine without weights): ``torch.nn.functional.scaled_dot_product_attention``,
   which never builds the ``Tq x Tk`` matrix on its memory-efficient kernels.
3. **chunked online softmax** (any score): keys are processed ``chunk_size`` at a time keeping a running
   max and running sum per query (as FlashAttention does), each chunk checkpointed so the backward pass
   recomputes it; memory is ``O(Tq x chunk x hidden)`` instead of ``O(Tq x Tk x hidden)`` and gradients
   are exact. Chosen automatically for callable scores whose estimated score work
   ``prod(batch) * Tq * Tk * expansion`` exceeds :data:`AUTO_CHUNK_ELEMENTS` (``expansion`` is the
   callable's optional ``expansion`` attribute, e.g. the hidden width of an additive score), or forced
   with ``chunk_size=``.

Masks are boolean, **True = may attend** (the convention of Keras and of SDPA's boolean ``attn_mask``;
``torch.nn.MultiheadAttention``'s ``key_padding_mask`` is the opposite, True = ignore: pass
``~key_padding_mask[:, None, :]``). A query whose keys are all masked gets zero weights and a zero
output on every path, never NaN; an empty key sequence (Tk = 0) gives a zero output too.

NaN and inf: attnkit does not sanitise inputs. A NaN in an allowed key or value reaches the output of
the rows that attend to it; masked scores are replaced before the softmax, but a NaN/inf *value* row
under a zero weight still poisons the product (0 * NaN = NaN), so fill padding with finite numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from attnkit.functional.scores import PARAMETER_FREE, SCORES, dot

ScoreFn = Callable[[Tensor, Tensor], Tensor]

#: Above this many score elements (times the score's ``expansion``) a callable score runs chunked.
AUTO_CHUNK_ELEMENTS = 2**26
#: The automatic chunk size aims at about this many elements per chunk (``batch * Tq * chunk * expansion``).
AUTO_CHUNK_TARGET = 2**22
_MIN_AUTO_CHUNK = 16


# ---------------------------------------------------------------------------------------------
# checks


def _check_qkv(query: Tensor, key: Tensor, value: Tensor) -> None:
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor. Received: {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., T, D). Received: shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor. Received: dtype {t.dtype}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"key and value lengths differ: key (..., {key.shape[-2]}, {key.shape[-1]}) "
            f"vs value (..., {value.shape[-2]}, {value.shape[-1]})"
        )


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """numpy broadcasting of shapes, or None when they do not broadcast (plain Python: cheaper per call
    than ``torch.broadcast_shapes``, which matters for small attention calls)."""
    if all(sh == shapes[0] for sh in shapes):
        return tuple(shapes[0])
    out: list[int] = []
    for dims in zip(*(((1,) * (max(map(len, shapes)) - len(sh))) + tuple(sh) for sh in shapes), strict=True):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _batch_shape(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, bias: Tensor | None = None) -> torch.Size:
    batch = _broadcast(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    if batch is None:
        raise ValueError(
            "leading dims of query, key and value do not broadcast. Received: "
            f"query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}"
        )
    for name, extra in (("mask", mask), ("bias", bias)):
        if extra is None:
            continue
        target = (*batch, query.shape[-2], key.shape[-2])
        full = _broadcast(tuple(extra.shape), target)
        if full is None or full[-2:] != target[-2:]:
            raise ValueError(
                f"{name} of shape {tuple(extra.shape)} does not broadcast to (..., Tq, Tk) = {tuple(target)}"
            )
        batch = full[:-2]
    return torch.Size(batch)


def _check_bias(bias: Tensor | None) -> None:
    if bias is not None and (not isinstance(bias, Tensor) or not bias.is_floating_point()):
        got = f"dtype {bias.dtype}" if isinstance(bias, Tensor) else type(bias).__name__
        raise TypeError(f"bias must be a floating-point tensor added to the scores. Received: {got}; "
                        "boolean masks go in mask=")


def _check_mask(mask: Tensor | None) -> None:
    if mask is None:
        return
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a bool torch.Tensor (True = may attend). Received: {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"mask must be boolean (True = may attend). Received: dtype {mask.dtype}; "
            "for an additive float mask add it to the scores in a score callable instead"
        )


def _resolve_score(score: str | ScoreFn, query: Tensor, key: Tensor) -> str | ScoreFn:
    if callable(score):
        return score
    if not isinstance(score, str):
        raise TypeError(f"score must be a name or a callable (query, key) -> scores. Received: {type(score).__name__}")
    if score not in PARAMETER_FREE:
        if score in SCORES:
            raise ValueError(
                f"score '{score}' needs weights: pass a module such as attnkit.layers.{score.title().replace('_', '')}Score "
                f"or functools.partial(attnkit.functional.scores.{score}, ...) as score="
            )
        raise ValueError(f"unknown score {score!r}. Valid names: {', '.join(PARAMETER_FREE)}, or any callable (query, key) -> scores")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"score '{score}' needs query and key of the same last dim. "
            f"Received: query (..., {query.shape[-2]}, {query.shape[-1]}) vs key (..., {key.shape[-2]}, {key.shape[-1]})"
        )
    return score


def _with_causal(mask: Tensor | None, causal: bool, tq: int, tk: int, device) -> Tensor | None:
    """``mask`` and, when ``causal``, the top-left aligned causal mask ``(Tq, Tk)``."""
    if not causal:
        return mask
    allowed = torch.ones(tq, tk, dtype=torch.bool, device=device).tril()
    return allowed if mask is None else mask & allowed


def _named_scale(name: str, width: int, scale: float | None) -> float:
    if scale is not None:
        return float(scale)
    if name == "scaled_dot":
        return 1.0 / math.sqrt(width) if width else 1.0
    return 1.0


# ---------------------------------------------------------------------------------------------
# masked softmax


def masked_softmax(scores: Tensor, mask: Tensor | None = None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` that ignores masked entries and never returns NaN for masked rows.

    ``weights = exp(s_j) / sum_{allowed k} exp(s_k)`` for allowed ``j``, exactly 0 for masked ``j``;
    a row with no allowed entry is all zeros. Half-precision scores are normalised in float32 and
    returned in their own dtype.

    Args:
        scores: ``(..., Tq, Tk)`` floating tensor.
        mask: bool, broadcastable to ``scores``; True = may attend.
        dim: the axis to normalise.

    Example:
        >>> masked_softmax(torch.zeros(2, 3), torch.tensor([[True, True, False], [False, False, False]]))
        tensor([[0.5000, 0.5000, 0.0000],
                [0.0000, 0.0000, 0.0000]])
    """
    _check_mask(mask)
    dtype = scores.dtype
    x = scores.float() if dtype in (torch.float16, torch.bfloat16) else scores
    if mask is None:
        return torch.softmax(x, dim=dim).to(dtype)
    x = x.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(x, dim=dim)  # all-masked rows are NaN here ...
    row_ok = mask.any(dim=dim, keepdim=True)
    if not bool(row_ok.all()):
        weights = weights.masked_fill(~row_ok, 0.0)  # ... and zero here (their gradient is zero too)
    return weights.to(dtype)


# ---------------------------------------------------------------------------------------------
# the three paths


def _reference(query, key, value, score_fn, mask, dropout_p, bias=None):
    scores = score_fn(query, key)  # (..., Tq, Tk)
    expected = (query.shape[-2], key.shape[-2])
    if not isinstance(scores, Tensor) or tuple(scores.shape[-2:]) != expected:
        got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"score callable must return (..., Tq, Tk) = (..., {expected[0]}, {expected[1]}). Received: {got}")
    if bias is not None:
        scores = scores + bias
    weights = masked_softmax(scores, mask)  # (..., Tq, Tk)
    applied = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    out = applied.to(value.dtype) @ value  # (..., Tq, Dv)
    return out, weights


def _to_4d(t: Tensor, batch: torch.Size) -> Tensor:
    if t.shape[:-2] != batch:
        t = t.expand(*batch, *t.shape[-2:])
    if t.dim() == 4:
        return t
    if t.dim() < 4:
        return t.reshape((1,) * (4 - t.dim()) + tuple(t.shape))
    return t.reshape(-1, 1, *t.shape[-2:])


def _fused(query, key, value, name, scale, mask, causal, dropout_p, batch, bias=None):
    """SDPA fast path for dot / scaled_dot / cosine (cosine = dot of unit vectors)."""
    if name == "cosine":
        query = query / query.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        key = key / key.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    out_shape = torch.Size((*batch, query.shape[-2], value.shape[-1]))
    q, k, v = _to_4d(query, batch), _to_4d(key, batch), _to_4d(value, batch)  # (N, H, T, D)
    def as_sdpa_mask(t: Tensor) -> Tensor:  # (..., Tq, Tk) -> broadcastable to (N, H, Tq, Tk)
        return t if t.dim() <= 4 and len(batch) <= 2 else _to_4d(t.expand(*batch, *t.shape[-2:]), batch)

    allowed = None
    if mask is not None or (bias is not None and causal):  # SDPA takes a float mask or is_causal, not both
        allowed = _with_causal(mask, causal, q.shape[-2], k.shape[-2], q.device)
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
    found = run_sum > 0
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


def _chunked(query, key, value, score, mask, causal, dropout_p, chunk_size, batch, bias=None):
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


def _auto_chunk(score: ScoreFn, batch: torch.Size, tq: int, tk: int) -> int | None:
    expansion = int(getattr(score, "expansion", 1) or 1)
    rows = math.prod(batch) * tq * expansion
    if rows * tk <= AUTO_CHUNK_ELEMENTS:
        return None
    return max(_MIN_AUTO_CHUNK, min(tk, AUTO_CHUNK_TARGET // max(rows, 1)))


# ---------------------------------------------------------------------------------------------
# public API


def attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    *,
    score: str | ScoreFn = "scaled_dot",
    mask: Tensor | None = None,
    causal: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
    return_weights: bool = False,
    chunk_size: int | None = None,
    bias: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Attention of queries over keys, returning the weighted average of the values.

    ``output_i = sum_j softmax_j(score(q_i, k_j)) v_j`` over the keys ``j`` that ``mask`` allows.

    Args:
        query: ``(..., Tq, Dk)``.
        key: ``(..., Tk, Dk)`` (``Dk`` may differ from the query's for callable scores).
        value: ``(..., Tk, Dv)``.
        score: ``"dot"``, ``"scaled_dot"`` (default) or ``"cosine"``, or any callable
            ``(query, key) -> (..., Tq, Tk)`` such as the modules of :mod:`attnkit.layers.scores`;
            gradients reach the weights a callable uses. A callable may also offer
            ``project(query, key) -> (q', k')`` and ``combine(q', k') -> scores`` so the chunked path
            projects once, and an ``expansion`` attribute (memory per score element) for the automatic choice.
            The chunked path assumes the scores of a slice of keys are the slice of the scores; a callable
            for which that is false (one that depends on absolute key positions) sets ``chunkable = False``.
        mask: bool, broadcastable to ``(..., Tq, Tk)``; **True = may attend**.
        causal: also forbid query ``i`` from attending keys ``j > i`` (top-left aligned, as SDPA's ``is_causal``).
        scale: multiplies the named scores (default ``1/sqrt(Dk)`` for scaled_dot, 1 for dot and cosine);
            a callable's scores are used as returned.
        dropout_p: dropout on the attention weights (applied whenever > 0, as in torch's SDPA:
            pass 0 at evaluation time).
        return_weights: also return the weights ``(..., Tq, Tk)`` (this materialises them).
        chunk_size: ``None`` chooses by itself; an integer forces the chunked online-softmax path
            with that many keys per chunk (when weights are not returned).
        bias: float, broadcastable to ``(..., Tq, Tk)``, added to the scores before the softmax (ALiBi,
            relative-position biases); gradients reach it. On the fused path it goes to SDPA as a float mask.

    Returns:
        ``output (..., Tq, Dv)``, or ``(output, weights)`` when ``return_weights=True``. Leading dims are
        the broadcast of those of query, key, value and mask. Rows with no allowed key, and every row
        when ``Tk == 0``, are zeros.

    Example:
        >>> q, k, v = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 3)
        >>> out, w = attention(q, k, v, mask=torch.ones(7, dtype=torch.bool), return_weights=True)
        >>> out.shape, w.shape, bool(torch.allclose(w.sum(-1), torch.ones(2, 5)))
        (torch.Size([2, 5, 3]), torch.Size([2, 5, 7]), True)
    """
    _check_qkv(query, key, value)
    _check_mask(mask)
    _check_bias(bias)
    score = _resolve_score(score, query, key)
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int or None. Received: {chunk_size!r}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1). Received: {dropout_p}")
    batch = _batch_shape(query, key, value, mask, bias)
    tq, tk, dv = query.shape[-2], key.shape[-2], value.shape[-1]
    dtype = torch.promote_types(query.dtype, value.dtype)

    if tk == 0 or tq == 0:  # nothing to attend to: zeros, never NaN
        out = query.new_zeros((*batch, tq, dv), dtype=dtype)
        if tk == 0:
            out = out + 0.0 * value.sum()  # keeps the graph connected; value is empty, so no NaN can enter
        if return_weights:
            return out, query.new_zeros((*batch, tq, tk))
        return out

    if isinstance(score, str):
        name, scale_value = score, _named_scale(score, query.shape[-1], scale)
        if not return_weights and chunk_size is None:
            return _fused(query, key, value, name, scale_value, mask, causal, dropout_p, batch, bias)
        score_fn: ScoreFn = _named_score(name, scale_value)
    else:
        score_fn = score

    if not return_weights:
        chunkable = getattr(score_fn, "chunkable", True)
        if chunk_size is not None and not chunkable:
            raise ValueError(f"score {type(score_fn).__name__} depends on key positions and cannot run chunked: pass chunk_size=None")
        chunk = chunk_size if chunk_size is not None else (_auto_chunk(score_fn, batch, tq, tk) if chunkable else None)
        if chunk is not None:
            return _chunked(query, key, value, score_fn, mask, causal, dropout_p, chunk, batch, bias)

    out, weights = _reference(query, key, value, score_fn, _with_causal(mask, causal, tq, tk, query.device), dropout_p, bias)
    if out.shape[:-2] != batch:
        out = out.expand(*batch, tq, dv)
    return (out, weights) if return_weights else out


def _named_score(name: str, scale: float) -> ScoreFn:
    return _CosineChunks(scale) if name == "cosine" else _ScaledDot(scale)


class _ScaledDot:
    """A named dot-product score as a callable without weights: ``scale * q . k``."""

    _attnkit_named = True

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def __call__(self, query: Tensor, key: Tensor) -> Tensor:
        scores = dot(query, key)
        return scores if self.scale == 1.0 else scores * self.scale


class _CosineChunks:
    """Cosine score split for the chunked path: normalise once (project), then dot per chunk (combine)."""

    _attnkit_named = True

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def project(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        return (query / query.norm(dim=-1, keepdim=True).clamp_min(1e-8),
                key / key.norm(dim=-1, keepdim=True).clamp_min(1e-8))

    def combine(self, q: Tensor, k: Tensor) -> Tensor:
        return (q @ k.transpose(-2, -1)) * self.scale

    def __call__(self, query: Tensor, key: Tensor) -> Tensor:
        return self.combine(*self.project(query, key))


class HardAttention(NamedTuple):
    """Result of :func:`hard_attention`: ``context (..., Tq, Dv)``, ``index (..., Tq)`` long,
    ``log_prob (..., Tq)`` (log-probability of the chosen key under the soft weights)."""

    context: Tensor
    index: Tensor
    log_prob: Tensor


def hard_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    *,
    score: str | ScoreFn = "scaled_dot",
    mask: Tensor | None = None,
    causal: bool = False,
    scale: float | None = None,
    training: bool = False,
    generator: torch.Generator | None = None,
    bias: Tensor | None = None,
) -> HardAttention:
    """Hard (stochastic) attention: each query takes the value of exactly one key.

    ``a = softmax(score(q, k))`` over allowed keys; in evaluation (``training=False``) the key is
    ``argmax_j a_j``, in training it is sampled ``j ~ Categorical(a)`` (Xu et al. 2015), and
    ``log_prob = log a_j`` carries the gradient for REINFORCE (``loss = -reward * log_prob``).
    A query with no allowed key gets ``index = -1``, a zero context and ``log_prob = 0``.

    Shapes: query ``(..., Tq, Dk)``, key ``(..., Tk, Dk)``, value ``(..., Tk, Dv)`` ->
    ``HardAttention(context (..., Tq, Dv), index (..., Tq), log_prob (..., Tq))``.

    Example:
        >>> q, k, v = torch.randn(1, 2, 4), torch.randn(1, 5, 4), torch.randn(1, 5, 3)
        >>> ctx, idx, logp = hard_attention(q, k, v)
        >>> bool(torch.equal(ctx[0, 0], v[0, idx[0, 0]]))
        True
    """
    _check_qkv(query, key, value)
    _check_mask(mask)
    _check_bias(bias)
    score = _resolve_score(score, query, key)
    batch = _batch_shape(query, key, value, mask, bias)
    tq, tk = query.shape[-2], key.shape[-2]
    score_fn = _named_score(score, _named_scale(score, query.shape[-1], scale)) if isinstance(score, str) else score
    mask = _with_causal(mask, causal, tq, tk, query.device)
    scores = score_fn(query, key)
    if bias is not None:
        scores = scores + bias
    scores = scores.float().expand(*batch, tq, tk)  # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    row_ok = torch.isfinite(scores).any(dim=-1) if tk else torch.zeros((*batch, tq), dtype=torch.bool, device=query.device)
    safe = torch.where(row_ok[..., None], scores, torch.zeros_like(scores))  # all-masked rows -> uniform, then dropped
    log_weights = torch.log_softmax(safe, dim=-1)  # (..., Tq, Tk)
    if tk == 0:
        index = torch.full((*batch, tq), -1, dtype=torch.long, device=query.device)
        context = value.new_zeros((*batch, tq, value.shape[-1]))
        return HardAttention(context, index, query.new_zeros((*batch, tq)))
    if training:
        flat = log_weights.detach().exp().reshape(-1, tk)  # (N, Tk)
        index = torch.multinomial(flat, 1, generator=generator).reshape(*batch, tq)
    else:
        index = log_weights.argmax(dim=-1)
    log_prob = log_weights.gather(-1, index[..., None]).squeeze(-1)  # (..., Tq)
    values = value.expand(*batch, tk, value.shape[-1])
    context = values.gather(-2, index[..., None].expand(*index.shape, value.shape[-1]))  # (..., Tq, Dv)
    context = context * row_ok[..., None].to(context.dtype)
    log_prob = torch.where(row_ok, log_prob, torch.zeros_like(log_prob)).to(query.dtype)
    index = torch.where(row_ok, index, torch.full_like(index, -1))
    return HardAttention(context, index, log_prob)
