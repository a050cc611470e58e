"""Self-attention and cross-attention, parameter-free or projected.

Shape legend: ``B`` batch, ``T`` sequence length, ``Tq`` query length, ``Tc`` context length,
``D`` width, ``Dc`` context width, ``H`` heads.

Parameter-free (the course's first self-attention, no learned weights):

    y_i = sum_j softmax_j(x_i . x_j) x_j                  (self)
    y_i = sum_j softmax_j(q_i . c_j) c_j                  (cross)

Projected (Vaswani et al. 2017): queries, keys and values are learned projections and the heads
are combined by :class:`~attnkit.layers.multi_head.MultiHeadAttention`.
"""

from __future__ import annotations

from torch import Tensor, nn

from attnkit.functional import attention
from attnkit.layers._checks import check_mask, check_tensor
from attnkit.layers.multi_head import MultiHeadAttention


def _heads_ok(dim: int, num_heads: int) -> None:
    if not isinstance(num_heads, int) or num_heads <= 0 or dim % num_heads:
        raise ValueError(
            f"Expected `num_heads` to be a positive integer dividing the width {dim}. Received: num_heads={num_heads!r}"
        )


class SelfAttention(nn.Module):
    """Every position attends to every position of the same sequence.

    Args:
        dim: ``D``. ``None`` gives the parameter-free form ``y_i = sum_j softmax_j(x_i . x_j) x_j``
            (plain dot product, no scaling); an int gives projected multi-head attention with
            scaled dot-product scores and an output projection back to ``D``.
        num_heads: ``H`` (projected form), each of size ``D / H``.
        dropout: dropout on the weights in training mode (projected form).
        use_bias: biases in the projections.

    Call arguments:
        x: ``(B, T, D)``.
        mask: ``(B, T)`` bool, True = real token; padding is never attended to.
        use_causal_mask: position ``i`` attends only to ``j <= i``.
        return_attention_scores: also return the weights: ``(B, T, T)`` parameter-free,
            ``(B, H, T, T)`` projected.

    Example:
        >>> import torch
        >>> x = torch.randn(2, 4, 6)
        >>> y, w = SelfAttention()(x, return_attention_scores=True)
        >>> tuple(y.shape), tuple(w.shape)
        ((2, 4, 6), (2, 4, 4))
        >>> tuple(SelfAttention(6, num_heads=2)(x).shape)
        (2, 4, 6)
    """

    def __init__(self, dim: int | None = None, num_heads: int = 1, *, dropout: float = 0.0, use_bias: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.mha: MultiHeadAttention | None = None
        if dim is not None:
            _heads_ok(dim, num_heads)
            self.mha = MultiHeadAttention(num_heads, dim // num_heads, dropout=dropout, use_bias=use_bias, query_dim=dim)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        use_causal_mask: bool = False,
        return_attention_scores: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Self-attention over ``x``; see the class docstring."""
        check_tensor(x, "x", ndim=3)
        check_mask(mask, "mask", x.shape[:2])
        if self.mha is not None:
            return self.mha(
                x, x, value_mask=mask, use_causal_mask=use_causal_mask, return_attention_scores=return_attention_scores
            )
        key_mask = None if mask is None else mask[:, None, :]  # (B, 1, T)
        return attention(x, x, x, score="dot", mask=key_mask, causal=use_causal_mask, return_weights=return_attention_scores)


class CrossAttention(nn.Module):
    """Queries from one sequence attend to the positions of another (the context).

    Args:
        query_dim: ``D``. ``None`` gives the parameter-free form ``y_i = sum_j softmax_j(q_i . c_j) c_j``
            (query and context of equal width); an int gives projected multi-head attention whose
            output has width ``D``.
        context_dim: ``Dc`` (projected form; default ``query_dim``).
        num_heads: ``H``, each of size ``D / H``.
        dropout, use_bias: as in :class:`SelfAttention`.

    Call arguments:
        query: ``(B, Tq, D)``; context: ``(B, Tc, Dc)``.
        context_mask: ``(B, Tc)`` bool, True = real token.
        return_attention_scores: also return ``(B, Tq, Tc)`` (parameter-free) or ``(B, H, Tq, Tc)``.

    Example:
        >>> import torch
        >>> attn = CrossAttention(8, context_dim=5, num_heads=2)
        >>> tuple(attn(torch.randn(2, 3, 8), torch.randn(2, 7, 5)).shape)
        (2, 3, 8)
    """

    def __init__(
        self,
        query_dim: int | None = None,
        context_dim: int | None = None,
        num_heads: int = 1,
        *,
        dropout: float = 0.0,
        use_bias: bool = True,
    ) -> None:
        super().__init__()
        self.mha: MultiHeadAttention | None = None
        if query_dim is not None:
            _heads_ok(query_dim, num_heads)
            self.mha = MultiHeadAttention(
                num_heads, query_dim // num_heads, dropout=dropout, use_bias=use_bias,
                query_dim=query_dim, value_dim_in=context_dim or query_dim,
            )  # fmt: skip
        elif context_dim is not None:
            raise ValueError(
                f"Expected `query_dim` when `context_dim` is given (projected form). Received: query_dim=None, "
                f"context_dim={context_dim}"
            )

    def forward(
        self, query: Tensor, context: Tensor, context_mask: Tensor | None = None, *, return_attention_scores: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Cross-attention from ``query`` to ``context``; see the class docstring."""
        check_tensor(query, "query", ndim=3)
        check_tensor(context, "context", ndim=3)
        if query.shape[0] != context.shape[0]:
            raise ValueError(
                f"Expected query and context with the same batch size. Received: query.shape={tuple(query.shape)}, "
                f"context.shape={tuple(context.shape)}"
            )
        check_mask(context_mask, "context_mask", context.shape[:2])
        if self.mha is not None:
            return self.mha(query, context, value_mask=context_mask, return_attention_scores=return_attention_scores)
        if query.shape[-1] != context.shape[-1]:
            raise ValueError(
                "Expected query and context of equal width for parameter-free cross-attention (or pass query_dim). "
                f"Received: query.shape={tuple(query.shape)}, context.shape={tuple(context.shape)}"
            )
        key_mask = None if context_mask is None else context_mask[:, None, :]  # (B, 1, Tc)
        return attention(query, context, context, score="dot", mask=key_mask, return_weights=return_attention_scores)
