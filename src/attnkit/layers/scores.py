"""Trainable score modules: they own the weights of the score functions of :mod:`attnkit.functional.scores`.

Each module maps ``(query (..., Tq, Dq), key (..., Tk, Dk)) -> scores (..., Tq, Tk)`` and so plugs
straight into ``attnkit.functional.attention(q, k, v, score=module)``. The ones with projections also
offer ``project``/``combine`` (project once, score key chunks many times) and ``expansion`` (memory per
score element), which the chunked online-softmax path of ``attention`` uses.

Example:
    >>> from attnkit.functional import attention
    >>> score = AdditiveScore(query_dim=16, key_dim=32, hidden_dim=8)
    >>> attention(torch.randn(2, 5, 16), torch.randn(2, 7, 32), torch.randn(2, 7, 4), score=score).shape
    torch.Size([2, 5, 4])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnkit.functional import scores as S


class DotScore(nn.Module):
    """``q . k`` (no weights). Shapes: ``(..., Tq, D), (..., Tk, D) -> (..., Tq, Tk)``."""

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.dot(query, key)


class ScaledDotScore(nn.Module):
    """``q . k / sqrt(d)`` (no weights); ``scale`` overrides ``1/sqrt(d)``."""

    def __init__(self, scale: float | None = None) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.scaled_dot(query, key, self.scale)


class CosineScore(nn.Module):
    """``q . k / (|q| |k|)`` (no weights)."""

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.cosine(query, key)


class GeneralScore(nn.Module):
    """General (bilinear) score ``q^T W_a k`` (Luong et al. 2015) with a learned ``W_a (Dq, Dk)``.

    Example:
        >>> GeneralScore(4, 6)(torch.randn(3, 4), torch.randn(5, 6)).shape
        torch.Size([3, 5])
    """

    expansion = 1

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.w_a = nn.Parameter(torch.empty(query_dim, key_dim))
        nn.init.uniform_(self.w_a, -1 / math.sqrt(key_dim), 1 / math.sqrt(key_dim))

    def project(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        return query @ self.w_a, key  # (..., Tq, Dk), (..., Tk, Dk)

    def combine(self, q_proj: Tensor, key: Tensor) -> Tensor:
        return q_proj @ key.transpose(-2, -1)

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.general(query, key, self.w_a)


class AdditiveScore(nn.Module):
    """Additive (Bahdanau) score ``w_v^T tanh(W_q q + W_k k)`` (Bahdanau et al. 2015, their alignment model).

    Args:
        query_dim: ``Dq``; key_dim: ``Dk``; hidden_dim: ``H``, the width of the alignment model.
        bias: add a learned bias inside the tanh (the paper has none).

    Example:
        >>> AdditiveScore(4, 6, 8)(torch.randn(2, 3, 4), torch.randn(2, 5, 6)).shape
        torch.Size([2, 3, 5])
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int, bias: bool = False) -> None:
        super().__init__()
        self.w_q = nn.Linear(query_dim, hidden_dim, bias=bias)
        self.w_k = nn.Linear(key_dim, hidden_dim, bias=False)
        self.w_v = nn.Parameter(torch.empty(hidden_dim).uniform_(-1 / math.sqrt(hidden_dim), 1 / math.sqrt(hidden_dim)))
        self.expansion = hidden_dim

    def project(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        return self.w_q(query), self.w_k(key)  # (..., Tq, H), (..., Tk, H)

    def combine(self, q_proj: Tensor, k_proj: Tensor) -> Tensor:
        return S.additive_from_projected(q_proj, k_proj, self.w_v)

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.additive(query, key, self.w_q.weight, self.w_k.weight, self.w_v, self.w_q.bias)


class ConcatScore(AdditiveScore):
    """Concat score ``v_a^T tanh(W_a [q; k])`` (Luong et al. 2015).

    The same function as :class:`AdditiveScore` with ``W_a = [W_q | W_k]``; ``w_a`` returns that
    ``(H, Dq + Dk)`` matrix so the formula can be checked against :func:`attnkit.functional.concat`.
    """

    @property
    def w_a(self) -> Tensor:
        return torch.cat([self.w_q.weight, self.w_k.weight], dim=1)  # (H, Dq + Dk)

    @property
    def v_a(self) -> Tensor:
        return self.w_v

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.concat(query, key, self.w_a, self.w_v) if self.w_q.bias is None else super().forward(query, key)


class LocationScore(nn.Module):
    """Location-based score ``W_a q`` (Luong et al. 2015): alignment from the query alone, over positions.

    Args:
        query_dim: ``Dq``; max_length: ``Lmax``, the most key positions it can score.

    Example:
        >>> LocationScore(4, max_length=10)(torch.randn(3, 4), torch.randn(7, 5)).shape
        torch.Size([3, 7])
    """

    chunkable = False  # scores depend on absolute key positions: a key chunk cannot be scored alone

    def __init__(self, query_dim: int, max_length: int) -> None:
        super().__init__()
        self.w_a = nn.Parameter(torch.empty(max_length, query_dim))
        nn.init.uniform_(self.w_a, -1 / math.sqrt(query_dim), 1 / math.sqrt(query_dim))

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.location(query, key, self.w_a)
