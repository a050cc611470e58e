"""Multi-head attention with the arguments and numbers of ``keras.layers.MultiHeadAttention``: the
Keras-compatible facade of the attention engine (:class:`attnkit.layers.engine.AttentionEngine`, what the
models run). It adds what Keras users expect and no model needs: lazy build from the first call's widths,
separate query/key/value widths, ``attention_axes``, ``output_shape``, Keras masks, porting from Keras and
``torch.nn`` layers. Projection, cache and the call of the one dispatcher are the engine's.

Shape legend: ``B`` batch, ``Tq``/``Tk`` query/key length, ``E`` input width, ``H`` query heads,
``Hkv`` key/value heads, ``Dk``/``Dv`` head widths.

    head_h = softmax(Q_h K_{g(h)}^T / sqrt(Dk)) V_{g(h)},   Q_h = x_q W^Q_h + b^Q_h, ...
    output = concat_h(head_h) W^O + b^O

with ``g(h) = h // (H / Hkv)`` the key/value head that query head ``h`` shares (grouped-query
attention; ``Hkv = 1`` is multi-query attention, ``Hkv = H`` the usual multi-head attention).

Which computation runs (fused SDPA, the reference path that returns weights, the kernels, a kind) is chosen
by :func:`attnkit.functional.dispatch.choose`, the one dispatcher. Tests check that all give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from attnkit.functional.kinds import AttentionKind
from attnkit.kernels import linear
from attnkit.layers import _lazy as lazy
from attnkit.layers._checks import check_last_dim, check_mask, check_tensor, warn_if_a_row_sees_nothing
from attnkit.layers._mha_axes import forward_axes
from attnkit.layers._mha_parts import (
    Projection,
    both,
    check_head_args,
    input_widths,
    int_tuple,
    positive_int,
    sequence_attention_mask,
)
from attnkit.layers.engine import AttentionEngine
from attnkit.layers.kv_cache import KVCache

__all__ = ["MultiHeadAttention", "Projection"]


class MultiHeadAttention(AttentionEngine):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017), Keras 3 semantics, batch-first.

    Args:
        num_heads: number of query heads ``H``.
        key_dim: size ``Dk`` of each query/key head.
        value_dim: size ``Dv`` of each value head (default ``key_dim``).
        dropout: dropout on the attention weights, in training mode (``.train()``) only.
        use_bias: whether the four projections have biases.
        output_shape: shape of each output position, an int or tuple (default: the query's last
            dimension); e.g. ``(4, 8)`` turns ``(B, T, E)`` into ``(B, T, 4, 8)``.
        attention_axes: input axes attention runs over (default: every axis but the batch and the
            feature axis). ``(1, 2)`` on a ``(B, H_img, W_img, C)`` map attends over all pixels;
            ``(2,)`` attends along each row separately. Negative axes count from the end of the
            input shape, so ``-2`` is the last non-feature axis.
        num_key_value_heads: ``Hkv`` key/value heads shared by groups of ``H / Hkv`` query heads
            (default ``H``; 1 is multi-query attention).
        query_dim, key_dim_in, value_dim_in: input widths of query, key and value, to build the
            parameters now instead of at the first call (``key_dim_in``/``value_dim_in`` default
            to ``query_dim``; ``key_dim_in`` defaults to ``value_dim_in`` when only that is given).
        device, dtype: where to create parameters built up front.
        kind, window: the attention kind of :func:`attnkit.functional.attention` (``"full"``, ``"sliding_window"``
            with ``window``, ``"block_sparse"``, ``"linear"``, ``"performer"``, or an ``AttentionKind`` object
            with its options); the kinds take ``key_mask``/``value_mask`` and ``use_causal_mask``, not a filled cache.

    Call arguments:
        query: ``(B, Tq, E)`` (or ``(B, *dims, E)`` with ``attention_axes``).
        value: ``(B, Tk, Ev)``.
        key: ``(B, Tk, Ek)``, default ``value``.
        query_mask: ``(B, Tq)`` bool, True = real token; padded queries get zero weights.
        value_mask, key_mask: ``(B, Tk)`` bool, True = real token. A batch row with no real token warns (once
            per call site): it is almost always torch's ``key_padding_mask`` (True = padding) passed as is;
            pass ``value_mask=~key_padding_mask``.
        attention_mask: bool, True = may attend: ``(Tq, Tk)``, ``(B, Tq, Tk)`` or
            ``(B, H, Tq, Tk)`` (size-1 dims broadcast). A rank-2 mask whose first axis is the batch size
            ``B > 1`` reads as a ``(B, Tk)`` padding mask and is refused (pass it as ``value_mask``; write a
            pair mask shared by the batch as ``m[None]``). With ``attention_axes`` it is
            ``(B, *other_axes, *query_attention_dims, *key_attention_dims)``.
        use_causal_mask: query ``i`` may not attend to key ``j > i`` (shifted by the cache length
            when a cache is given).
        return_attention_scores: also return the per-head weights ``(B, H, Tq, Tk)`` (with
            ``attention_axes``: ``(B, *other_axes, H, *query_attention_dims, *key_attention_dims)``).
        cache: a :class:`KVCache` to append this call's keys/values to (incremental decoding).
        training: as Keras' ``training=``: True drops out the weights for this call, False does not; None
            (default) follows the module's ``.train()`` / ``.eval()`` mode.

    Returns:
        ``output`` ``(B, Tq, *output_shape)``, or ``(output, weights)``.

    Paths: chosen by the one dispatcher (:func:`attnkit.functional.dispatch.choose`): without
    ``return_attention_scores`` the fused SDPA kernel (no ``Tq x Tk`` matrix); with it the reference path, or
    in inference (no gradient, CPU) the same computation with the softmax taken in place. Tests check that
    all give the same numbers.

    Parameters: the query/key/value kernels live in one packed ``in_proj_weight`` (rows: query,
    key, value) when the three input widths are equal, else in ``q_proj_weight``/``k_proj_weight``/
    ``v_proj_weight``; biases in ``in_proj_bias``; ``output_dense`` is an ``nn.Linear``.
    ``query_dense``/``key_dense``/``value_dense`` give each projection as views. Given ``query_dim=``
    (or after ``build``) the layer is built at once; otherwise it follows torch's lazy-module contract
    (:mod:`attnkit.layers._lazy`): ``UninitializedParameter`` placeholders, built in place at the first
    call, so an optimiser created earlier trains them and ``load_state_dict`` builds the layer first.

    Differences from Keras: a query whose keys are all masked gets zero weights (Keras gives it
    uniform weights), so padded query rows output only the output bias; ``query_mask`` is taken from
    the argument (Keras reads the query tensor's Keras mask instead).

    Example:
        >>> import torch
        >>> mha = MultiHeadAttention(num_heads=2, key_dim=4)
        >>> x = torch.randn(3, 5, 8)
        >>> out, w = mha(x, x, return_attention_scores=True)
        >>> tuple(out.shape), tuple(w.shape)
        ((3, 5, 8), (3, 2, 5, 5))
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: int | Sequence[int] | None = None,
        attention_axes: int | Sequence[int] | None = None,
        *,
        num_key_value_heads: int | None = None,
        query_dim: int | None = None,
        key_dim_in: int | None = None,
        value_dim_in: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        kind: str | AttentionKind = "full",
        window: int | None = None,
    ) -> None:
        nn.Module.__init__(self)  # the engine's packed parameters are built here, lazily or from the widths
        self.num_key_value_heads = check_head_args(num_heads, key_dim, value_dim, num_key_value_heads, dropout)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim if value_dim is not None else key_dim
        self._set_dropout_and_kind(dropout, kind, window)
        self.use_bias = use_bias
        self.output_shape = int_tuple(output_shape, "output_shape", positive=True)
        self.attention_axes = int_tuple(attention_axes, "attention_axes", positive=False)
        # Built by `build`: the packed input projection (one matrix when query, key and value have the
        # same width, else three), its packed bias, and the output projection.
        self.in_proj_weight: nn.Parameter | None = None  # (H*Dk + Hkv*Dk + Hkv*Dv, E)
        self.q_proj_weight: nn.Parameter | None = None  # (H*Dk, Eq) when the widths differ
        self.k_proj_weight: nn.Parameter | None = None  # (Hkv*Dk, Ek)
        self.v_proj_weight: nn.Parameter | None = None  # (Hkv*Dv, Ev)
        self.in_proj_bias: nn.Parameter | None = None  # (H*Dk + Hkv*Dk + Hkv*Dv,)
        self.output_dense: nn.Linear | None = None
        self._widths: tuple[int, int, int] | None = None  # (query, value, key) input widths once built
        widths = input_widths(query_dim, key_dim_in, value_dim_in)
        if widths is not None:
            self.build(*widths, device=device, dtype=dtype)
        else:  # lazy, torch's contract: placeholders built in place at the first call (attnkit.layers._lazy)
            lazy.add_mha_placeholders(self, device, dtype)
        self.register_load_state_dict_pre_hook(lazy.build_from_state_dict)  # builds an unbuilt layer first

    # ----------------------------------------------------------------------------------- build

    @property
    def built(self) -> bool:
        """True once the projections exist (given sizes up front, or after the first call)."""
        return self._widths is not None

    def build(
        self,
        query_dim: int,
        value_dim_in: int,
        key_dim_in: int | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        """Create the projections for inputs of widths ``query_dim``, ``value_dim_in``, ``key_dim_in``.

        Each width is an int or, as Keras' ``build(query_shape, value_shape, key_shape)`` takes it, a shape
        whose last entry is the width (``layer.build((None, 5, 8), (None, 7, 6))``). An unbuilt layer's
        placeholders are materialised in place, so an optimiser created before keeps training them.
        Kernels get Glorot-uniform initialisation over each ``(in, out)`` matrix, biases zeros. When
        the three widths are equal the query, key and value kernels are stored as one packed matrix
        ``in_proj_weight``, so that self-attention projects with a single matmul.
        """
        query_dim, value_dim_in = lazy.width(query_dim), lazy.width(value_dim_in)
        key_dim_in = value_dim_in if key_dim_in is None else lazy.width(key_dim_in)
        for name, v in (("query_dim", query_dim), ("value_dim_in", value_dim_in), ("key_dim_in", key_dim_in)):
            positive_int(v, name)
        nq, nk, nv = self._sizes()
        kw = {"device": device, "dtype": dtype}
        if query_dim == key_dim_in == value_dim_in:
            self.in_proj_weight = lazy.materialize(self, "in_proj_weight", (nq + nk + nv, query_dim), **kw)
        else:
            self.q_proj_weight = lazy.materialize(self, "q_proj_weight", (nq, query_dim), **kw)
            self.k_proj_weight = lazy.materialize(self, "k_proj_weight", (nk, key_dim_in), **kw)
            self.v_proj_weight = lazy.materialize(self, "v_proj_weight", (nv, value_dim_in), **kw)
        if self.use_bias:
            self.in_proj_bias = lazy.materialize(self, "in_proj_bias", (nq + nk + nv,), **kw)
        out_features = math.prod(self.output_shape) if self.output_shape else query_dim
        self.output_dense = lazy.linear(self.output_dense, self.num_heads * self.value_dim, out_features,
                                        self.use_bias, **kw)
        lazy.drop_placeholders(self)  # the kernels these widths do not use
        self._widths = (query_dim, value_dim_in, key_dim_in)
        with torch.no_grad():
            for proj in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
                nn.init.xavier_uniform_(proj.weight)
            if self.use_bias:
                nn.init.zeros_(self.in_proj_bias)
                nn.init.zeros_(self.output_dense.bias)

    def _sizes(self) -> tuple[int, int, int]:
        """Output rows of the query, key and value projections: ``H*Dk``, ``Hkv*Dk``, ``Hkv*Dv``."""
        return self.num_heads * self.key_dim, self.num_key_value_heads * self.key_dim, self.num_key_value_heads * self.value_dim

    def _projection(self, part: int) -> Projection:
        if not self.built:
            raise ValueError("Expected a built layer (call it once or pass query_dim=). Received: an unbuilt layer")
        sizes = self._sizes()
        start, stop = sum(sizes[:part]), sum(sizes[: part + 1])
        if self.in_proj_weight is not None:
            weight = self.in_proj_weight[start:stop]
        else:
            weight = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[part]  # type: ignore[assignment]
        bias = self.in_proj_bias[start:stop] if self.in_proj_bias is not None else None
        return Projection(weight, bias)  # type: ignore[arg-type]

    @property
    def query_dense(self) -> Projection:
        """The query projection ``x -> x W_Q^T + b_Q``, ``(..., Eq) -> (..., H*Dk)`` (views of the parameters)."""
        return self._projection(0)

    @property
    def key_dense(self) -> Projection:
        """The key projection, ``(..., Ek) -> (..., Hkv*Dk)``."""
        return self._projection(1)

    @property
    def value_dense(self) -> Projection:
        """The value projection, ``(..., Ev) -> (..., Hkv*Dv)``."""
        return self._projection(2)

    def _out_shape(self) -> tuple[int, ...]:
        return self.output_shape if self.output_shape else (self.output_dense.out_features,)  # type: ignore[union-attr]

    # --------------------------------------------------------------------------------- forward

    def forward(
        self,
        query: Tensor,
        value: Tensor,
        key: Tensor | None = None,
        *,
        query_mask: Tensor | None = None,
        value_mask: Tensor | None = None,
        key_mask: Tensor | None = None,
        attention_mask: Tensor | None = None,
        use_causal_mask: bool = False,
        return_attention_scores: bool = False,
        cache: KVCache | None = None,
        training: bool | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend from ``query`` to ``key``/``value``; see the class docstring for shapes."""
        self_attention = key is None and value is query
        key = value if key is None else key
        self._check_inputs(query, value, key, self_attention)
        masks = {"query_mask": query_mask, "value_mask": value_mask, "key_mask": key_mask,
                 "attention_mask": attention_mask}
        if query.dim() == 3 and (self.attention_axes is None or self._normalize_axes(3) == (1,)):
            return self._forward_sequence(query, value, key, self_attention, masks, use_causal_mask,
                                          return_attention_scores, cache, training)
        if cache is not None:
            raise ValueError(
                "Expected no `cache` with multi-axis attention (a cache needs (B, T, E) inputs attending over axis 1). "
                f"Received: query.shape={tuple(query.shape)}, attention_axes={self._normalize_axes(query.dim())}"
            )
        return forward_axes(self, query, value, key, self._normalize_axes(query.dim()), masks, use_causal_mask,
                            return_attention_scores, training)

    def _check_inputs(self, query: Tensor, value: Tensor, key: Tensor, self_attention: bool = False) -> None:
        """Types, ranks and widths of the three inputs; builds the layer at its first call."""
        check_tensor(query, "query")
        if self_attention and self._widths is not None and self._widths[0] == self._widths[1] == self._widths[2]:
            if query.dim() < 3:
                raise ValueError(f"Expected `query` of rank >= 3 (B, T, E). Received: query.shape={tuple(query.shape)}")
            check_last_dim(query, "query", self._widths[0])  # value and key are the query itself
            return
        check_tensor(value, "value")
        check_tensor(key, "key")
        if query.dim() < 3:
            raise ValueError(f"Expected `query` of rank >= 3 (B, T, E). Received: query.shape={tuple(query.shape)}")
        if value.dim() != query.dim() or key.shape[:-1] != value.shape[:-1]:
            raise ValueError(
                "Expected `key` and `value` of the query's rank with equal shapes except the last axis. "
                f"Received: query.shape={tuple(query.shape)}, value.shape={tuple(value.shape)}, key.shape={tuple(key.shape)}"
            )
        if query.shape[0] != value.shape[0]:
            raise ValueError(
                f"Expected the same batch size for query and value. Received: query.shape={tuple(query.shape)}, "
                f"value.shape={tuple(value.shape)}"
            )
        if not self.built:
            self.build(query.shape[-1], value.shape[-1], key.shape[-1], device=query.device, dtype=query.dtype)
        wq, wv, wk = self._widths  # type: ignore[misc]  (set by build)
        check_last_dim(query, "query", wq)
        check_last_dim(value, "value", wv)
        check_last_dim(key, "key", wk)

    def _normalize_axes(self, rank: int) -> tuple[int, ...]:
        if self.attention_axes is None:
            return tuple(range(1, rank - 1))
        axes = tuple(a + rank if a < 0 else a for a in self.attention_axes)
        if any(not 1 <= a <= rank - 2 for a in axes) or len(set(axes)) != len(axes):
            raise ValueError(
                f"Expected `attention_axes` to be distinct axes in [1, {rank - 2}] or [{-(rank - 1)}, -2] for inputs "
                f"of rank {rank} (not the batch or the feature axis). Received: attention_axes={self.attention_axes}"
            )
        return axes

    def _project(self, query: Tensor, value: Tensor, key: Tensor, self_attention: bool) -> tuple[Tensor, Tensor, Tensor]:
        """Apply the three input projections; one matmul when query, key and value are one tensor."""
        nq, nk, nv = self._sizes()
        w, b = self.in_proj_weight, self.in_proj_bias
        if w is not None and self_attention:
            return linear(query, w, b).split([nq, nk, nv], dim=-1)  # type: ignore[return-value]
        if w is not None and key is value:
            q = linear(query, w[:nq], None if b is None else b[:nq])
            k, v = linear(value, w[nq:], None if b is None else b[nq:]).split([nk, nv], dim=-1)
            return q, k, v
        return self.query_dense(query), self.key_dense(key), self.value_dense(value)

    def _heads(self, query: Tensor, value: Tensor, key: Tensor, self_attention: bool, cache: KVCache | None):
        """Project and split into heads: ``q (B, H, Tq, Dk)``, ``k (B, Hkv, Tk, Dk)``, ``v (B, Hkv, Tk, Dv)``;
        ``k, v`` are None when a filled static cache supplies them."""
        h, hkv, dk = self.num_heads, self.num_key_value_heads, self.key_dim
        if self.in_proj_weight is not None and h == hkv and dk == self.value_dim and (self_attention or key is value):
            return super()._heads(query, value, key, self_attention, cache)  # the engine's packed projection
        b, tq, _ = query.shape
        if cache is not None and cache.static and cache.length > 0:
            return self.query_dense(query).view(b, tq, h, dk).transpose(1, 2), None, None  # (B, H, Tq, Dk)
        q, k, v = self._project(query, value, key, self_attention)
        tk = value.shape[1]
        q = q.view(b, tq, h, dk).transpose(1, 2)  # (B, H, Tq, Dk)
        k = k.view(b, tk, hkv, dk).transpose(1, 2)  # (B, Hkv, Tk, Dk)
        v = v.view(b, tk, hkv, self.value_dim).transpose(1, 2)  # (B, Hkv, Tk, Dv)
        return q, k, v

    def _forward_sequence(self, query: Tensor, value: Tensor, key: Tensor, self_attention: bool, masks: dict,
                          use_causal_mask: bool, return_weights: bool, cache: KVCache | None,
                          training: bool | None = None):
        """The common case: ``(B, T, E)`` inputs, attention over axis 1, through the engine's steps."""
        b, tq, _ = query.shape
        tn = value.shape[1]
        q, k, v = self._heads(query, value, key, self_attention, cache)  # 1. project
        kv_mask = both(check_mask(masks["value_mask"], "value_mask", (b, tn)),
                       check_mask(masks["key_mask"], "key_mask", (b, tn)))
        if kv_mask is not None and tn > 0:  # a torch key_padding_mask passed as is: warn at the user's line
            warn_if_a_row_sees_nothing(kv_mask, "value_mask" if masks["key_mask"] is None else "key_mask")
        k, v, kv_mask, past = self._cached(k, v, kv_mask, cache)  # 2. the cache
        mask = None  # 3. one boolean mask, True = may attend
        if masks["query_mask"] is not None:
            mask = check_mask(masks["query_mask"], "query_mask", (b, tq))[:, None, :, None]  # (B, 1, Tq, 1)
        if masks["attention_mask"] is not None:
            mask = both(mask, sequence_attention_mask(masks["attention_mask"], b, self.num_heads, tq, k.shape[2]))
        mask, causal = self._mask(kv_mask, use_causal_mask, tq, k.shape[2], past, query.device, mask)
        out, w = self._attend(q, k, v, mask, causal, return_weights, training)  # 4. attend
        out = self._output(out)  # 5. output projection
        if self.output_shape is not None:
            out = out.view(b, tq, *self.output_shape)
        return (out, w) if return_weights else out

    def redraw_features(self, generator: torch.Generator | None = None) -> None:
        """Draw new random features for ``kind="performer"`` (:meth:`PerformerAttention.redraw`)."""
        if not hasattr(self.kind, "redraw"):
            got = getattr(self.kind, "name", self.kind)
            raise ValueError(f"Expected kind='performer' to redraw features. Received: kind={got!r}")
        self.kind.redraw(generator, dim=self.key_dim)

    # --------------------------------------------------------------------------------- porting

    @classmethod
    def from_keras(cls, layer: object) -> MultiHeadAttention:
        """Build from a built ``keras.layers.MultiHeadAttention`` or ``GroupQueryAttention``, copying weights.

        Keras kernels ``(E, H, D)`` become ``nn.Linear`` weights ``(H*D, E)``; the output kernel
        ``(H, Dv, *output_shape)`` becomes ``(prod(output_shape), H*Dv)``.
        """
        from attnkit.layers._porting import keras_mha_to_attnkit

        return keras_mha_to_attnkit(cls, layer)

    @classmethod
    def from_torch(cls, module: nn.MultiheadAttention) -> MultiHeadAttention:
        """Build from a ``torch.nn.MultiheadAttention``, copying its weights.

        The result is batch-first whatever ``module.batch_first`` says. ``add_bias_kv`` and
        ``add_zero_attn`` have no attnkit counterpart and raise ``ValueError``.
        """
        from attnkit.layers._porting import torch_mha_to_attnkit

        return torch_mha_to_attnkit(cls, module)
