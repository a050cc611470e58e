"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs").

The softmax kernel ``exp(q . k)`` is replaced by a dot product of positive features,
``phi(x) = elu(x) + 1``, so the sum over keys can be taken once and shared by every query:

    output_i = phi(q_i)^T (sum_j phi(k_j) v_j^T) / (phi(q_i)^T sum_j phi(k_j))

and, when causal, sums over ``j <= i`` as chunked prefix sums (:mod:`._prefix`). This is its own
attention, not an approximation of softmax attention: it equals the dense formula
``A = phi(Q) phi(K)^T`` (masked, rows normalised), ``A V`` exactly (tested in float64). ``scale`` is not
used (``phi`` replaces ``exp(scale * q . k)``).

Time ``O((Tq + Tk) * Dk * Dv)`` (causal: ``O(T * Dk * Dv + T * C * (Dk + Dv))``); memory ``O(Dk * Dv +
(Tq + Tk) * Dk)`` (causal: ``O(T / C * Dk * Dv + T * C)``, ``C ~ sqrt(Dk * Dv)``): linear in the length.

Masks: a key padding mask (``(..., 1, Tk)``-shaped) and ``causal``; pair masks raise. ``return_weights``
materialises ``A`` ``(..., Tq, Tk)``. No dropout (there is no weight matrix to drop from).

Shape legend: ``...`` leading dims, Tq/Tk query/key length, T both when causal, Dk/Dv widths, C chunk.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from attnkit.functional.kinds._prefix import feature_attention
from attnkit.functional.kinds.base import AttentionKind


def elu_feature(x: Tensor) -> Tensor:
    """``phi(x) = elu(x) + 1 > 0``, elementwise: ``(..., T, D) -> (..., T, D)``.

    Example:
        >>> import torch
        >>> elu_feature(torch.tensor([-1.0, 0.0, 2.0]))
        tensor([0.3679, 1.0000, 3.0000])
    """
    return F.elu(x) + 1.0


class LinearAttention(AttentionKind):
    """Linear attention with the feature map ``elu(x) + 1``.

    Example:
        >>> import torch
        >>> from attnkit.functional import attention
        >>> q, k, v = torch.randn(2, 40, 8), torch.randn(2, 40, 8), torch.randn(2, 40, 3)
        >>> out, w = attention(q, k, v, kind="linear", causal=True, return_weights=True)
        >>> bool(torch.allclose(out, attention(q, k, v, kind="linear", causal=True), atol=1e-5))
        True
        >>> bool(w[:, 0, 1:].abs().max() == 0), bool(torch.allclose(w.sum(-1), torch.ones(2, 40)))
        (True, True)
    """

    name = "linear"

    def forward(self, query: Tensor, key: Tensor, value: Tensor, *, key_mask: Tensor | None, causal: bool,
                scale: float, dropout_p: float, return_weights: bool,
                chunk_size: int | None) -> tuple[Tensor, Tensor | None]:
        return feature_attention(elu_feature(query), elu_feature(key), value, key_mask, causal, chunk_size,
                                 return_weights)
