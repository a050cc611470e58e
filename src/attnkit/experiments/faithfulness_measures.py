"""Faithfulness measures of an explanation (one score per token of one text): pure functions.

    comprehensiveness(k) = p(ŷ | x) - p(ŷ | x without its top-k tokens)     high = the top tokens were needed
    sufficiency(k)       = p(ŷ | x) - p(ŷ | only its top-k tokens)          low  = the top tokens are enough
    AOPC                 = mean over the bins k of the above                (ERASER, DeYoung et al. 2020)
    k                    = ceil(f * T) for the fractions f = 1, 5, 10, 20, 50% (at least one token)
    Kendall's tau-b      = (n_c - n_d) / sqrt((n_0 - n_x)(n_0 - n_y))     between two rankings of one text
    permutation test     = |p(ŷ) - p_shuffled(ŷ)| over shuffles of the attention (Jain and Wallace 2019)

"Top" is the order of the scores, highest first, ties by position; removing keeps the order of the rest.
``p`` is a callable ``rows of ids -> (N,) probabilities of ŷ``: the measures know nothing of models.

Shape legend: T tokens of one text, F fractions, N texts, P permutations.

Example:
    >>> probs = lambda rows: torch.tensor([0.9 if 7 in r else 0.2 for r in rows], dtype=torch.float64)
    >>> comp, suff = erasure_curves([5, 7, 6], torch.tensor([0.1, 0.8, 0.3]), probs, (0.2, 0.5))
    >>> comp.tolist(), suff.tolist()                                  # token 7 ranked first: removing it hurts
    ([0.7, 0.7], [0.0, 0.0])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20, 0.50)
"""ERASER's bins: shares of a text's tokens removed (comprehensiveness) or kept (sufficiency)."""

ProbFn = Callable[[list[list[int]]], Tensor]


def top_k_count(n: int, fraction: float) -> int:
    """Tokens in the top ``fraction`` of ``n``: ``ceil(fraction * n)``, at least 1 (0 for an empty text).

    Example:
        >>> [top_k_count(30, f) for f in FRACTIONS]
        [1, 2, 3, 6, 15]
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"Expected a fraction in (0, 1]. Received: {fraction}")
    return min(n, max(1, math.ceil(fraction * n - 1e-9))) if n else 0


def split_top(ids: Sequence[int], scores: Tensor, k: int) -> tuple[list[int], list[int]]:
    """``(ids without their top-k tokens, only the top-k tokens)``, both in text order; top = highest score,
    ties by position.

    Example:
        >>> split_top([10, 11, 12, 13], torch.tensor([0.5, 0.9, 0.5, 0.1]), 2)
        ([12, 13], [10, 11])
    """
    if len(scores) != len(ids):
        raise ValueError(f"Expected one score per token: {len(ids)}. Received: {len(scores)} scores")
    order = torch.as_tensor(scores, dtype=torch.float64).argsort(descending=True, stable=True)
    top = set(order[:k].tolist())
    return [t for i, t in enumerate(ids) if i not in top], [t for i, t in enumerate(ids) if i in top]


def erasure_curves(ids: Sequence[int], scores: Tensor, prob: ProbFn,
                   fractions: Sequence[float] = FRACTIONS) -> tuple[Tensor, Tensor]:
    """Comprehensiveness and sufficiency of one text's explanation at each fraction: ``((F,), (F,))`` float64.

    Args:
        ids: the text's token ids (``T``).
        scores: ``(T,)`` importance, higher = more important for ŷ.
        prob: ``rows -> (N,)`` probability of the predicted class ŷ (of the full text).
        fractions: shares of the tokens removed / kept.
    """
    ids = list(ids)
    rows = [ids]
    for f in fractions:
        rows.extend(split_top(ids, scores, top_k_count(len(ids), f)))
    p = torch.as_tensor(prob(rows), dtype=torch.float64)  # (1 + 2F,)
    return p[0] - p[1::2], p[0] - p[2::2]


def aopc(curve: Tensor) -> float:
    """Area over the perturbation curve: the mean over the bins (ERASER's comprehensiveness / sufficiency AOPC).

    Example:
        >>> aopc(torch.tensor([0.1, 0.2, 0.6], dtype=torch.float64))
        0.3
    """
    return round(float(torch.as_tensor(curve, dtype=torch.float64).mean()), 12)


def kendall_tau(x: Any, y: Any) -> float:
    """Kendall's tau-b between two score vectors of one text (``scipy.stats.kendalltau``'s default);
    NaN when one of them is constant or has fewer than two entries.

    Example:
        >>> kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]), kendall_tau([1, 2, 3], [3, 2, 1])
        (0.6666666666666666, -1.0)
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"Expected two score vectors of one length. Received: {a.shape} and {b.shape}")
    i, j = np.triu_indices(len(a), k=1)
    sa, sb = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])  # (T (T - 1) / 2,)
    den = math.sqrt(float((sa * sa).sum()) * float((sb * sb).sum()))
    return float((sa * sb).sum()) / den if den else math.nan


def permutation_summary(deltas: Tensor, within: float = 0.01) -> dict[str, float]:
    """The distribution of ``|Δp|`` of a permutation test ``(N, P)`` (N texts, P shuffles each).

    Returns:
        ``median`` and ``p90`` of ``|Δp|`` over all shuffles, ``within`` the share of shuffles with
        ``|Δp| <= within``, ``texts_within`` the share of texts whose median ``|Δp|`` is (Jain and Wallace's
        per-instance median), ``max``.

    Example:
        >>> s = permutation_summary(torch.tensor([[0.0, 0.005, 0.02], [0.5, 0.6, 0.7]], dtype=torch.float64))
        >>> round(s["median"], 6), round(s["within"], 4), s["texts_within"]
        (0.26, 0.3333, 0.5)
    """
    d = torch.as_tensor(deltas, dtype=torch.float64)
    if d.dim() != 2 or d.numel() == 0:
        raise ValueError(f"Expected deltas (N texts, P permutations), not empty. Received: {tuple(d.shape)}")
    flat = d.flatten().numpy()
    return {"median": float(np.median(flat)), "p90": float(np.quantile(flat, 0.9)),
            "within": float((flat <= within).mean()),
            "texts_within": float((np.median(d.numpy(), axis=1) <= within).mean()), "max": float(flat.max())}


__all__ = ["FRACTIONS", "aopc", "erasure_curves", "kendall_tau", "permutation_summary", "split_top", "top_k_count"]
