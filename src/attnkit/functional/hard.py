"""Hard (stochastic) attention: each query takes the value of exactly one key (Xu et al. 2015).

Shape legend: ``...`` leading dims, Tq query length, Tk key length, Dk query/key width, Dv value width.
"""

from __future__ import annotations

from typing import NamedTuple

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
    with_causal,
)
from attnkit.functional._named import named_score


class HardAttention(NamedTuple):
    """Result of :func:`hard_attention`: ``context (..., Tq, Dv)``, ``index (..., Tq)`` long,
    ``log_prob (..., Tq)`` (log-probability of the chosen key under the soft weights).

    Example:
        >>> import torch
        >>> from attnkit.functional import HardAttention
        >>> HardAttention(torch.zeros(1, 3), torch.tensor([-1]), torch.zeros(1)).index
        tensor([-1])
    """

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

    Args:
        query: ``(..., Tq, Dk)``.
        key: ``(..., Tk, Dk)``.
        value: ``(..., Tk, Dv)``.
        score, mask, causal, scale, bias: as in :func:`attnkit.functional.attention`.
        training: sample the key from the weights (True) or take the most likely one (False).
        generator: the random generator of the sampling.

    Returns:
        ``HardAttention(context (..., Tq, Dv), index (..., Tq), log_prob (..., Tq))``.

    Example:
        >>> import torch
        >>> from attnkit.functional import hard_attention
        >>> q, k, v = torch.randn(1, 2, 4), torch.randn(1, 5, 4), torch.randn(1, 5, 3)
        >>> ctx, idx, logp = hard_attention(q, k, v)
        >>> bool(torch.equal(ctx[0, 0], v[0, idx[0, 0]]))
        True
    """
    check_qkv(query, key, value)
    check_mask(mask)
    check_mask_axes(mask, query, key, value)  # the rule of attention(mask=): no (B, Tk) read as (Tq, Tk)
    check_bias(bias)
    score = resolve_score(score, query, key)
    batch = batch_shape(query, key, value, mask, bias)
    tq, tk = query.shape[-2], key.shape[-2]
    score_fn = named_score(score, named_scale(score, query.shape[-1], scale)) if isinstance(score, str) else score
    mask = with_causal(mask, causal, tq, tk, query.device)
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
    picked = hard_pick(log_weights, value.expand(*batch, tk, value.shape[-1]), training=training, generator=generator)
    context = picked.context * row_ok[..., None].to(picked.context.dtype)
    log_prob = torch.where(row_ok, picked.log_prob, torch.zeros_like(picked.log_prob)).to(query.dtype)
    index = torch.where(row_ok, picked.index, torch.full_like(picked.index, -1))
    return HardAttention(context, index, log_prob)


def hard_pick(log_weights: Tensor, value: Tensor, *, training: bool = False,
              generator: torch.Generator | None = None) -> HardAttention:
    """Hard attention over weights already computed: one key per query, sampled or the most likely.

    The second half of :func:`hard_attention`, for a caller that has the soft weights anyway (a decoder that
    also needs the expected context): ``j ~ Categorical(exp(log_weights))`` in training, ``argmax`` otherwise;
    ``log_prob = log_weights_j`` carries the gradient of REINFORCE.

    Args:
        log_weights: ``(..., Tq, Tk)`` log-probabilities over the keys (e.g. ``log`` of softmax weights).
        value: ``(..., Tk, Dv)``.
        training, generator: as in :func:`hard_attention`.

    Returns:
        ``HardAttention(context (..., Tq, Dv), index (..., Tq), log_prob (..., Tq))``.

    Example:
        >>> import torch
        >>> w, v = torch.tensor([[[0.1, 0.7, 0.2]]]), torch.tensor([[[1.0], [2.0], [3.0]]])
        >>> ctx, idx, logp = hard_pick(w.log(), v)
        >>> ctx.tolist(), idx.tolist(), round(float(logp), 4)
        ([[[2.0]]], [[1]], -0.3567)
    """
    tk = log_weights.shape[-1]
    if training:
        flat = log_weights.detach().exp().reshape(-1, tk)  # (N, Tk)
        index = torch.multinomial(flat, 1, generator=generator).reshape(log_weights.shape[:-1])  # (..., Tq)
    else:
        index = log_weights.argmax(dim=-1)  # (..., Tq)
    log_prob = log_weights.gather(-1, index[..., None]).squeeze(-1)  # (..., Tq)
    context = value.gather(-2, index[..., None].expand(*index.shape, value.shape[-1]))  # (..., Tq, Dv)
    return HardAttention(context, index, log_prob)
