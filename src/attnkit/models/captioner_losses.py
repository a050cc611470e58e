"""The two training signals of Show, Attend and Tell beyond cross-entropy (Xu et al. 2015, sections 4.1-4.2).

Shape legend: ``B`` captions, ``T`` words (steps), ``L`` image regions. The alignments ``alpha_bti`` are the
attention weights of step ``t`` over the regions.

Doubly stochastic regularisation (soft attention, eq. 14): each region should receive about as much
attention over the whole caption as any other,

    penalty = lambda * mean_b sum_i (1 - sum_t alpha_bti)^2          (steps t over real words only)

REINFORCE for hard attention (eq. 12, with the variance reduction it needs here). A caption on sampled
locations is drawn ``K`` times (rows ``r`` of one group ``g(r)``, the same caption); with ``R_rt`` its reward
(:func:`hard_rewards`: the caption's log-likelihood ``log p(y | s, a)``, or per word), the baseline of each
sample is the mean reward of the *other* ``K - 1`` samples of its caption (Kool et al. 2019: "Buy 4 REINFORCE
samples, get a baseline for free"), over sampled rows and real words only (:func:`leave_one_out_baseline`),
and the advantage is ``A_rt = R_rt - b_rt`` (optionally divided by its standard deviation over the batch,
:func:`advantages`). Rows on the expected context (``sampled = False``) get no advantage. With ``H`` the
entropy of the attention distribution and ``w_r`` a row weight (``1 / K`` for the samples of a caption, 1 for a
caption on the expected context), the gradient of the paper's objective is

    d/dW [ log p(y|s,a) + lambda_r A log p(s|a) + lambda_e H[s] ]

so the surrogate loss to minimise (``A`` a constant) is

    loss = -sum_r w_r sum_t m_rt ( log p(y_rt) + lambda_r A_rt log p(s_rt) + lambda_e [r sampled] H_rt ) / n

with ``m`` the real words and ``n = sum_r w_r sum_t m_rt`` (the real words of the batch's captions).
``lambda_r`` ramps up from 0 over the first steps and ``lambda_e`` may decay (:func:`hard_weights`): while
the decoder cannot yet read an object from its annotation, a strong REINFORCE term (``lambda_r = 1`` from the
start) moved the attention's peaks out of both objects' boxes on the built-in scenes (peak in box 0.00-0.08).

Example:
    >>> import torch
    >>> alignments = torch.full((1, 2, 4), 0.25)                  # (B, T, L): uniform over 4 regions
    >>> float(doubly_stochastic_penalty(alignments, torch.ones(1, 2, dtype=torch.bool), 1.0))   # 4 * 0.5 ** 2
    1.0
"""

from __future__ import annotations

import torch
from torch import Tensor


def doubly_stochastic_penalty(alignments: Tensor, mask: Tensor, weight: float) -> Tensor:
    """``weight * mean_b sum_i (1 - sum_t mask_bt alpha_bti)^2``.

    Args:
        alignments: ``(B, T, L)`` attention weights per step (each row sums to 1 over ``L``).
        mask: ``(B, T)`` bool, True for real words (padding steps do not count).
        weight: ``lambda``.

    Returns:
        A scalar tensor.

    Example:
        >>> import torch
        >>> a = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])          # both steps on region 0
        >>> float(doubly_stochastic_penalty(a, torch.ones(1, 2, dtype=torch.bool), 0.5))   # 0.5 * (1 + 1)
        1.0
    """
    if alignments.dim() != 3 or mask.shape != alignments.shape[:2]:
        raise ValueError(f"Expected alignments (B, T, L) and mask (B, T). Received: {tuple(alignments.shape)} and "
                         f"{tuple(mask.shape)}")
    total = (alignments * mask[..., None].to(alignments.dtype)).sum(dim=1)  # (B, L): attention each region received
    return weight * ((1.0 - total) ** 2).sum(dim=-1).mean()


