"""Bahdanau (additive) attention, the alignment model of Bahdanau et al. 2015.

Shape legend: ``B`` batch, ``Tq`` decoder steps scored at once, ``Tk`` source length,
``Dq`` decoder state width (``query_size``), ``Dk`` annotation width (``key_size``), ``A`` alignment-model
width (``hidden_dim``).

    e_ij   = w_v^T tanh(W_q s_{i-1} + W_k h_j)      (alignment model)
    a_ij   = exp(e_ij) / sum_k exp(e_ik)            (over the real source tokens)
    c_i    = sum_j a_ij h_j                         (context vector)
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from attnkit.functional import attention
from attnkit.functional.scores import additive_from_projected
from attnkit.layers._checks import check_last_dim, check_query_keys, check_tensor
from attnkit.layers.scores import AdditiveScore


class _ProjectedAdditive:
    """``(W_q s, W_k h) -> w_v^T tanh(W_q s + W_k h)``: the score once both sides are projected."""

    def __init__(self, w_v: Tensor) -> None:
        self.w_v = w_v
        self.expansion = w_v.shape[0]  # memory per score element, for the chunked path

    def __call__(self, q_proj: Tensor, k_proj: Tensor) -> Tensor:
        return additive_from_projected(q_proj, k_proj, self.w_v)

    def parameters(self) -> list[Tensor]:
        return [self.w_v]


class BahdanauAttention(nn.Module):
    """Additive attention ``e_ij = w_v^T tanh(W_q s_{i-1} + W_k h_j)`` returning context and weights.

    The decoder calls it once per step with its previous state ``s_{i-1}``; the keys' projection
    ``W_k h_j`` does not depend on the step, so compute it once per source sentence with
    :meth:`project_keys` and pass it as ``projected_keys``.

    Args:
        query_size: ``Dq``, the decoder state width.
        key_size: ``Dk``, the annotation (encoder output) width.
        hidden_dim: ``A``, the width of the alignment model.

    Call arguments:
        query: ``(B, Dq)`` one step, or ``(B, Tq, Dq)`` several.
        keys: ``(B, Tk, Dk)`` the annotations ``h_j`` (also the values).
        key_mask: ``(B, Tk)`` bool, True = real token; padding gets weight 0.
        projected_keys: ``(B, Tk, A)`` from :meth:`project_keys`, to skip recomputing ``W_k h_j``.

    Returns:
        ``(context, weights)``: ``(B, Dk)`` and ``(B, Tk)`` for a 2-D query, ``(B, Tq, Dk)`` and
        ``(B, Tq, Tk)`` for a 3-D one. A row with every key masked gets zeros.

    Example:
        >>> import torch
        >>> attn = BahdanauAttention(query_size=6, key_size=4, hidden_dim=5)
        >>> h = torch.randn(2, 7, 4)
        >>> keys = attn.project_keys(h)  # once per sentence
        >>> c, a = attn(torch.randn(2, 6), h, projected_keys=keys)
        >>> tuple(c.shape), tuple(a.shape), bool(torch.allclose(a.sum(-1), torch.ones(2)))
        ((2, 4), (2, 7), True)
    """

    def __init__(self, query_size: int, key_size: int, hidden_dim: int) -> None:
        super().__init__()
        self.score = AdditiveScore(query_size, key_size, hidden_dim)  # owns W_q, W_k, w_v; checks the sizes
        self.query_size, self.key_size, self.hidden_dim = query_size, key_size, hidden_dim

    def project_keys(self, keys: Tensor) -> Tensor:
        """``W_k h_j`` for every annotation: ``(B, Tk, Dk) -> (B, Tk, A)``."""
        check_tensor(keys, "keys", ndim=3)
        check_last_dim(keys, "keys", self.key_size)
        return self.score.w_k(keys)

    def project_query(self, query: Tensor) -> Tensor:
        """``W_q s`` for decoder states: ``(..., Dq) -> (..., A)``."""
        check_last_dim(query, "query", self.query_size)
        return self.score.w_q(query)

    def projected_score(self) -> Callable[[Tensor, Tensor], Tensor]:
        """The score once both sides are projected: ``(W_q s (..., Tq, A), W_k h (..., Tk, A)) -> (..., Tq, Tk)``.

        A score callable for :func:`attnkit.functional.attention` or :func:`attnkit.functional.hard_attention`
        over :meth:`project_query` and :meth:`project_keys`; gradients reach ``w_v``.
        """
        return _ProjectedAdditive(self.score.w_v)

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        key_mask: Tensor | None = None,
        *,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Context vectors and alignment weights; see the class docstring for shapes."""
        b, tk = check_query_keys(query, keys, key_mask, self.query_size, self.key_size)
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        elif tuple(projected_keys.shape) != (b, tk, self.hidden_dim):
            raise ValueError(
                f"Expected `projected_keys` of shape {(b, tk, self.hidden_dim)} (from project_keys). "
                f"Received: projected_keys.shape={tuple(projected_keys.shape)}"
            )
        single = query.dim() == 2
        q = query[:, None, :] if single else query  # (B, Tq, Dq)
        q_proj = self.score.w_q(q)  # (B, Tq, A)
        mask = None if key_mask is None else key_mask[:, None, :]  # (B, 1, Tk)
        context, weights = attention(
            q_proj, projected_keys, keys, score=self.projected_score(), mask=mask, return_weights=True
        )  # (B, Tq, Dk), (B, Tq, Tk)
        if single:
            return context[:, 0], weights[:, 0]
        return context, weights
