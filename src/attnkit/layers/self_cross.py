"""Self-attention and cross-attention: parameter-free (the course's first form) and projected.

Shape legend: ``B`` batch, ``T`` sequence length, ``Tq`` query length, ``Tc`` context length,
``D`` width (``d_model`` / ``query_size``), ``Dc`` context width (``context_size``), ``H`` heads.

Parameter-free, no learned weights (:class:`DotSelfAttention`, :class:`DotCrossAttention`):

    y_i = sum_j softmax_j(x_i . x_j) x_j                  (self)
    y_i = sum_j softmax_j(q_i . c_j) c_j                  (cross)

Projected (Vaswani et al. 2017; :class:`SelfAttention`, :class:`CrossAttention`): queries, keys and
values are learned projections and the heads are combined by
:class:`~attnkit.layers.multi_head.MultiHeadAttention`.
"""

from __future__ import annotations

from torch import Tensor, nn

from attnkit.functional import attention
from attnkit.layers._checks import check_mask, check_tensor
from attnkit.layers.multi_head import MultiHeadAttention


def _heads_ok(width: int, num_heads: int) -> None:
    if not isinstance(width, int) or isinstance(width, bool) or width <= 0:
        raise ValueError(f"Expected the width to be a positive integer. Received: {width!r}")
    if not isinstance(num_heads, int) or num_heads <= 0 or width % num_heads:
        raise ValueError(
            f"Expected `num_heads` to be a positive integer dividing the width {width}. Received: num_heads={num_heads!r}"
        )


def _check_cross(query: Tensor, context: Tensor, key_mask: Tensor | None) -> None:
    check_tensor(query, "query", ndim=3)
    check_tensor(context, "context", ndim=3)
    if query.shape[0] != context.shape[0]:
        raise ValueError(
            f"Expected query and context with the same batch size. Received: query.shape={tuple(query.shape)}, "
            f"context.shape={tuple(context.shape)}"
        )
    check_mask(key_mask, "key_mask", context.shape[:2])