def attention_entropy(alignments: Tensor) -> Tensor:
    """``H_bt = -sum_i alpha_bti log alpha_bti`` (0 log 0 = 0): ``(B, T, L) -> (B, T)``.

    Example:
        >>> import torch
        >>> round(float(attention_entropy(torch.tensor([[[0.5, 0.5, 0.0]]]))), 4)   # log 2
        0.6931
    """
    return -(alignments * torch.log(alignments.clamp_min(1e-12))).sum(dim=-1)


REWARDS: tuple[str, ...] = ("caption", "word", "to_go")


def hard_rewards(token_log_probs: Tensor, mask: Tensor, kind: str = "caption") -> Tensor:
    """The reward each step's sampled location gets: ``(N, T) -> (N, T)``, zero on padding.

    ``"caption"``: ``R_rt = sum_t' m_rt' log p(y_rt')`` at every step (the paper: the caption's log-likelihood);
    ``"word"``: ``R_rt = log p(y_rt)``, the word the location was read for; ``"to_go"``:
    ``R_rt = sum_{t' >= t} m_rt' log p(y_rt')``, the words from that step on (the location can only change those).

    Example:
        >>> import torch
        >>> lp, m = torch.tensor([[-1.0, -2.0, -4.0]]), torch.tensor([[True, True, False]])
        >>> [hard_rewards(lp, m, k).tolist() for k in REWARDS]
        [[[-3.0, -3.0, 0.0]], [[-1.0, -2.0, 0.0]], [[-3.0, -2.0, 0.0]]]
    """
    words = token_log_probs.masked_fill(~mask, 0.0)  # (N, T)
    if kind == "caption":
        return words.sum(dim=1, keepdim=True).expand_as(words).masked_fill(~mask, 0.0)
    if kind == "word":
        return words
    if kind == "to_go":
        return words.flip(1).cumsum(1).flip(1).masked_fill(~mask, 0.0)
    raise ValueError(f"Expected a reward in {REWARDS}. Received: {kind!r}")


def leave_one_out_baseline(rewards: Tensor, group: Tensor, sampled: Tensor, mask: Tensor) -> Tensor:
    """``b_rt``: the mean reward at step ``t`` of the *other* sampled rows of row ``r``'s group (Kool et al. 2019).

    Only rows with ``sampled`` and real words (``mask``) count; a row alone in its group gets its own reward
    (advantage 0).

    Args:
        rewards: ``(N, T)``; group: ``(N,)`` long, the caption of each row; sampled: ``(N,)`` bool;
        mask: ``(N, T)`` bool, True for real words.

    Returns:
        ``(N, T)``.

    Example:
        >>> import torch
        >>> r = torch.tensor([[1.0], [2.0], [6.0], [5.0]])
        >>> g, s = torch.tensor([0, 0, 0, 1]), torch.tensor([True, True, True, False])
        >>> leave_one_out_baseline(r, g, s, torch.ones(4, 1, dtype=torch.bool)).flatten().tolist()
        [4.0, 3.5, 1.5, 5.0]
    """
    keep = (sampled[:, None] & mask).to(rewards.dtype)  # (N, T): rows and steps that count
    groups = int(group.max()) + 1 if group.numel() else 0
    total = rewards.new_zeros(groups, rewards.shape[1]).index_add_(0, group, rewards * keep)  # (G, T)
    count = rewards.new_zeros(groups, rewards.shape[1]).index_add_(0, group, keep)  # (G, T)
    others = count[group] - keep  # (N, T): the other counted rows of the group
    baseline = (total[group] - rewards * keep) / others.clamp_min(1.0)
    return torch.where(others > 0, baseline, rewards)


