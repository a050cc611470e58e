"""The attention core: ``attention()`` and ``masked_softmax()`` (``hard_attention()`` lives in :mod:`.hard`).

Shape legend: ``...`` leading dims (batch, heads), broadcast between query, key, value and mask;
Tq query length, Tk key length, Dk query/key width, Dv value width.

    scores  = score(query, key)                  # (..., Tq, Tk)
    weights = softmax(scores masked by `mask`)   # (..., Tq, Tk), rows sum to 1 over allowed keys
    output  = weights @ value                    # (..., Tq, Dv)

Three execution paths compute that same output:

1. **reference** (:func:`_reference`): the three lines above, materialising ``(..., Tq, Tk)``; taken when
   the weights are asked for, and for callable scores whose working memory is small.
2. **fused** (:mod:`.fused`; dot, scaled_dot, cosine without weights):
   ``torch.nn.functional.scaled_dot_product_attention``, which never builds the ``Tq x Tk`` matrix on its
   memory-efficient kernels.
3. **chunked online softmax** (:mod:`.chunked`; any score): keys are processed ``chunk_size`` at a time
   keeping a running max and running sum per query (as FlashAttention does), so memory is
   ``O(Tq x chunk x hidden)`` instead of ``O(Tq x Tk x hidden)``, and gradients are exact. Forced with
   ``chunk_size=``, or chosen by :mod:`.auto_chunk` for a callable score whose working memory for all the
   keys would pass ``4 * AUTO_CHUNK_ELEMENTS`` bytes (256 MiB): declared by the callable's optional
   ``expansion`` attribute, else measured on a probe of a few keys, so a plain closure is bounded too.

``kind=`` other than ``"full"`` leaves these three paths for a sub-quadratic kind of :mod:`.kinds`
(sliding window, block sparse, linear, Performer): see that package for each one's formula and cost.

Precision: named scores of float16/bfloat16 inputs are computed in float32 (float16 overflows above
65504) and every path takes its softmax in at least float32, casting only the output and the returned
weights back; the answer does not depend on ``return_weights`` or ``chunk_size``.

Masks are boolean, **True = may attend** (the convention of Keras and of SDPA's boolean ``attn_mask``;
``torch.nn.MultiheadAttention``'s ``key_padding_mask`` is the opposite, True = ignore: pass
``~key_padding_mask[:, None, :]``). A query whose keys are all masked gets zero weights and a zero
output on every path, never NaN; an empty key sequence (Tk = 0) gives a zero output too.

NaN and inf: attnkit does not sanitise inputs. A NaN in an allowed key or value reaches the output of
the rows that attend to it; masked scores are replaced before the softmax, but a NaN/inf *value* row
under a zero weight still poisons the product (0 * NaN = NaN), so fill padding with finite numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.functional._checks import (
    ScoreFn,
    batch_shape,
    check_bias,
    check_mask,
    check_qkv,
    named_scale,
    resolve_score,
    with_causal,
)
from attnkit.functional._named import at_least_float32, named_score
from attnkit.functional.auto_chunk import choose_chunk
from attnkit.functional.chunked import chunked_attention as _chunked
from attnkit.functional.fused import fused_attention as _fused
from attnkit.functional.hard import HardAttention, hard_attention
from attnkit.functional.kinds import AttentionKind, resolve_kind, run_kind

__all__ = ["AUTO_CHUNK_ELEMENTS", "AUTO_CHUNK_TARGET", "HardAttention", "attention", "hard_attention", "masked_softmax"]

#: Above ``4 *`` this many bytes of score intermediates (float32 elements: 256 MiB) a callable score runs chunked.
AUTO_CHUNK_ELEMENTS = 2**26
#: An automatic chunk aims at ``4 *`` this many bytes of score intermediates (16 MiB).
AUTO_CHUNK_TARGET = 2**22


# ---------------------------------------------------------------------------------------------
# masked softmax


def _softmax32(scores: Tensor, mask: Tensor | None, dim: int = -1) -> Tensor:
    """:func:`masked_softmax` in at least float32 (half scores are widened, the result is not narrowed)."""
    x = at_least_float32(scores)
    if mask is None:
        return torch.softmax(x, dim=dim)
    x = x.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(x, dim=dim)  # all-masked rows are NaN here ...
    row_ok = mask.any(dim=dim, keepdim=True)
    if not bool(row_ok.all()):
        weights = weights.masked_fill(~row_ok, 0.0)  # ... and zero here (their gradient is zero too)
    return weights


def masked_softmax(scores: Tensor, mask: Tensor | None = None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` that ignores masked entries and never returns NaN for masked rows.

    ``weights = exp(s_j) / sum_{allowed k} exp(s_k)`` for allowed ``j``, exactly 0 for masked ``j``;
    a row with no allowed entry is all zeros. Half-precision scores are normalised in float32 and
    returned in their own dtype.

    Args:
        scores: ``(..., Tq, Tk)`` floating tensor.
        mask: bool, broadcastable to ``scores``; True = may attend.
        dim: the axis to normalise.

    Returns:
        The weights, shaped and typed as ``scores``.

    Example:
        >>> import torch
        >>> from attnkit.functional import masked_softmax
        >>> masked_softmax(torch.zeros(2, 3), torch.tensor([[True, True, False], [False, False, False]]))
        tensor([[0.5000, 0.5000, 0.0000],
                [0.0000, 0.0000, 0.0000]])
    """
    check_mask(mask)
    return _softmax32(scores, mask, dim).to(scores.dtype)


