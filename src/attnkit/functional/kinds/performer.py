"""Performer attention: FAVOR+ positive orthogonal random features (Choromanski et al. 2021).

The softmax kernel is an expectation over Gaussian ``w``: ``exp(x . y) = E_w[exp(w.x - |x|^2/2) exp(w.y - |y|^2/2)]``.
With ``m`` random rows ``w_1..w_m`` (orthogonal in blocks of ``Dk``, each scaled to the length of a
Gaussian vector) and ``x = scale^(1/2) q``, ``y = scale^(1/2) k``:

    phi(x) = exp(W x - |x|^2 / 2 - c) / sqrt(m) + eps          (m,) positive features
    output_i ~= softmax attention,  computed as phi(q_i)^T sum_j phi(k_j) v_j^T / (phi(q_i)^T sum_j phi(k_j))

(``c`` is a stabiliser, the row maximum for queries and the maximum over every allowed key for keys; it
cancels in the ratio). Causal attention uses the chunked prefix sums of :mod:`._prefix`. The estimate is
unbiased for the kernel, but its relative variance grows like ``exp(|x + y|^2)``: accurate for small
``scale * |q|^2``, poor for large ones. Measured and tested (seed 0, width 16, default ``scale = 1/4``,
64 keys, queries and keys ``N(0, 0.5^2)``): mean absolute output error 0.054, 0.028, 0.019, 0.0073 at
``m`` = 16, 64, 256, 1024, documented bound **< 0.03 at m = 256, < 0.012 at m = 1024**. With ``N(0, 1)``
inputs the error at m = 1024 (0.11) is about that of uniform weights (0.12): the approximation then
carries little of the softmax's sharpness, the weakness the Long Range Arena results show.

Time ``O((Tq + Tk) * m * (Dk + Dv))`` (causal: plus ``O(T * C * (m + Dv))``); memory ``O((Tq + Tk) * m +
m * Dv)`` (causal: ``O(T * m + T / C * m * Dv + T * C)``): linear in the length.

Masks: a key padding mask (``(..., 1, Tk)``-shaped) and ``causal``; pair masks raise. ``return_weights``
gives the normalised approximate weights ``(..., Tq, Tk)`` (materialised). No dropout.

Shape legend: ``...`` leading dims, Tq/Tk query/key length, Dk/Dv widths, m random features, C chunk.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attnkit.functional.kinds._prefix import feature_attention
from attnkit.functional.kinds.base import AttentionKind


def default_num_features(dim: int) -> int:
    """``m = Dk * ceil(ln Dk)`` (the ``d log d`` of the paper), at least ``Dk``.

    Example:
        >>> default_num_features(64)
        320
    """
    return dim * max(1, math.ceil(math.log(dim))) if dim > 1 else 1


def orthogonal_features(num_features: int, dim: int, generator: torch.Generator) -> Tensor:
    """``(m, Dk)`` float64 rows: blocks of ``Dk`` orthonormal rows (QR of a Gaussian matrix), each row
    scaled by the norm of an independent Gaussian vector, so every row is marginally ``N(0, I)``.

    Example:
        >>> import torch
        >>> w = orthogonal_features(6, 4, torch.Generator().manual_seed(0))
        >>> w.shape, bool(abs(float(w[0] @ w[1])) < 1e-12)
        (torch.Size([6, 4]), True)
    """
    blocks = []
    for _ in range(-(-num_features // dim)):  # a loop over blocks of features, not positions
        gaussian = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
        q, _ = torch.linalg.qr(gaussian)  # (Dk, Dk) orthonormal columns
        blocks.append(q.T)
    rows = torch.cat(blocks)[:num_features]  # (m, Dk)
    norms = torch.randn(num_features, dim, generator=generator, dtype=torch.float64).norm(dim=1)  # chi(Dk)
    return rows * norms[:, None]


def favor_features(x: Tensor, projection: Tensor, is_query: bool, key_mask: Tensor | None = None,
                   eps: float = 1e-6) -> Tensor:
    """Positive random features ``(..., T, D) -> (..., T, m)`` of already scaled queries or keys.

    Example:
        >>> import torch
        >>> w = orthogonal_features(32, 4, torch.Generator().manual_seed(0))
        >>> phi = favor_features(torch.randn(3, 5, 4), w, is_query=True)
        >>> phi.shape, bool((phi > 0).all())
        (torch.Size([3, 5, 32]), True)
    """
    wx = x @ projection.to(x.dtype).T  # (..., T, m)
    if is_query:
        c = wx.amax(dim=-1, keepdim=True)  # (..., T, 1): per query, cancels in its ratio
    else:
        masked = wx if key_mask is None else wx.masked_fill(~key_mask[..., None], float("-inf"))
        c = masked.amax(dim=(-2, -1), keepdim=True)  # (..., 1, 1): one constant for all keys
        c = torch.where(torch.isfinite(c), c, torch.zeros_like(c))  # every key masked
    half_sq = (x * x).sum(-1, keepdim=True) / 2  # (..., T, 1)
    return (torch.exp(wx - half_sq - c.detach()) + eps) / math.sqrt(projection.shape[0])


class PerformerAttention(AttentionKind):
    """FAVOR+ attention with redrawable orthogonal random features.

    Args:
        num_features: ``m`` (default ``Dk * ceil(ln Dk)``, fixed at the first draw).
        dim: ``Dk``, to draw the features now (else at the first call).
        seed: the features of draw ``n`` are a function of ``(seed, n, m, Dk)`` only.
        eps: added to every feature (the paper's numerical stabiliser), keeps denominators positive.

    The features live in the non-persistent buffer ``projection (m, Dk)`` (moved by ``.to()``, not saved).
    :meth:`redraw` draws new ones (Performer redraws periodically during training).

    Example:
        >>> import torch
        >>> from attnkit.functional import attention
        >>> kind = PerformerAttention(num_features=256, seed=0)
        >>> q, k, v = torch.randn(1, 64, 16) / 2, torch.randn(1, 64, 16) / 2, torch.randn(1, 64, 4)
        >>> err = (attention(q, k, v, kind=kind) - attention(q, k, v)).abs().mean()
        >>> bool(err < 0.06)
        True
        >>> first = kind.projection.clone(); kind.redraw(); bool(torch.equal(first, kind.projection))
        False
    """

    name = "performer"

    def __init__(self, num_features: int | None = None, dim: int | None = None, seed: int = 0,
                 eps: float = 1e-6) -> None:
        super().__init__()
        for arg, value in (("num_features", num_features), ("dim", dim)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"Expected {arg} a positive int or None for kind='performer'. Received: {value!r}")
        self.num_features, self.seed, self.eps, self.draws = num_features, int(seed), float(eps), 0
        self.register_buffer("projection", torch.empty(0, 0, dtype=torch.float64), persistent=False)
        if dim is not None:
            self.projection = self._draw(dim, None)

    def options(self) -> dict:
        return {"num_features": self.num_features, "seed": self.seed, "draws": self.draws}

    def _draw(self, dim: int, generator: torch.Generator | None) -> Tensor:
        gen = generator if generator is not None else torch.Generator().manual_seed(self.seed * 1_000_003 + self.draws)
        m = self.num_features or default_num_features(dim)
        self.num_features = m
        return orthogonal_features(m, dim, gen).to(self.projection.device)

    def redraw(self, generator: torch.Generator | None = None, dim: int | None = None) -> None:
        """Draw new features: from ``generator`` when given, else the next seeded draw (``draws += 1``).

        Args:
            generator: a ``torch.Generator`` (CPU) to draw from.
            dim: ``Dk``; default the width of the current features.
        """
        dim = dim or self.projection.shape[-1]
        if not dim:
            raise ValueError("Expected features to redraw: pass dim= or call the kind once. Received: no features yet")
        if generator is None:
            self.draws += 1
        self.projection = self._draw(dim, generator)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, *, key_mask: Tensor | None, causal: bool,
                scale: float, dropout_p: float, return_weights: bool,
                chunk_size: int | None) -> tuple[Tensor, Tensor | None]:
        if self.projection.shape[-1] != query.shape[-1]:
            self.projection = self._draw(query.shape[-1], None)
        root = math.sqrt(scale)
        phi_q = favor_features(query * root, self.projection, True, eps=self.eps)  # (..., Tq, m)
        phi_k = favor_features(key * root, self.projection, False, key_mask, eps=self.eps)  # (..., Tk, m)
        return feature_attention(phi_q, phi_k, value, key_mask, causal, chunk_size, return_weights)
