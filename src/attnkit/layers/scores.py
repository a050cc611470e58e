"""Trainable score modules: they own the weights of the score functions of :mod:`attnkit.functional.scores`.

Each module maps ``(query (..., Tq, Dq), key (..., Tk, Dk)) -> scores (..., Tq, Tk)`` and so plugs
straight into ``attnkit.functional.attention(q, k, v, score=module)``. The ones with projections also
offer ``project``/``combine`` (project once, score key chunks many times) and ``expansion`` (memory per
score element), which the chunked online-softmax path of ``attention`` uses.

Shape legend: ``Tq``/``Tk`` query/key length, ``Dq``/``Dk`` query/key width (``query_size``/``key_size``),
``A`` hidden width of an additive score (``hidden_dim``), ``L`` key positions a location score knows
(``max_length``), ``...`` leading dims broadcast between query and key.

Example:
    >>> import torch
    >>> from attnkit.functional import attention
    >>> score = AdditiveScore(query_size=16, key_size=32, hidden_dim=8)
    >>> attention(torch.randn(2, 5, 16), torch.randn(2, 7, 32), torch.randn(2, 7, 4), score=score).shape
    torch.Size([2, 5, 4])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnkit.functional import scores as S


def _check_sizes(**sizes: int) -> None:
    for name, v in sizes.items():
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={v!r}")


class DotScore(nn.Module):
    """Dot score ``q . k`` (Luong et al. 2015), no weights: ``(..., Tq, D), (..., Tk, D) -> (..., Tq, Tk)``.

    ``query_size``/``key_size`` are ``None``: any width works as long as query and key agree.

    Example:
        >>> import torch
        >>> DotScore()(torch.tensor([[1., 2.]]), torch.tensor([[3., 4.], [1., 0.]]))
        tensor([[11.,  1.]])
    """

    query_size: int | None = None
    key_size: int | None = None
    expansion = 1  # working memory: one float per score element (no probe needed)

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.dot(query, key)


class ScaledDotScore(nn.Module):
    """Scaled dot score ``q . k / sqrt(D)`` (Vaswani et al. 2017), no weights; ``scale`` overrides ``1/sqrt(D)``.

    Example:
        >>> import torch
        >>> ScaledDotScore()(torch.tensor([[1., 2., 0., 0.]]), torch.tensor([[3., 4., 0., 0.]]))
        tensor([[5.5000]])
    """

    query_size: int | None = None
    key_size: int | None = None
    expansion = 1  # working memory: one float per score element (no probe needed)

    def __init__(self, scale: float | None = None) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.scaled_dot(query, key, self.scale)


class CosineScore(nn.Module):
    """Cosine score ``q . k / (|q| |k|)``, no weights: ``(..., Tq, D), (..., Tk, D) -> (..., Tq, Tk)``.

    Example:
        >>> import torch
        >>> CosineScore()(torch.tensor([[1., 0.]]), torch.tensor([[2., 0.], [0., 3.]]))
        tensor([[1., 0.]])
    """

    query_size: int | None = None
    key_size: int | None = None
    expansion = 1  # working memory: one float per score element (no probe needed)

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.cosine(query, key)


class GeneralScore(nn.Module):
    """General (bilinear) score ``q^T W_a k`` (Luong et al. 2015) with a learned ``W_a (Dq, Dk)``.

    Args:
        query_size: ``Dq``, the query width.
        key_size: ``Dk``, the key width.

    Call arguments:
        query: ``(..., Tq, Dq)``; key: ``(..., Tk, Dk)``.

    Returns:
        Scores ``(..., Tq, Tk)``.

    Example:
        >>> import torch
        >>> GeneralScore(query_size=4, key_size=6)(torch.randn(3, 4), torch.randn(5, 6)).shape
        torch.Size([3, 5])
    """

    expansion = 1

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        _check_sizes(query_size=query_size, key_size=key_size)
        self.query_size, self.key_size = query_size, key_size
        self.w_a = nn.Parameter(torch.empty(query_size, key_size))
        nn.init.uniform_(self.w_a, -1 / math.sqrt(key_size), 1 / math.sqrt(key_size))

    def project(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        return query @ self.w_a, key  # (..., Tq, Dk), (..., Tk, Dk)

    def combine(self, q_proj: Tensor, key: Tensor) -> Tensor:
        return q_proj @ key.transpose(-2, -1)

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.general(query, key, self.w_a)


class AdditiveScore(nn.Module):
    """Additive (Bahdanau) score ``w_v^T tanh(W_q q + W_k k)`` (Bahdanau et al. 2015, their alignment model).

    Args:
        query_size: ``Dq``, the query width.
        key_size: ``Dk``, the key width.
        hidden_dim: ``A``, the width of the alignment model.
        bias: add a learned bias inside the tanh (the paper has none).

    Call arguments:
        query: ``(..., Tq, Dq)``; key: ``(..., Tk, Dk)``.

    Returns:
        Scores ``(..., Tq, Tk)``.

    Example:
        >>> import torch
        >>> AdditiveScore(query_size=4, key_size=6, hidden_dim=8)(torch.randn(2, 3, 4), torch.randn(2, 5, 6)).shape
        torch.Size([2, 3, 5])
    """

    def __init__(self, query_size: int, key_size: int, hidden_dim: int, bias: bool = False) -> None:
        super().__init__()
        _check_sizes(query_size=query_size, key_size=key_size, hidden_dim=hidden_dim)
        self.query_size, self.key_size, self.hidden_dim = query_size, key_size, hidden_dim
        self.w_q = nn.Linear(query_size, hidden_dim, bias=bias)
        self.w_k = nn.Linear(key_size, hidden_dim, bias=False)
        self.w_v = nn.Parameter(torch.empty(hidden_dim).uniform_(-1 / math.sqrt(hidden_dim), 1 / math.sqrt(hidden_dim)))
        self.expansion = hidden_dim

    def project(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        return self.w_q(query), self.w_k(key)  # (..., Tq, A), (..., Tk, A)

    def combine(self, q_proj: Tensor, k_proj: Tensor) -> Tensor:
        return S.additive_from_projected(q_proj, k_proj, self.w_v)

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.additive(query, key, self.w_q.weight, self.w_k.weight, self.w_v, self.w_q.bias)


class ConcatScore(AdditiveScore):
    """Concat score ``v_a^T tanh(W_a [q; k])`` (Luong et al. 2015).

    The same function as :class:`AdditiveScore` with ``W_a = [W_q | W_k]``; ``w_a`` returns that
    ``(A, Dq + Dk)`` matrix so the formula can be checked against :func:`attnkit.functional.concat`.
    Arguments as :class:`AdditiveScore` (``query_size``, ``key_size``, ``hidden_dim``, ``bias``).

    Example:
        >>> import torch
        >>> score = ConcatScore(query_size=4, key_size=6, hidden_dim=5)
        >>> tuple(score.w_a.shape), tuple(score(torch.randn(2, 3, 4), torch.randn(2, 7, 6)).shape)
        ((5, 10), (2, 3, 7))
    """

    @property
    def w_a(self) -> Tensor:
        return torch.cat([self.w_q.weight, self.w_k.weight], dim=1)  # (A, Dq + Dk)

    @property
    def v_a(self) -> Tensor:
        return self.w_v

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.concat(query, key, self.w_a, self.w_v) if self.w_q.bias is None else super().forward(query, key)


class LocationScore(nn.Module):
    """Location-based score ``W_a q`` (Luong et al. 2015): alignment from the query alone, over positions.

    Args:
        query_size: ``Dq``, the query width.
        max_length: ``L``, the most key positions it can score.

    Call arguments:
        query: ``(..., Tq, Dq)``; key: ``(..., Tk, Dk)`` with ``Tk <= L`` (only its length is used).

    Returns:
        Scores ``(..., Tq, Tk)``.

    Example:
        >>> import torch
        >>> LocationScore(query_size=4, max_length=10)(torch.randn(3, 4), torch.randn(7, 5)).shape
        torch.Size([3, 7])
    """

    chunkable = False  # scores depend on absolute key positions: a key chunk cannot be scored alone
    key_size: int | None = None  # any key width: only the positions count

    def __init__(self, query_size: int, max_length: int) -> None:
        super().__init__()
        _check_sizes(query_size=query_size, max_length=max_length)
        self.query_size, self.max_length = query_size, max_length
        self.w_a = nn.Parameter(torch.empty(max_length, query_size))
        nn.init.uniform_(self.w_a, -1 / math.sqrt(query_size), 1 / math.sqrt(query_size))

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return S.location(query, key, self.w_a)