# ---------------------------------------------------------------------------------------------
# the readable path


def _reference(query, key, value, score_fn, mask, dropout_p, bias=None) -> tuple[Tensor, Tensor]:
    """The formula as written: ``output (..., Tq, Dv)`` at least float32, and ``weights (..., Tq, Tk)`` in
    the scores' dtype (for a named score, the dtype of query and key: their float32 scores are internal)."""
    scores = score_fn(query, key)  # (..., Tq, Tk)
    expected = (query.shape[-2], key.shape[-2])
    if not isinstance(scores, Tensor) or tuple(scores.shape[-2:]) != expected:
        got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"score callable must return (..., Tq, Tk) = (..., {expected[0]}, {expected[1]}). Received: {got}")
    named = getattr(score_fn, "_attnkit_named", False)
    weights_dtype = torch.promote_types(query.dtype, key.dtype) if named else scores.dtype
    if bias is not None:
        scores = scores + bias
        weights_dtype = torch.promote_types(weights_dtype, bias.dtype)
    weights = _softmax32(scores, mask)  # (..., Tq, Tk)
    applied = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    out = applied @ value.to(applied.dtype)  # (..., Tq, Dv)
    return out, weights.to(weights_dtype)


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
    kind: str | AttentionKind = "full",
    window: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Attention of queries over keys, returning the weighted average of the values.

    ``output_i = sum_j softmax_j(score(q_i, k_j)) v_j`` over the keys ``j`` that ``mask`` allows.

    Args:
        query: ``(..., Tq, Dk)``.
        key: ``(..., Tk, Dk)`` (``Dk`` may differ from the query's for callable scores).
        value: ``(..., Tk, Dv)``.
        score: ``"dot"``, ``"scaled_dot"`` (default) or ``"cosine"``, or any callable
            ``(query, key) -> (..., Tq, Tk)`` such as the modules of :mod:`attnkit.layers.scores` or a
            plain closure; gradients reach the weights a callable uses. A callable may also offer
            ``project(query, key) -> (q', k')`` and ``combine(q', k') -> scores`` so the chunked path
            projects once, and an ``expansion`` attribute (float32 elements per score element) that
            spares it the memory probe of the automatic choice.
            The chunked path assumes the scores of a slice of keys are the slice of the scores; a callable
            for which that is false (one that depends on absolute key positions) sets ``chunkable = False``.
        mask: bool, broadcastable to ``(..., Tq, Tk)``; **True = may attend**.
        causal: also forbid query ``i`` from attending keys ``j > i`` (top-left aligned, as SDPA's ``is_causal``).
        scale: multiplies the named scores (default ``1/sqrt(Dk)`` for scaled_dot, 1 for dot and cosine);
            a callable's scores are used as returned.
        dropout_p: dropout on the attention weights (applied whenever > 0, as in torch's SDPA:
            pass 0 at evaluation time).
        return_weights: also return the weights ``(..., Tq, Tk)`` (this materialises them).
        chunk_size: an integer forces the chunked online-softmax path with that many keys per chunk (when
            weights are not returned). ``None`` chooses by itself: a callable score runs chunked once its
            working memory for all the keys (declared by ``expansion`` or measured on a probe of 4 and 8
            keys) would pass ``4 * AUTO_CHUNK_ELEMENTS`` bytes = 256 MiB, with chunks of about 16 MiB and
            at least 16 keys; see :mod:`attnkit.functional.auto_chunk` for the exact rule.
        bias: float, broadcastable to ``(..., Tq, Tk)``, added to the scores before the softmax (ALiBi,
            relative-position biases); gradients reach it. On the fused path it goes to SDPA as a float mask.
        kind: ``"full"`` (default: every path above), or a sub-quadratic kind of
            :mod:`attnkit.functional.kinds`: ``"sliding_window"`` (exact: equals full attention under
            ``local_window_mask(Tq, Tk, window)``, and ``causal``), ``"block_sparse"`` (exact, BigBird
            layout), ``"linear"`` (elu+1 features), ``"performer"`` (FAVOR+ approximation of softmax), or
            an :class:`~attnkit.functional.kinds.AttentionKind` object carrying options. The kinds take
            ``score`` "scaled_dot" or "dot", a key padding mask (``(..., 1, Tk)``-shaped) and ``causal``; other
            masks, ``bias`` and callable scores raise. ``chunk_size`` is their query block / prefix-sum chunk.
        window: keys on each side for ``kind="sliding_window"`` (required there, else None).

    Returns:
        ``output (..., Tq, Dv)``, or ``(output, weights)`` when ``return_weights=True``. Leading dims are
        the broadcast of those of query, key, value and mask. Rows with no allowed key, and every row
        when ``Tk == 0``, are zeros.

    Example:
        >>> import torch
        >>> from attnkit.functional import attention
        >>> q, k, v = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 3)
        >>> out, w = attention(q, k, v, mask=torch.ones(7, dtype=torch.bool), return_weights=True)
        >>> out.shape, w.shape, bool(torch.allclose(w.sum(-1), torch.ones(2, 5)))
        (torch.Size([2, 5, 3]), torch.Size([2, 5, 7]), True)
    """
    score = _check_call(query, key, value, score, mask, bias, chunk_size, dropout_p)
    batch = batch_shape(query, key, value, mask, bias)
    tq, tk, dv = query.shape[-2], key.shape[-2], value.shape[-1]
    dtype = torch.promote_types(query.dtype, value.dtype)
    custom = not (isinstance(kind, str) and kind == "full" and window is None)
    kind = resolve_kind(kind, window) if custom else kind
    if tk == 0 or tq == 0:
        return _empty(query, value, batch, return_weights)
    if not isinstance(kind, str):  # a sub-quadratic kind
        scale_value = named_scale(score, query.shape[-1], scale) if isinstance(score, str) else 1.0
        return run_kind(kind, query, key, value, score=score, mask=mask, causal=causal, scale=scale_value,
                        dropout_p=dropout_p, return_weights=return_weights, chunk_size=chunk_size, bias=bias,
                        batch=batch)

    if isinstance(score, str):
        name, scale_value = score, named_scale(score, query.shape[-1], scale)
        if not return_weights and chunk_size is None:
            return _fused(query, key, value, name, scale_value, mask, causal, dropout_p, batch, bias)
        score_fn: ScoreFn = named_score(name, scale_value)
    else:
        score_fn = score

    if not return_weights:
        chunk = _chunk_for(score_fn, query, key, batch, chunk_size)
        if chunk is not None:
            return _chunked(query, key, value, score_fn, mask, causal, dropout_p, chunk, batch, bias)

    out, weights = _reference(query, key, value, score_fn, with_causal(mask, causal, tq, tk, query.device), dropout_p, bias)
    out = out.to(dtype)
    if out.shape[:-2] != batch:
        out = out.expand(*batch, tq, dv)
    return (out, weights) if return_weights else out


def _check_call(query, key, value, score, mask, bias, chunk_size, dropout_p) -> str | ScoreFn:
    """Every argument check of :func:`attention`; returns the resolved score."""
    check_qkv(query, key, value)
    check_mask(mask)
    check_bias(bias)
    score = resolve_score(score, query, key)
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int or None. Received: {chunk_size!r}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1). Received: {dropout_p}")
    return score


def _empty(query: Tensor, value: Tensor, batch: torch.Size, return_weights: bool) -> Tensor | tuple[Tensor, Tensor]:
    """Nothing to attend to (Tk = 0) or nobody asking (Tq = 0): zeros, never NaN."""
    tq, tk = query.shape[-2], value.shape[-2]
    out = query.new_zeros((*batch, tq, value.shape[-1]), dtype=torch.promote_types(query.dtype, value.dtype))
    if tk == 0:
        out = out + 0.0 * value.sum()  # keeps the graph connected; value is empty, so no NaN can enter
    return (out, query.new_zeros((*batch, tq, tk))) if return_weights else out


def _chunk_for(score_fn: ScoreFn, query: Tensor, key: Tensor, batch: torch.Size, chunk_size: int | None) -> int | None:
    """Keys per chunk (``chunk_size``, or the automatic choice), or None for the reference path."""
    chunkable = getattr(score_fn, "chunkable", True)
    if chunk_size is not None and not chunkable:
        raise ValueError(f"score {type(score_fn).__name__} depends on key positions and cannot run chunked: pass chunk_size=None")
    if chunk_size is not None:
        return chunk_size
    if not chunkable:
        return None
    return choose_chunk(score_fn, query, key, batch, AUTO_CHUNK_ELEMENTS, AUTO_CHUNK_TARGET)