class DotSelfAttention(nn.Module):
    """Parameter-free self-attention ``y_i = sum_j softmax_j(x_i . x_j) x_j`` (plain dot product, no scaling).

    Call arguments:
        x: ``(B, T, D)``.
        key_mask: ``(B, T)`` bool, True = real token; padding is never attended to.
        causal: position ``i`` attends only to ``j <= i``.
        return_weights: also return the weights ``(B, T, T)``.

    Returns:
        ``y`` ``(B, T, D)``, or ``(y, weights)``.

    Example:
        >>> import torch
        >>> y, w = DotSelfAttention()(torch.randn(2, 4, 6), return_weights=True)
        >>> tuple(y.shape), tuple(w.shape), len(list(DotSelfAttention().parameters()))
        ((2, 4, 6), (2, 4, 4), 0)
    """

    def forward(
        self, x: Tensor, key_mask: Tensor | None = None, *, causal: bool = False, return_weights: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Self-attention over ``x``; see the class docstring."""
        check_tensor(x, "x", ndim=3)
        check_mask(key_mask, "key_mask", x.shape[:2])
        mask = None if key_mask is None else key_mask[:, None, :]  # (B, 1, T)
        return attention(x, x, x, score="dot", mask=mask, causal=causal, return_weights=return_weights)


class SelfAttention(nn.Module):
    """Projected multi-head self-attention: scaled dot-product scores and an output projection back to ``D``.

    Args:
        d_model: ``D``, the width of ``x`` and of the output (:class:`DotSelfAttention` is the parameter-free
            form).
        num_heads: ``H``, each of size ``D / H``.
        dropout: dropout on the weights in training mode.
        use_bias: biases in the projections.

    Call arguments:
        x: ``(B, T, D)``.
        key_mask: ``(B, T)`` bool, True = real token.
        causal: position ``i`` attends only to ``j <= i``.
        return_weights: also return the weights ``(B, H, T, T)``.

    Returns:
        ``(B, T, D)``, or ``(output, weights)``.

    Example:
        >>> import torch
        >>> layer = SelfAttention(d_model=6, num_heads=2)
        >>> y, w = layer(torch.randn(2, 4, 6), return_weights=True)
        >>> tuple(y.shape), tuple(w.shape)
        ((2, 4, 6), (2, 2, 4, 4))
    """

    def __init__(self, d_model: int, num_heads: int = 1, *, dropout: float = 0.0, use_bias: bool = True) -> None:
        super().__init__()
        self.d_model = d_model
        _heads_ok(d_model, num_heads)
        self.mha = MultiHeadAttention(
            num_heads, d_model // num_heads, dropout=dropout, use_bias=use_bias, query_dim=d_model
        )

    def forward(
        self, x: Tensor, key_mask: Tensor | None = None, *, causal: bool = False, return_weights: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Self-attention over ``x``; see the class docstring."""
        check_tensor(x, "x", ndim=3)
        check_mask(key_mask, "key_mask", x.shape[:2])
        return self.mha(x, x, value_mask=key_mask, use_causal_mask=causal, return_attention_scores=return_weights)


class DotCrossAttention(nn.Module):
    """Parameter-free cross-attention ``y_i = sum_j softmax_j(q_i . c_j) c_j`` (query and context of equal width).

    Call arguments:
        query: ``(B, Tq, D)``; context: ``(B, Tc, D)``.
        key_mask: ``(B, Tc)`` bool, True = real token of the context.
        return_weights: also return the weights ``(B, Tq, Tc)``.

    Returns:
        ``(B, Tq, D)``, or ``(output, weights)``.

    Example:
        >>> import torch
        >>> y, w = DotCrossAttention()(torch.randn(2, 3, 4), torch.randn(2, 7, 4), return_weights=True)
        >>> tuple(y.shape), tuple(w.shape)
        ((2, 3, 4), (2, 3, 7))
    """

    def forward(
        self, query: Tensor, context: Tensor, key_mask: Tensor | None = None, *, return_weights: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Cross-attention from ``query`` to ``context``; see the class docstring."""
        _check_cross(query, context, key_mask)
        if query.shape[-1] != context.shape[-1]:
            raise ValueError(
                "Expected query and context of equal width for parameter-free cross-attention (or use "
                f"CrossAttention). Received: query.shape={tuple(query.shape)}, context.shape={tuple(context.shape)}"
            )
        mask = None if key_mask is None else key_mask[:, None, :]  # (B, 1, Tc)
        return attention(query, context, context, score="dot", mask=mask, return_weights=return_weights)


class CrossAttention(nn.Module):
    """Projected multi-head cross-attention from a query sequence to a context sequence.

    Args:
        query_size: ``D``, the query width and the output width (:class:`DotCrossAttention` is the
            parameter-free form).
        context_size: ``Dc``, the context width (default ``query_size``).
        num_heads: ``H``, each of size ``D / H``.
        dropout, use_bias: as in :class:`SelfAttention`.

    Call arguments:
        query: ``(B, Tq, D)``; context: ``(B, Tc, Dc)``.
        key_mask: ``(B, Tc)`` bool, True = real token.
        return_weights: also return ``(B, H, Tq, Tc)``.

    Returns:
        ``(B, Tq, D)``, or ``(output, weights)``.

    Example:
        >>> import torch
        >>> attn = CrossAttention(query_size=8, context_size=5, num_heads=2)
        >>> tuple(attn(torch.randn(2, 3, 8), torch.randn(2, 7, 5)).shape)
        (2, 3, 8)
    """

    def __init__(
        self,
        query_size: int,
        context_size: int | None = None,
        num_heads: int = 1,
        *,
        dropout: float = 0.0,
        use_bias: bool = True,
    ) -> None:
        super().__init__()
        _heads_ok(query_size, num_heads)
        self.mha = MultiHeadAttention(
            num_heads, query_size // num_heads, dropout=dropout, use_bias=use_bias,
            query_dim=query_size, value_dim_in=context_size or query_size,
        )  # fmt: skip

    def forward(
        self, query: Tensor, context: Tensor, key_mask: Tensor | None = None, *, return_weights: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Cross-attention from ``query`` to ``context``; see the class docstring."""
        _check_cross(query, context, key_mask)
        return self.mha(query, context, value_mask=key_mask, return_attention_scores=return_weights)
