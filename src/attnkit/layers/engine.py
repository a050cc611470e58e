"""The attention engine every attnkit model runs: multi-head attention with a packed projection, a
:class:`~attnkit.layers.KVCache`, and the one dispatcher of :mod:`attnkit.functional.dispatch`.

``Transformer``, ``Bert`` and ``GPT`` blocks build :class:`AttentionEngine`; the Keras-compatible
:class:`attnkit.layers.MultiHeadAttention` (lazy build, ``attention_axes``, ``output_shape``, Keras masks,
porting) is a facade around the same steps.

    Q, K, V = x W_q^T + b_q, m W_k^T + b_k, m W_v^T + b_v       (m = x for self-attention)
    head_h  = softmax(Q_h K_h^T / sqrt(Dh)) V_h                 (masked; causal per call)
    output  = concat_h(head_h) W_o^T + b_o

Shape legend: B batch, T positions of this call, S key positions (cached + new, or the memory's), D model
width, H heads, Dh head width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnkit.functional.dispatch import run
from attnkit.functional.kinds import AttentionKind, resolve_kind
from attnkit.kernels import linear
from attnkit.kernels.packed_heads import packed_heads
from attnkit.layers._checks import check_dropout, dropout_on
from attnkit.layers.kv_cache import KVCache


class AttentionEngine(nn.Module):
    """Multi-head scaled dot-product attention over ``(B, T, D)`` inputs, what the model blocks need.

    Args:
        d_model: input and output width D (``num_heads`` must divide it).
        num_heads: H; each head is ``Dh = D / H`` wide.
        dropout: dropout on the attention weights, in training mode only.
        kind, window: the attention kind (``"full"``, a name of :mod:`attnkit.functional.kinds`, an options
            dict ``{"name": ..., **options}`` as a model config stores it, or an ``AttentionKind``).

    Call arguments:
        x: ``(B, T, D)`` queries; memory: ``(B, S, D)`` keys and values (cross-attention), default ``x``.
        key_mask: ``(B, S)`` bool, True = real position (with a cache: of this call's positions).
        causal: position t attends positions <= t only (shifted by the cache length).
        cache: a :class:`KVCache` to append this call's keys and values to, or a filled static one to read.
        return_weights: also return the weights ``(B, H, T, S)``.

    Returns:
        ``(output (B, T, D), weights or None)``.

    Parameters: ``in_proj_weight (3D, D)`` (rows: query, key, value), ``in_proj_bias (3D,)``, ``output_dense``.

    Example:
        >>> x = torch.randn(2, 5, 8)
        >>> out, w = AttentionEngine(8, 2)(x, causal=True, return_weights=True)
        >>> tuple(out.shape), tuple(w.shape)
        ((2, 5, 8), (2, 2, 5, 5))
    """

    def __init__(self, d_model: int, num_heads: int, *, dropout: float = 0.0, kind: str | dict | AttentionKind = "full",
                 window: int | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"Expected d_model divisible by num_heads. Received: d_model={d_model}, num_heads={num_heads}")
        self.num_heads = self.num_key_value_heads = num_heads
        self.key_dim = self.value_dim = d_model // num_heads
        self._set_dropout_and_kind(dropout, kind, window)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model, device=device, dtype=dtype))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model, device=device, dtype=dtype))
        self.output_dense = nn.Linear(d_model, d_model, device=device, dtype=dtype)
        with torch.no_grad():  # Glorot-uniform per projection, as Keras; biases zero
            for w in (*self.in_proj_weight.chunk(3), self.output_dense.weight):
                nn.init.xavier_uniform_(w)
            nn.init.zeros_(self.output_dense.bias)

    def _set_dropout_and_kind(self, dropout: float, kind: str | dict | AttentionKind, window: int | None) -> None:
        """Check and set ``dropout`` and the kind (``"full"`` or an ``AttentionKind`` module, e.g. Performer's features)."""
        check_dropout(dropout)
        self.dropout = float(dropout)
        self.kind = resolve_kind(kind, window)
        if self.dropout and not isinstance(self.kind, str) and not self.kind.supports_dropout:
            raise ValueError(f"Expected dropout=0 with kind={self.kind.name!r}. Received: dropout={dropout}")

    def forward(self, x: Tensor, memory: Tensor | None = None, *, key_mask: Tensor | None = None, causal: bool = False,
                cache: KVCache | None = None, return_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        memory_or_x = x if memory is None else memory
        q, k, v = self._heads(x, memory_or_x, memory_or_x, memory is None, cache)  # 1. project, split heads
        k, v, key_mask, past = self._cached(k, v, key_mask, cache)  # 2. the cache
        mask, causal = self._mask(key_mask, causal, x.shape[1], k.shape[2], past, x.device)  # 3. one mask
        out, weights = self._attend(q, k, v, mask, causal, return_weights)  # 4. attend: (B, H, T, Dh)
        return self._output(out), weights  # 5. (B, T, D)

    def _heads(self, query: Tensor, value: Tensor, key: Tensor, self_attention: bool,
               cache: KVCache | None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``q (B, H, T, Dh)``, ``k, v (B, H, S, Dh)``; ``k, v`` are None when a filled static cache holds them."""
        b, t, _ = query.shape
        h, dh = self.num_heads, self.key_dim
        w, bias = self.in_proj_weight, self.in_proj_bias
        static = cache is not None and cache.static and cache.length > 0
        if self_attention and not static:  # one product for the three projections: 3 x (B, H, T, Dh)
            return packed_heads(query, w, bias, h)
        n = h * dh
        q = linear(query, w[:n], None if bias is None else bias[:n]).view(b, t, h, dh).transpose(1, 2)
        if static:
            return q, None, None
        s = value.shape[1]
        kv = linear(value, w[n:], None if bias is None else bias[n:])  # (B, S, 2*H*Dh)
        k, v = kv.view(b, s, 2, h, dh).permute(2, 0, 3, 1, 4).unbind(0)  # 2 x (B, H, S, Dh)
        return q, k, v

    def _cached(self, k: Tensor | None, v: Tensor | None, key_mask: Tensor | None,
                cache: KVCache | None) -> tuple[Tensor, Tensor, Tensor | None, int]:
        """Keys, values and key mask over every position, and the number ``past`` cached before this call."""
        if cache is None:
            return k, v, key_mask, 0  # type: ignore[return-value]
        if k is None:  # a filled static cache: the memory's keys, values and mask
            return cache.key, cache.value, cache.mask, 0  # type: ignore[return-value]
        past = cache.length
        if past and not isinstance(self.kind, str):
            raise ValueError(f"Expected kind='full' with a filled KVCache. Received: kind={self.kind.name!r}")
        k, v, key_mask = cache.update(k, v, None if key_mask is None else key_mask.expand(k.shape[0], k.shape[2]))
        return k, v, key_mask, past

    @staticmethod
    def _mask(key_mask: Tensor | None, causal: bool, t: int, s: int, past: int, device: torch.device,
              mask: Tensor | None = None) -> tuple[Tensor | None, bool]:
        """``mask`` and the key mask as one boolean mask (True = may attend), and whether the paths apply the
        causal mask themselves (no cache: top-left aligned) or it is in the mask (shifted by ``past``)."""
        if key_mask is not None:
            keys = key_mask[:, None, None, :]  # (B, 1, 1, S)
            mask = keys if mask is None else mask & keys
        if not causal or (past == 0 and t == s):
            return mask, causal
        if t == 1 and past + 1 >= s:  # one new query sees every cached key: nothing to hide
            return mask, False
        pairs = torch.arange(t, device=device)[:, None] + past >= torch.arange(s, device=device)  # (T, S)
        return (pairs if mask is None else mask & pairs), False

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool,
                return_weights: bool, training: bool | None = None) -> tuple[Tensor, Tensor | None]:
        """Through the one dispatcher: ``(B, H, T, Dv)`` and the weights ``(B, H, T, S)`` or None.

        Dropout runs when ``training`` is True, or when it is None and the module is in training mode."""
        groups = self.num_heads // self.num_key_value_heads
        if groups > 1:  # grouped-query attention: each key/value head serves `groups` query heads
            k, v = (x.repeat_interleave(groups, dim=1) for x in (k, v))  # (B, H, S, D)
        return run(q, k, v, scale=self.key_dim ** -0.5, mask=mask, causal=causal,
                   dropout_p=self.dropout if dropout_on(self, training) else 0.0, return_weights=return_weights,
                   kind=None if isinstance(self.kind, str) else self.kind)

    def _output(self, heads: Tensor) -> Tensor:
        """``(B, H, T, Dv) -> (B, T, H*Dv) -> (B, T, D_out)``: the heads side by side, then ``output_dense``."""
        b, h, t, dv = heads.shape
        return linear(heads.transpose(1, 2).reshape(b, t, h * dv), self.output_dense.weight, self.output_dense.bias)
