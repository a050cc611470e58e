"""The two training signals of Show, Attend and Tell beyond cross-entropy (Xu et al. 2015, sections 4.1-4.2).

Shape legend: ``B`` captions, ``T`` words (steps), ``L`` image regions. The alignments ``alpha_bti`` are the
attention weights of step ``t`` over the regions.

Doubly stochastic regularisation (soft attention, eq. 14): each region should receive about as much
attention over the whole caption as any other,

    penalty = lambda * mean_b sum_i (1 - sum_t alpha_bti)^2          (steps t over real words only)

REINFORCE for hard attention (eq. 12): with ``s`` the sampled regions, ``R_b = log p(y_b | s_b, a)`` the
caption's log-likelihood (the reward), ``b`` a moving-average baseline and ``H`` the entropy of the
attention distribution, the gradient of the paper's objective is

    d/dW [ log p(y|s,a) + lambda_r (R - b) log p(s|a) + lambda_e H[s] ]

so the surrogate loss to minimise (its gradient is minus that, ``R - b`` taken as a constant) is

    loss = -( sum_b R_b + lambda_r sum_b (R_b - b) sum_t log p(s_bt) + lambda_e sum_b sum_t H_bt ) / n

with ``n`` the number of real words. Rows trained on the expected context (``sampled = False``) contribute
only their likelihood.

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


def reinforce_loss(token_log_probs: Tensor, sample_log_probs: Tensor, entropy: Tensor, mask: Tensor,
                   sampled: Tensor, baseline: float, reinforce_weight: float = 1.0,
                   entropy_weight: float = 0.0) -> Tensor:
    """The surrogate loss of hard attention (see the module docstring), normalised by the real words.

    Args:
        token_log_probs: ``(B, T)`` ``log p(y_t | ...)`` of the reference words.
        sample_log_probs: ``(B, T)`` ``log p(s_t | a)`` of the sampled regions.
        entropy: ``(B, T)`` entropy of each step's attention distribution.
        mask: ``(B, T)`` bool, True for real words.
        sampled: ``(B,)`` bool, True for rows that used a sampled region (the others used the expectation).
        baseline: ``b``, the moving average of the reward.
        reinforce_weight: ``lambda_r``; entropy_weight: ``lambda_e``.

    Returns:
        A scalar tensor whose gradient is minus the paper's estimate divided by ``n``.

    Example:
        >>> import torch
        >>> lp = torch.log(torch.tensor([[0.5, 0.25]]))
        >>> m, s = torch.ones(1, 2, dtype=torch.bool), torch.zeros(1, dtype=torch.bool)
        >>> round(float(reinforce_loss(lp, torch.zeros(1, 2), torch.zeros(1, 2), m, s, 0.0)), 4)  # mean NLL
        1.0397
    """
    m = mask.to(token_log_probs.dtype)
    n = m.sum().clamp_min(1.0)
    reward = (token_log_probs * m).sum(dim=1)  # (B,) R_b = log p(y_b | s_b, a)
    rows = sampled.to(token_log_probs.dtype)  # (B,)
    advantage = (reward.detach() - baseline) * rows  # (B,) R - b, a constant for the gradient
    policy = (sample_log_probs * m).sum(dim=1)  # (B,) log p(s_b | a)
    bonus = (entropy * m).sum(dim=1) * rows  # (B,)
    objective = reward.sum() + reinforce_weight * (advantage * policy).sum() + entropy_weight * bonus.sum()
    return -objective / n


__all__ = ["attention_entropy", "doubly_stochastic_penalty", "reinforce_loss"]
