"""Dot-product (Luong-style) attention with the arguments and numbers of ``keras.layers.Attention``.

Shape legend: ``B`` batch, ``Tq`` query length, ``Tv`` value/key length, ``D`` query/key width,
``Dv`` value width.

    dot:    scores = scale * Q K^T                                   (scale = 1 unless use_scale)
    concat: scores = w_c * sum_d tanh(scale * (q_i + k_j))_d         (w_c learned, starts at 1)
    output = softmax(scores) V
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from attnkit.functional import attention
from attnkit.layers._checks import (
    check_dropout,
    check_mask,
    check_tensor,
    dropout_on,
    keras_call_inputs,
    warn_if_a_row_sees_nothing,
)

ScoreFn = Callable[[Tensor, Tensor], Tensor]


def keras_style_attend(
    layer: nn.Module,
    query: Tensor,
    value: Tensor,
    key: Tensor | None,
    score: str | ScoreFn,
    query_mask: Tensor | None,
    value_mask: Tensor | None,
    return_attention_scores: bool,
    use_causal_mask: bool,
    dropout: float,
    training: bool | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """The call of Keras' ``Attention``/``AdditiveAttention`` given their score: masks, softmax, sum.

    1. check shapes; 2. build the key mask (value mask AND causal); 3. attend through
    ``attnkit.functional.attention``; 4. zero the output of padded queries.
    """
    key = value if key is None else key
    for name, x in (("query", query), ("value", value), ("key", key)):
        check_tensor(x, name, ndim=3)
    b, tq, d = query.shape
    tv = value.shape[1]
    if key.shape[:2] != value.shape[:2] or key.shape[0] != b or value.shape[0] != b:
        raise ValueError(
            "Expected query (B, Tq, D), value (B, Tv, Dv) and key (B, Tv, D) with matching B and Tv. "
            f"Received: query.shape={tuple(query.shape)}, value.shape={tuple(value.shape)}, key.shape={tuple(key.shape)}"
        )
    if key.shape[-1] != d:
        raise ValueError(
            f"Expected key with the query's last dimension {d}. Received: query.shape={tuple(query.shape)}, "
            f"key.shape={tuple(key.shape)}"
        )
    query_mask = check_mask(query_mask, "query_mask", (b, tq), "(B, Tq)")  # bool (0/1 cast)
    mask = None
    if value_mask is not None:
        value_mask = check_mask(value_mask, "value_mask", (b, tv), "(B, Tv)")
        if tv > 0:
            warn_if_a_row_sees_nothing(value_mask, "value_mask")  # torch's key_padding_mask passed as is?
        mask = value_mask[:, None, :]  # (B, 1, Tv)
    causal = False
    if use_causal_mask:
        if mask is None and tq == tv:
            causal = True
        else:
            tril = torch.ones(tq, tv, dtype=torch.bool, device=query.device).tril()[None]  # (1, Tq, Tv), any B
            mask = tril if mask is None else mask & tril
    p = dropout if dropout_on(layer, training) else 0.0  # Keras' training=, else the module's mode
    result = attention(
        query, key, value, score=score, mask=mask, causal=causal, dropout_p=p, return_weights=return_attention_scores
    )
    out, weights = result if return_attention_scores else (result, None)
    if query_mask is not None:
        out = out.masked_fill(~query_mask[..., None], 0.0)  # (B, Tq, Dv)
    return (out, weights) if return_attention_scores else out  # type: ignore[return-value]


class Attention(nn.Module):
    """Dot-product attention layer (Luong et al. 2015 "dot"), same arguments and numbers as Keras 3.

    Args:
        use_scale: learn a scalar ``scale`` (starts at 1) multiplying the scores (dot) or the
            tanh argument (concat). There is no ``1/sqrt(D)``: that is ``MultiHeadAttention``.
        score_mode: ``"dot"``: ``scores = Q K^T``; ``"concat"``: ``scores = w_c sum tanh(q_i + k_j)``.
        dropout: dropout on the attention weights in training mode (``.train()``).

    Call arguments (both Keras styles: ``layer([query, value(, key)], mask=[query_mask, value_mask])`` or
    ``layer(query, value, key=None, query_mask=..., value_mask=...)``):
        query: ``(B, Tq, D)``; value: ``(B, Tv, Dv)``; key: ``(B, Tv, D)``, default ``value``.
        query_mask: ``(B, Tq)`` bool or 0/1 (cast as Keras casts); the output is zero where False.
        value_mask: ``(B, Tv)`` bool or 0/1, True = real token; masked keys get zero weight.
        return_attention_scores: also return the weights ``(B, Tq, Tv)``.
        use_causal_mask: query ``i`` may not attend to key ``j > i``.
        training: as Keras' ``training=``: True drops out the weights for this call, False does not; None
            (default) follows the module's ``.train()`` / ``.eval()`` mode.

    Returns:
        ``(B, Tq, Dv)``, or ``(output, weights)``.

    Departure from Keras: a query whose keys are all masked gets zero weights and output (Keras
    spreads it uniformly over the masked keys). Everything else matches to float precision.

    Example:
        >>> import torch
        >>> layer = Attention()
        >>> q, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
        >>> out, w = layer(q, v, return_attention_scores=True)
        >>> tuple(out.shape), tuple(w.shape)
        ((2, 3, 4), (2, 3, 5))
        >>> tuple(layer([q, v], mask=[None, torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])]).shape)
        (2, 3, 4)
    """

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0) -> None:
        super().__init__()
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"Expected `score_mode` in {{'dot', 'concat'}}. Received: score_mode={score_mode!r}")
        check_dropout(dropout)
        self.use_scale = use_scale
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.scale = nn.Parameter(torch.ones(())) if use_scale else None
        self.concat_score_weight = nn.Parameter(torch.ones(())) if score_mode == "concat" else None

    def score(self, query: Tensor, key: Tensor) -> Tensor:
        """Scores ``(B, Tq, Tv)`` of ``query`` ``(B, Tq, D)`` against ``key`` ``(B, Tv, D)``."""
        if self.score_mode == "dot":
            s = query @ key.transpose(-1, -2)  # (B, Tq, Tv)
            return s * self.scale if self.scale is not None else s
        summed = query[..., :, None, :] + key[..., None, :, :]  # (B, Tq, Tv, D)
        if self.scale is not None:
            summed = self.scale * summed
        return self.concat_score_weight * torch.tanh(summed).sum(-1)  # (B, Tq, Tv)

    def forward(
        self,
        query: Tensor | list[Tensor],
        value: Tensor | None = None,
        key: Tensor | None = None,
        *,
        mask: list[Tensor | None] | None = None,
        query_mask: Tensor | None = None,
        value_mask: Tensor | None = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
        training: bool | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend from ``query`` to ``key``/``value``; see the class docstring."""
        query, value, key, query_mask, value_mask = keras_call_inputs(query, value, key, mask, query_mask, value_mask)
        if self.score_mode == "dot":
            # scale * (q . k) = (scale * q) . k: the dot score keeps the fused kernel.
            check_tensor(query, "query", ndim=3)
            q = query * self.scale if self.scale is not None else query
            return keras_style_attend(
                self, q, value, key, "dot", query_mask, value_mask, return_attention_scores, use_causal_mask, self.dropout,
                training,
            )
        return keras_style_attend(
            self, query, value, key, self.score, query_mask, value_mask, return_attention_scores, use_causal_mask,
            self.dropout, training,
        )  # fmt: skip

    @classmethod
    def from_keras(cls, layer: object) -> Attention:
        """Build from a built ``keras.layers.Attention``, copying ``scale`` and ``concat_score_weight``."""
        from attnkit.layers._porting import _require_built, keras_array

        if type(layer).__name__ != "Attention":
            raise TypeError(f"Expected a keras.layers.Attention. Received: {type(layer).__module__}.{type(layer).__name__}")
        _require_built(layer)
        new = cls(use_scale=layer.use_scale, score_mode=layer.score_mode, dropout=layer.dropout)
        with torch.no_grad():
            if new.scale is not None:
                new.scale.copy_(keras_array(layer.scale))
            if new.concat_score_weight is not None:
                new.concat_score_weight.copy_(keras_array(layer.concat_score_weight))
        return new
