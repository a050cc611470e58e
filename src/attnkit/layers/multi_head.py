"""Multi-head attention with the arguments and numbers of ``keras.layers.MultiHeadAttention``.

Shape legend: ``B`` batch, ``Tq``/``Tk`` query/key length, ``E`` input width, ``H`` query heads,
``Hkv`` key/value heads, ``Dk``/``Dv`` head sizes, ``N`` batch after folding the non-attention
axes, ``Lq``/``Lk`` query/key positions after folding the attention axes.

    head_h = softmax(Q_h K_{g(h)}^T / sqrt(Dk)) V_{g(h)},   Q_h = x_q W^Q_h + b^Q_h, ...
    output = concat_h(head_h) W^O + b^O

with ``g(h) = h // (H / Hkv)`` the key/value head that query head ``h`` shares (grouped-query
attention; ``Hkv = 1`` is multi-query attention, ``Hkv = H`` the usual multi-head attention).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnkit.functional import attention
from attnkit.functional.onednn import linear
from attnkit.layers._checks import check_dropout, check_last_dim, check_mask, check_tensor
from attnkit.layers.kv_cache import KVCache


def _positive_int(value: object, name: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={value!r}")


class MultiHeadAttention(nn.Module):
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

    Call arguments:
        query: ``(B, Tq, E)`` (or ``(B, *dims, E)`` with ``attention_axes``).
        value: ``(B, Tk, Ev)``.
        key: ``(B, Tk, Ek)``, default ``value``.
        query_mask: ``(B, Tq)`` bool, True = real token; padded queries get zero weights.
        value_mask, key_mask: ``(B, Tk)`` bool, True = real token.
        attention_mask: bool, True = may attend: ``(Tq, Tk)``, ``(B, Tq, Tk)`` or
            ``(B, H, Tq, Tk)`` (size-1 dims broadcast). With ``attention_axes`` it is
            ``(B, *other_axes, *query_attention_dims, *key_attention_dims)``.
        use_causal_mask: query ``i`` may not attend to key ``j > i`` (shifted by the cache length
            when a cache is given).
        return_attention_scores: also return the per-head weights ``(B, H, Tq, Tk)`` (with
            ``attention_axes``: ``(B, *other_axes, H, *query_attention_dims, *key_attention_dims)``).
        cache: a :class:`KVCache` to append this call's keys/values to (incremental decoding).

    Returns:
        ``output`` ``(B, Tq, *output_shape)``, or ``(output, weights)``.

    Paths: without ``return_attention_scores`` the fused SDPA kernel runs (no ``Tq x Tk`` matrix);
    with it, ``attnkit.functional.attention(..., return_weights=True)`` under autograd, or in
    inference (no gradient, CPU) the same computation with the softmax taken in place. Tests check
    that all give the same numbers.

    Parameters: the query/key/value kernels live in one packed ``in_proj_weight`` (rows: query,
    key, value) when the three input widths are equal, else in ``q_proj_weight``/``k_proj_weight``/
    ``v_proj_weight``; biases in ``in_proj_bias``; ``output_dense`` is an ``nn.Linear``.
    ``query_dense``/``key_dense``/``value_dense`` give each projection as views. The layer builds
    them at its first call unless sizes are given: create optimizers after that.

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
    ) -> None:
        super().__init__()
        _positive_int(num_heads, "num_heads")
        _positive_int(key_dim, "key_dim")
        _positive_int(value_dim, "value_dim", allow_none=True)
        _positive_int(num_key_value_heads, "num_key_value_heads", allow_none=True)
        check_dropout(dropout)
        kv_heads = num_heads if num_key_value_heads is None else num_key_value_heads
        if num_heads % kv_heads:
            raise ValueError(
                "Expected `num_heads` to be divisible by `num_key_value_heads`. "
                f"Received: num_heads={num_heads}, num_key_value_heads={num_key_value_heads}"
            )
        if isinstance(output_shape, int):
            output_shape = (output_shape,)
        if output_shape is not None:
            output_shape = tuple(output_shape)
            if not output_shape or any(not isinstance(s, int) or s <= 0 for s in output_shape):
                raise ValueError(
                    f"Expected `output_shape` to be a positive int or a tuple of them. Received: output_shape={output_shape}"
                )
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        if attention_axes is not None:
            attention_axes = tuple(attention_axes)
            if not attention_axes or any(not isinstance(a, int) for a in attention_axes):
                raise ValueError(
                    f"Expected `attention_axes` to be an int or a tuple of ints. Received: attention_axes={attention_axes}"
                )
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim if value_dim is not None else key_dim
        self.dropout = float(dropout)
        self.use_bias = use_bias
        self.output_shape: tuple[int, ...] | None = output_shape
        self.attention_axes: tuple[int, ...] | None = attention_axes
        self.num_key_value_heads = kv_heads
        # Built by `build`: the packed input projection (one matrix when query, key and value have the
        # same width, else three), its packed bias, and the output projection.
        self.in_proj_weight: nn.Parameter | None = None  # (H*Dk + Hkv*Dk + Hkv*Dv, E)
        self.q_proj_weight: nn.Parameter | None = None  # (H*Dk, Eq) when the widths differ
        self.k_proj_weight: nn.Parameter | None = None  # (Hkv*Dk, Ek)
        self.v_proj_weight: nn.Parameter | None = None  # (Hkv*Dv, Ev)
        self.in_proj_bias: nn.Parameter | None = None  # (H*Dk + Hkv*Dk + Hkv*Dv,)
        self.output_dense: nn.Linear | None = None
        if query_dim is not None or value_dim_in is not None or key_dim_in is not None:
            q = query_dim if query_dim is not None else (value_dim_in or key_dim_in)
            v = value_dim_in if value_dim_in is not None else (key_dim_in or q)
            k = key_dim_in if key_dim_in is not None else v
            self.build(q, v, k, device=device, dtype=dtype)

    # ----------------------------------------------------------------------------------- build

    @property
    def built(self) -> bool:
        """True once the projections exist (given sizes up front, or after the first call)."""
        return self.output_dense is not None

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

        Kernels get Glorot-uniform initialisation over each ``(in, out)`` matrix, biases zeros. When
        the three widths are equal the query, key and value kernels are stored as one packed matrix
        ``in_proj_weight``, so that self-attention projects with a single matmul.
        """
        key_dim_in = value_dim_in if key_dim_in is None else key_dim_in
        for name, v in (("query_dim", query_dim), ("value_dim_in", value_dim_in), ("key_dim_in", key_dim_in)):
            _positive_int(v, name)
        nq, nk, nv = self._sizes()
        kw = {"device": device, "dtype": dtype}
        if query_dim == key_dim_in == value_dim_in:
            self.in_proj_weight = nn.Parameter(torch.empty(nq + nk + nv, query_dim, **kw))
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(nq, query_dim, **kw))
            self.k_proj_weight = nn.Parameter(torch.empty(nk, key_dim_in, **kw))
            self.v_proj_weight = nn.Parameter(torch.empty(nv, value_dim_in, **kw))
        if self.use_bias:
            self.in_proj_bias = nn.Parameter(torch.zeros(nq + nk + nv, **kw))
        out_features = math.prod(self.output_shape) if self.output_shape else query_dim
        self.output_dense = nn.Linear(self.num_heads * self.value_dim, out_features, bias=self.use_bias, **kw)
        with torch.no_grad():
            for proj in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
                nn.init.xavier_uniform_(proj.weight)
            if self.use_bias:
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
        assert self.output_dense is not None
        return self.output_shape if self.output_shape else (self.output_dense.out_features,)

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
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend from ``query`` to ``key``/``value``; see the class docstring for shapes."""
        check_tensor(query, "query")
        check_tensor(value, "value")
        self_attention = key is None and value is query
        if key is None:
            key = value
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
        check_last_dim(query, "query", self.query_dense.in_features)
        check_last_dim(value, "value", self.value_dense.in_features)
        check_last_dim(key, "key", self.key_dense.in_features)
        axes = self._normalize_axes(query.dim())
        if axes == (1,) and query.dim() == 3:
            return self._forward_sequence(
                query, value, key, self_attention, query_mask, value_mask, key_mask, attention_mask,
                use_causal_mask, return_attention_scores, cache,
            )  # fmt: skip
        if cache is not None:
            raise ValueError(
                "Expected no `cache` with multi-axis attention (a cache needs (B, T, E) inputs attending over axis 1). "
                f"Received: query.shape={tuple(query.shape)}, attention_axes={axes}"
            )
        return self._forward_axes(
            query, value, key, axes, query_mask, value_mask, key_mask, attention_mask,
            use_causal_mask, return_attention_scores,
        )  # fmt: skip

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

    def _expand_kv(self, x: Tensor) -> Tensor:
        """(B, Hkv, T, D) -> (B, H, T, D): each key/value head serves H / Hkv query heads."""
        groups = self.num_heads // self.num_key_value_heads
        if groups == 1:
            return x
        b, hkv, t, d = x.shape
        return x[:, :, None].expand(b, hkv, groups, t, d).reshape(b, hkv * groups, t, d)  # (B, H, T, D)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool, weights: bool):
        p = self.dropout if self.training else 0.0
        scale = 1.0 / math.sqrt(self.key_dim)
        k, v = self._expand_kv(k), self._expand_kv(v)
        if weights:
            needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
            if not needs_grad and p == 0.0 and q.device.type == "cpu" and q.dtype in (torch.float32, torch.float64):
                return _weights_in_place(q, k, v, scale, mask, causal)
            # (q / sqrt(Dk)) . k: scaling the (B, H, Tq, Dk) queries is cheaper than the (B, H, Tq, Tk) scores
            return attention(q * scale, k, v, score="dot", mask=mask, causal=causal, dropout_p=p, return_weights=True)
        return attention(q, k, v, score="scaled_dot", mask=mask, causal=causal, scale=scale, dropout_p=p)

    def _forward_sequence(
        self, query, value, key, self_attention, query_mask, value_mask, key_mask, attention_mask,
        use_causal_mask, return_weights, cache,
    ):  # fmt: skip
        """The common case: (B, T, E) inputs, attention over axis 1."""
        b, tq, _ = query.shape
        h, hkv = self.num_heads, self.num_key_value_heads
        reuse = cache is not None and cache.static and cache.length > 0
        tn = value.shape[1]
        packed = self_attention and self.in_proj_weight is not None and h == hkv and self.key_dim == self.value_dim
        if reuse:
            q = self.query_dense(query).view(b, tq, h, self.key_dim).transpose(1, 2)  # (B, H, Tq, Dk)
        elif packed:
            qkv = linear(query, self.in_proj_weight, self.in_proj_bias)  # (B, T, 3*H*D)
            qkv = qkv.view(b, tq, 3, h, self.key_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, T, D)
            if return_weights:
                qkv = qkv.contiguous()  # one copy here instead of one per matmul operand
            q, k, v = qkv.unbind(0)
        else:
            q, k, v = self._project(query, value, key, self_attention)
            q = q.view(b, tq, h, self.key_dim).transpose(1, 2)  # (B, H, Tq, Dk)
            k = k.view(b, tn, hkv, self.key_dim).transpose(1, 2)  # (B, Hkv, Tk, Dk)
            v = v.view(b, tn, hkv, self.value_dim).transpose(1, 2)  # (B, Hkv, Tk, Dv)
        kv_mask = _and(check_mask(value_mask, "value_mask", (b, tn)), check_mask(key_mask, "key_mask", (b, tn)))
        past = 0
        if reuse:
            k, v, kv_mask = cache.key, cache.value, cache.mask  # type: ignore[union-attr]
        else:
            if cache is not None:
                past = cache.length
                k, v, kv_mask = cache.update(k, v, None if kv_mask is None else kv_mask.expand(b, tn))
        tk = k.shape[2]
        mask = None
        if query_mask is not None:
            mask = check_mask(query_mask, "query_mask", (b, tq))[:, None, :, None]  # (B, 1, Tq, 1)
        if kv_mask is not None:
            mask = _and(mask, kv_mask[:, None, None, :])  # (B, 1, 1, Tk)
        if attention_mask is not None:
            mask = _and(mask, _sequence_attention_mask(attention_mask, b, h, tq, tk))
        causal = False
        if use_causal_mask:
            if mask is None and past == 0 and tq == tk:
                causal = True  # the fused causal kernel, no (Tq, Tk) mask tensor
            else:
                i = torch.arange(tq, device=query.device)[:, None] + past
                mask = _and(mask, i >= torch.arange(tk, device=query.device)[None, :])  # (Tq, Tk)
        result = self._attend(q, k, v, mask, causal, return_weights)
        out, w = result if return_weights else (result, None)
        out = out.transpose(1, 2).reshape(b, tq, h * self.value_dim)  # (B, Tq, H*Dv)
        out = linear(out, self.output_dense.weight, self.output_dense.bias).view(b, tq, *self._out_shape())  # type: ignore[misc]
        return (out, w) if return_weights else out

    def _forward_axes(
        self, query, value, key, axes, query_mask, value_mask, key_mask, attention_mask,
        use_causal_mask, return_weights,
    ):  # fmt: skip
        """General case: fold the non-attention axes into the batch and the attention axes into one."""
        r = query.dim()
        h, hkv = self.num_heads, self.num_key_value_heads
        other = [0] + [a for a in range(1, r - 1) if a not in axes]
        if [query.shape[a] for a in other] != [value.shape[a] for a in other]:
            raise ValueError(
                f"Expected query and value to agree on the non-attention axes {tuple(other)}. "
                f"Received: query.shape={tuple(query.shape)}, value.shape={tuple(value.shape)}"
            )
        nb = [query.shape[a] for a in other]
        qa = [query.shape[a] for a in axes]
        ka = [value.shape[a] for a in axes]
        n, lq, lk = math.prod(nb), math.prod(qa), math.prod(ka)
        perm = other + [r - 1] + list(axes) + [r]  # projected (B, *dims, H, D) -> (B, *other, H, *attn, D)

        def heads(x: Tensor, count: int, size: int, length: int) -> Tensor:
            x = x.unflatten(-1, (count, size))  # (B, *dims, Hx, D)
            return x.permute(perm).reshape(n, count, length, size)  # (N, Hx, L, D)

        q, k, v = self._project(query, value, key, query is value and key is value)
        q = heads(q, h, self.key_dim, lq)
        k = heads(k, hkv, self.key_dim, lk)
        v = heads(v, hkv, self.value_dim, lk)
        mask = None
        pos = other + list(axes)  # input axes in folded order
        if query_mask is not None:
            qm = check_mask(query_mask, "query_mask", query.shape[:-1])
            mask = qm.expand(query.shape[:-1]).permute(pos).reshape(n, 1, lq, 1)
        for name, m in (("value_mask", value_mask), ("key_mask", key_mask)):
            if m is not None:
                km = check_mask(m, name, value.shape[:-1]).expand(value.shape[:-1])
                mask = _and(mask, km.permute(pos).reshape(n, 1, 1, lk))
        if attention_mask is not None:
            full = (*nb, *qa, *ka)
            am = attention_mask
            if isinstance(am, Tensor) and am.dim() == len(full):
                am = am.unsqueeze(len(nb))  # insert the head axis
            am = check_mask(am, "attention_mask", (*nb, h, *qa, *ka))
            am = am.expand(*nb, am.shape[len(nb)], *qa, *ka)
            mask = _and(mask, am.reshape(n, am.shape[len(nb)], lq, lk))
        if use_causal_mask:
            if len(axes) != 1:
                raise ValueError(
                    "Expected a single attention axis with `use_causal_mask=True`. "
                    f"Received: attention_axes={self.attention_axes}"
                )
            mask = _and(mask, torch.ones(lq, lk, dtype=torch.bool, device=query.device).tril())
        result = self._attend(q, k, v, mask, False, return_weights)
        out, w = result if return_weights else (result, None)
        out = out.reshape(*nb, h, *qa, self.value_dim).permute(_inverse(perm))  # (B, *dims, H, Dv)
        out = linear(out.flatten(-2), self.output_dense.weight, self.output_dense.bias)  # type: ignore[misc]
        out = out.unflatten(-1, self._out_shape())  # (B, *dims, *output_shape)
        if return_weights:
            return out, w.reshape(*nb, h, *qa, *ka)  # type: ignore[union-attr]
        return out

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


@dataclass(frozen=True)
class Projection:
    """One input projection ``x -> x W^T + b`` over views of ``MultiHeadAttention``'s parameters.

    ``weight`` ``(out, in)``, ``bias`` ``(out,)`` or ``None``; writing into them (e.g. ``copy_`` under
    ``torch.no_grad()``) writes into the layer.
    """

    weight: Tensor
    bias: Tensor | None

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def __call__(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


def _weights_in_place(
    q: Tensor, k: Tensor, v: Tensor, scale: float, mask: Tensor | None, causal: bool
) -> tuple[Tensor, Tensor]:
    """Inference-only weights path: ``attnkit.functional.attention(q * scale, k, v, score="dot",
    return_weights=True)`` with batched matmuls on ``(B*H, T, D)`` views (no copy of the transposed
    keys, the scale applied inside the score matmul) and the softmax taken in place in the score buffer (one ``(B, H, Tq, Tk)`` allocation instead
    of two). Same numbers, including zero rows for fully masked queries; a test checks that the two
    paths agree.
    """
    b, h, tq, d = q.shape
    tk, dv = k.shape[-2], v.shape[-1]
    q3, k3 = q.reshape(b * h, tq, d), k.reshape(b * h, tk, d)  # (B*H, Tq, Dk), (B*H, Tk, Dk)
    empty = q.new_empty(b * h, tq, tk)
    scores = torch.baddbmm(empty, q3, k3.transpose(1, 2), beta=0.0, alpha=scale).view(b, h, tq, tk)  # scale * q k^T
    if causal:
        mask = _and(mask, torch.ones(tq, tk, dtype=torch.bool, device=q.device).tril())
    if mask is not None:
        scores.masked_fill_(~mask, float("-inf"))
    torch.ops.aten._softmax.out(scores, -1, False, out=scores)  # in place
    if mask is not None:
        row_ok = mask.any(dim=-1, keepdim=True)
        if not bool(row_ok.all()):
            scores.masked_fill_(~row_ok, 0.0)  # rows with no allowed key: zeros, not NaN
    out = torch.bmm(scores.view(b * h, tq, tk), v.reshape(b * h, tk, dv))  # (B*H, Tq, Dv)
    return out.view(b, h, tq, dv), scores


def _and(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _inverse(perm: list[int]) -> list[int]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def _sequence_attention_mask(mask: Tensor, b: int, h: int, tq: int, tk: int) -> Tensor:
    """Bring an ``attention_mask`` of shape (Tq, Tk), (B, Tq, Tk) or (B, H, Tq, Tk) to rank 4."""
    if not isinstance(mask, Tensor) or mask.dim() not in (2, 3, 4):
        got = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(
            f"Expected `attention_mask` of shape (Tq, Tk), (B, Tq, Tk) or (B, H, Tq, Tk) = ({b}, {h}, {tq}, {tk}). "
            f"Received: attention_mask.shape={got}"
        )
    full = (b, h, tq, tk)[4 - mask.dim() :]
    check_mask(mask, "attention_mask", full)
    if mask.dim() == 2:
        return mask  # (Tq, Tk)
    return mask if mask.dim() == 4 else mask[:, None]  # (B, 1, Tq, Tk)