def advantages(token_log_probs: Tensor, mask: Tensor, sampled: Tensor, group: Tensor, reward: str = "caption",
               normalize: bool = False) -> Tensor:
    """``A_rt = R_rt - b_rt`` on sampled rows' real words, 0 elsewhere; no gradient: ``(N, T)``.

    ``normalize`` divides by the standard deviation of ``A`` over the counted entries (not the mean: the
    leave-one-out advantages already average to zero per caption).

    Example:
        >>> import torch
        >>> lp = torch.tensor([[-1.0, -1.0], [-3.0, -1.0]])           # two samples of one caption
        >>> m, s, g = torch.ones(2, 2, dtype=torch.bool), torch.ones(2, dtype=torch.bool), torch.zeros(2).long()
        >>> advantages(lp, m, s, g).tolist()                           # R = -2, -4
        [[2.0, 2.0], [-2.0, -2.0]]
    """
    with torch.no_grad():
        rewards = hard_rewards(token_log_probs, mask, reward)  # (N, T)
        keep = sampled[:, None] & mask  # (N, T)
        adv = (rewards - leave_one_out_baseline(rewards, group, sampled, mask)) * keep
        if normalize and int(keep.sum()) > 1:
            adv = adv / adv[keep].std().clamp_min(1e-6)
        return adv


def hard_weights(step: int, reinforce_weight: float, entropy_weight: float, warmup: int = 0,
                 half_life: int = 0) -> tuple[float, float]:
    """``(lambda_r, lambda_e)`` at a training step: ``lambda_r`` ramps linearly from 0 over ``warmup`` steps
    (the expected-context captions teach the attention first), ``lambda_e`` halves every ``half_life`` steps
    (explore early, commit later); 0 switches either schedule off.

    Example:
        >>> hard_weights(50, 1.0, 0.02, warmup=100, half_life=50), hard_weights(50, 1.0, 0.02)
        ((0.5, 0.01), (1.0, 0.02))
    """
    ramp = min(1.0, step / warmup) if warmup > 0 else 1.0
    decay = 0.5 ** (step / half_life) if half_life > 0 else 1.0
    return reinforce_weight * ramp, entropy_weight * decay


def reinforce_loss(token_log_probs: Tensor, sample_log_probs: Tensor, entropy: Tensor, mask: Tensor,
                   advantage: Tensor, row_weight: Tensor, sampled: Tensor, reinforce_weight: float = 1.0,
                   entropy_weight: float = 0.0) -> Tensor:
    """The surrogate loss of hard attention (see the module docstring), normalised by the real words.

    Args:
        token_log_probs: ``(N, T)`` ``log p(y_t | ...)`` of the reference words.
        sample_log_probs: ``(N, T)`` ``log p(s_t | a)`` of the sampled regions.
        entropy: ``(N, T)`` entropy of each step's attention distribution.
        mask: ``(N, T)`` bool, True for real words.
        advantage: ``(N, T)`` ``A``, a constant (from :func:`advantages`; 0 on rows on the expected context).
        row_weight: ``(N,)`` ``w_r`` (``1 / K`` for each of a caption's ``K`` samples).
        sampled: ``(N,)`` bool, rows on sampled locations (the entropy bonus applies to them).
        reinforce_weight: ``lambda_r``; entropy_weight: ``lambda_e``.

    Returns:
        A scalar tensor whose gradient is minus the paper's estimate divided by ``n``.

    Example:
        >>> import torch
        >>> lp = torch.log(torch.tensor([[0.5, 0.25]]))
        >>> m, z, w = torch.ones(1, 2, dtype=torch.bool), torch.zeros(1, 2), torch.ones(1)
        >>> round(float(reinforce_loss(lp, z, z, m, z, w, torch.zeros(1, dtype=torch.bool))), 4)  # mean NLL
        1.0397
    """
    m = mask.to(token_log_probs.dtype) * row_weight[:, None]  # (N, T): w_r m_rt
    bonus = entropy * sampled[:, None].to(entropy.dtype)  # (N, T)
    per_word = token_log_probs + reinforce_weight * advantage.detach() * sample_log_probs + entropy_weight * bonus
    return -(per_word * m).sum() / m.sum().clamp_min(1e-12)


__all__ = ["REWARDS", "advantages", "attention_entropy", "doubly_stochastic_penalty", "hard_rewards",
           "hard_weights", "leave_one_out_baseline", "reinforce_loss"]
