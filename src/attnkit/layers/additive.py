"""Additive attention with the arguments and numbers of ``keras.layers.AdditiveAttention``.

Shape legend: ``B`` batch, ``Tq`` query length, ``Tv`` value/key length, ``D`` query/key width,
``Dv`` value width.

    scores_ij = sum_d s_d * tanh(q_i + k_j)_d        (s learned, shape (D,), when use_scale)
    output    = softmax(scores) V
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnkit.layers import _lazy as lazy
from attnkit.layers._checks import check_dropout, check_last_dim, check_tensor, keras_call_inputs
from attnkit.layers.attention import keras_style_attend


class AdditiveAttention(nn.Module):
    """Keras' additive attention: ``scores_ij = sum_d scale_d * tanh(q_i + k_j)_d``, no projections.

    This is *not* Bahdanau's formula ``w_v^T tanh(W_q s + W_k h)``: Keras adds query and key as
    they come (they must already have the same width) and only learns the vector ``scale``
    (which plays the role of ``w_v``). For the alignment model of Bahdanau et al. 2015, with its
    learned ``W_q`` and ``W_k``, use :class:`attnkit.layers.bahdanau.BahdanauAttention`.

    Args:
        use_scale: learn ``scale`` ``(D,)`` (Glorot-uniform start, as Keras); otherwise ``scale = 1``.
        dropout: dropout on the attention weights in training mode (``.train()``).
        dim: the width ``D``, to create ``scale`` now. Without it ``scale`` is a placeholder
            (``torch.nn.parameter.UninitializedParameter``) built in place at the first call, so an optimiser
            created before trains it, and ``load_state_dict`` builds the layer first (torch's lazy modules).

    Call arguments (both Keras styles: ``layer([query, value(, key)], mask=[query_mask, value_mask])`` or
    ``layer(query, value, key=None, query_mask=..., value_mask=...)``):
        query: ``(B, Tq, D)``; value: ``(B, Tv, Dv)``; key: ``(B, Tv, D)``, default ``value``.
        query_mask: ``(B, Tq)`` bool or 0/1; the output is zero where False.
        value_mask: ``(B, Tv)`` bool or 0/1, True = real token.
        return_attention_scores: also return the weights ``(B, Tq, Tv)``.
        use_causal_mask: query ``i`` may not attend to key ``j > i``.
        training: as Keras' ``training=``: True drops out the weights for this call, False does not; None
            (default) follows the module's ``.train()`` / ``.eval()`` mode.

    Returns:
        ``(B, Tq, Dv)``, or ``(output, weights)``. A query whose keys are all masked gets zero
        weights and output (Keras: uniform weights).

    Example:
        >>> import torch
        >>> layer = AdditiveAttention(dim=4)
        >>> out = layer(torch.randn(2, 3, 4), torch.randn(2, 5, 4))
        >>> tuple(out.shape)
        (2, 3, 4)
    """

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, *, dim: int | None = None) -> None:
        super().__init__()
        check_dropout(dropout)
        self.use_scale = use_scale
        self.dropout = float(dropout)
        self.scale: nn.Parameter | None = None
        self.dim: int | None = None
        if dim is not None:
            self.build(dim)
        elif use_scale:
            self.scale = lazy.UnbuiltAdditiveParameter()
        self.register_load_state_dict_pre_hook(_build_from_state_dict)

    def build(self, dim: int, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        """Create ``scale`` ``(dim,)``, uniform in ``[-sqrt(3/dim), sqrt(3/dim)]`` (Glorot for a vector)."""
        if not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"Expected `dim` to be a positive integer. Received: dim={dim!r}")
        self.dim = dim
        if self.use_scale:
            limit = math.sqrt(3.0 / dim)
            self.scale = lazy.materialize(self, "scale", (dim,), device=device, dtype=dtype)  # the placeholder, if any
            with torch.no_grad():
                self.scale.uniform_(-limit, limit)

    def score(self, query: Tensor, key: Tensor) -> Tensor:
        """Scores ``(B, Tq, Tv)`` of ``query`` ``(B, Tq, D)`` against ``key`` ``(B, Tv, D)``."""
        t = torch.tanh(query[..., :, None, :] + key[..., None, :, :])  # (B, Tq, Tv, D)
        return (t * self.scale).sum(-1) if self.scale is not None else t.sum(-1)

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
        check_tensor(query, "query", ndim=3)
        if self.dim is None:
            self.build(query.shape[-1], device=query.device, dtype=query.dtype)
        check_last_dim(query, "query", self.dim)  # type: ignore[arg-type]
        return keras_style_attend(
            self, query, value, key, self.score, query_mask, value_mask, return_attention_scores, use_causal_mask,
            self.dropout, training,
        )  # fmt: skip

    @classmethod
    def from_keras(cls, layer: object) -> AdditiveAttention:
        """Build from a built ``keras.layers.AdditiveAttention``, copying ``scale``."""
        from attnkit.layers._porting import _require_built, keras_array

        if type(layer).__name__ != "AdditiveAttention":
            raise TypeError(
                f"Expected a keras.layers.AdditiveAttention. Received: {type(layer).__module__}.{type(layer).__name__}"
            )
        _require_built(layer)
        if not layer.use_scale:
            return cls(use_scale=False, dropout=layer.dropout)
        scale = keras_array(layer.scale)  # (D,)
        new = cls(use_scale=True, dropout=layer.dropout, dim=scale.shape[0])
        with torch.no_grad():
            new.scale.copy_(scale)  # type: ignore[union-attr]
        return new


def _build_from_state_dict(module: AdditiveAttention, state_dict: dict, prefix: str, *args: object) -> None:
    """``load_state_dict`` pre-hook: build an unbuilt layer from the shape of the ``scale`` it loads."""
    scale = state_dict.get(prefix + "scale")
    if module.dim is None and module.use_scale and scale is not None and scale.dim() == 1:
        device, dtype = lazy.placeholder_device_dtype(module)
        module.build(int(scale.shape[0]), device=device, dtype=dtype)
