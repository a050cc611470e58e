"""The attention core: ``attention()`` and ``masked_softmax()`` (``hard_attention()`` lives in :mod:`.hard`).

Shape legend: ``...`` leading dims (batch, heads), broadcast between query, key, value and mask;
Tq query length, Tk key length, Dk query/key width, Dv value width.

    scores  = score(query, key)                  # (..., Tq, Tk)
    weights = softmax(scores masked by `mask`)   # (..., Tq, Tk), rows sum to 1 over allowed keys
    output  = weights @ value                    # (..., Tq, Dv)

Which computation runs is chosen in one place, :func:`attnkit.functional.dispatch.choose`, over a named
table of paths with one signature (:data:`attnkit.functional.dispatch.PATHS`): the **reference** formula
(taken when the weights are asked for), torch's **fused** SDPA (named scores without weights), the
**chunked** online softmax (``chunk_size=``, or a callable score whose working memory for all the keys would
pass ``4 * AUTO_CHUNK_ELEMENTS`` bytes = 256 MiB, see :mod:`.auto_chunk`), two hand-written kernels, and the
sub-quadratic kinds of :mod:`.kinds` (``kind=`` other than ``"full"``). Tests check every path against
float64 definitions.

Precision: named scores of float16/bfloat16 inputs are computed in float32 (float16 overflows above
65504) and every path takes its softmax in at least float32, casting only the output and the returned
weights back; the answer does not depend on ``return_weights`` or ``chunk_size``.

Masks are boolean, **True = may attend** (the convention of Keras and of SDPA's boolean ``attn_mask``;
``torch.nn.MultiheadAttention``'s ``key_padding_mask`` is the opposite, True = ignore: pass
``~key_padding_mask[:, None, :]``). A query whose keys are all masked gets zero weights and a zero
output on every path, never NaN; an empty key sequence (Tk = 0) gives a zero output too.

NaN and inf: attnkit does not sanitise inputs. A NaN in a query row gives NaN in that row's output, and
only there, on every path of :data:`~attnkit.functional.dispatch.PATHS` (as in torch; SDPA's flash kernel
alone would answer zeros); a row with no allowed key stays zero. A NaN in an allowed key or value reaches
the output of the rows that attend to it; masked scores are replaced before the softmax, but a NaN/inf *value* row
under a zero weight still poisons the product (0 * NaN = NaN), so fill padding with finite numbers.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attnkit.functional._checks import (
    ScoreFn,
    batch_shape,
    check_bias,
    check_mask,
    check_mask_axes,
    check_qkv,
    named_scale,
    resolve_score,
)
from attnkit.functional.dispatch import AUTO_CHUNK_ELEMENTS, AUTO_CHUNK_TARGET, run
from attnkit.functional.kinds import AttentionKind, resolve_kind
from attnkit.functional.reference import masked_softmax

__all__ = ["AUTO_CHUNK_ELEMENTS", "AUTO_CHUNK_TARGET", "attention", "masked_softmax"]


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
        mask: bool, broadcastable to ``(..., Tq, Tk)``; **True = may attend**. Leading dims align from the
            right, so a mask with fewer dims than the call whose first axis has the batch size ``B > 1`` is
            refused: a ``(B, Tk)`` padding mask would be read as ``(Tq, Tk)`` (silently, when ``B == Tq``).
            Write a padding mask as ``pad[:, None, :]`` (``pad[:, None, None, :]`` over heads) and a pair
            mask shared by the batch as ``(Tq, Tk)`` when ``B != Tq``, or as ``m[None]`` always.
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
        window: keys on each side for ``kind="sliding_window"`` (required there, else None). A window, block or
            ``chunk_size`` larger than the sequence is clamped to it (same result), so memory follows the input.

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
    custom = not (isinstance(kind, str) and kind == "full" and window is None)
    kind = resolve_kind(kind, window) if custom else "full"
    if key.shape[-2] == 0 or query.shape[-2] == 0:
        return _empty(query, value, batch_shape(query, key, value, mask, bias), return_weights)
    scale_value = named_scale(score, query.shape[-1], scale) if isinstance(score, str) else 1.0
    out, weights = run(query, key, value, score=score, scale=scale_value, mask=mask, causal=causal,
                       dropout_p=dropout_p, return_weights=return_weights, chunk_size=chunk_size, bias=bias,
                       kind=None if isinstance(kind, str) else kind)
    return (out, weights) if return_weights else out


def _check_call(query, key, value, score, mask, bias, chunk_size, dropout_p) -> str | ScoreFn:
    """Every argument check of :func:`attention`; returns the resolved score."""
    check_qkv(query, key, value)
    check_mask(mask)
    check_mask_axes(mask, query, key, value)
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
