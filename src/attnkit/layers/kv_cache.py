"""The key/value cache of attnkit: one per attention layer, for step-by-step (incremental) decoding.

Shape legend: ``B`` batch (rows), ``Hkv`` key/value heads, ``T`` cached length, ``Tn`` new positions
this step, ``Dh`` head width, ``C`` capacity of the storage.

An autoregressive decoder recomputes nothing for the positions it has already produced: each attention
layer keeps the projected keys and values of the earlier steps and only projects the new ones.
``MultiHeadAttention(...)(x, x, cache=cache, use_causal_mask=True)`` appends to the cache and attends
over everything cached, with the causal mask shifted by ``cache.length``. Every model of attnkit
(Transformer, Bert, GPT) uses this one cache; a model's cache is a list of them, one per layer.

Storage is preallocated and grows by doubling, so a decoding step writes its keys in place instead of
concatenating (``capacity`` sets the first size, e.g. prompt + new tokens). A *static* cache is filled
once and then reused as is: the cross-attention case, where the encoder's keys and values never change,
so later calls skip projecting them altogether.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor


class KVCache:
    """Projected keys and values of the positions decoded so far, for one attention layer.

    Args:
        static: fill once (the first call), then reuse as is (cross-attention to an encoder output).
        capacity: positions to preallocate at the first update (default: that update's length);
            the storage doubles whenever it runs out.

    Attributes:
        key: ``(B, Hkv, T, Dh)`` or ``None`` before the first update.
        value: ``(B, Hkv, T, Dv)`` or ``None``.
        mask: ``(B, T)`` bool, True = real position, or ``None`` when every cached position is real.
        length: ``T``, the number of cached positions.

    ``k, v = cache`` unpacks the pair, as the legacy ``past_key_values`` tuples of ``transformers`` do.

    Example:
        >>> import torch
        >>> from attnkit.layers.multi_head import MultiHeadAttention
        >>> mha = MultiHeadAttention(num_heads=2, key_dim=4, query_dim=8).eval()
        >>> cache = KVCache(capacity=3)
        >>> x = torch.randn(1, 3, 8)
        >>> steps = [mha(x[:, t:t + 1], x[:, t:t + 1], cache=cache, use_causal_mask=True) for t in range(3)]
        >>> full = mha(x, x, use_causal_mask=True)
        >>> torch.allclose(torch.cat(steps, dim=1), full, atol=1e-6), cache.length
        (True, 3)
    """

    def __init__(self, static: bool = False, capacity: int | None = None) -> None:
        if capacity is not None and (not isinstance(capacity, int) or capacity < 1):
            raise ValueError(f"Expected capacity to be a positive int or None. Received: capacity={capacity!r}")
        self.static = static
        self.capacity = capacity
        self.length = 0
        self._key: Tensor | None = None  # (B, Hkv, C, Dh)
        self._value: Tensor | None = None  # (B, Hkv, C, Dv)
        self._mask: Tensor | None = None  # (B, C) bool

    @property
    def key(self) -> Tensor | None:
        return None if self._key is None else self._key[:, :, : self.length]

    @property
    def value(self) -> Tensor | None:
        return None if self._value is None else self._value[:, :, : self.length]

    @property
    def mask(self) -> Tensor | None:
        return None if self._mask is None else self._mask[:, : self.length]

    def __iter__(self) -> Iterator[Tensor | None]:
        return iter((self.key, self.value))

    def update(self, key: Tensor, value: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Append ``key`` ``(B, Hkv, Tn, Dh)``, ``value`` ``(B, Hkv, Tn, Dv)`` and their ``mask`` ``(B, Tn)``.

        Returns:
            The whole cache ``(key (B, Hkv, T + Tn, Dh), value (B, Hkv, T + Tn, Dv), mask (B, T + Tn) or None)``.
        """
        k0 = self._key
        start, end = self.length, self.length + key.shape[2]
        if k0 is not None and (key.shape[:2] != k0.shape[:2] or key.shape[3] != k0.shape[3]):
            raise ValueError(f"Expected new keys of shape (B, Hkv, Tn, Dk) = ({k0.shape[0]}, {k0.shape[1]}, Tn, "
                             f"{k0.shape[-1]}) to match the cache. Received: key.shape={tuple(key.shape)}")
        if (key.requires_grad or value.requires_grad) and torch.is_grad_enabled():
            self._append_functional(key, value, mask)  # no in-place writes into tensors autograd saved
            self.length = end
            return self.key, self.value, self.mask  # type: ignore[return-value]
        if k0 is None or end > k0.shape[2]:
            self._reserve(key, value, end)
        self._key[:, :, start:end] = key  # type: ignore[index]
        self._value[:, :, start:end] = value  # type: ignore[index]
        if mask is not None and self._mask is None:
            self._mask = torch.ones(key.shape[0], self._key.shape[2], dtype=torch.bool, device=key.device)  # type: ignore[union-attr]
        if mask is not None:
            self._mask[:, start:end] = mask  # type: ignore[index]
        self.length = end
        return self.key, self.value, self.mask  # type: ignore[return-value]

    def _reserve(self, key: Tensor, value: Tensor, end: int) -> None:
        """Make room for ``end`` positions (first allocation, or doubling)."""
        size = 0 if self._key is None else self._key.shape[2]
        if end <= size:
            return
        new = max(end, 2 * size, self.capacity or 0)
        b, h = key.shape[:2]
        k = key.new_empty(b, h, new, key.shape[-1])  # (B, Hkv, C, Dh)
        v = value.new_empty(b, h, new, value.shape[-1])  # (B, Hkv, C, Dv)
        if self._key is not None:
            k[:, :, : self.length] = self.key
            v[:, :, : self.length] = self.value
        self._key, self._value = k, v
        if self._mask is not None:
            m = torch.ones(b, new, dtype=torch.bool, device=key.device)  # (B, C)
            m[:, : self.length] = self.mask
            self._mask = m

    def _append_functional(self, key: Tensor, value: Tensor, mask: Tensor | None) -> None:
        """The same append with ``torch.cat`` (used under autograd)."""
        b, tn = key.shape[0], key.shape[2]
        if self._key is None:
            self._key, self._value = key, value
        else:
            self._key = torch.cat([self.key, key], dim=2)  # (B, Hkv, T + Tn, Dh)
            self._value = torch.cat([self.value, value], dim=2)  # type: ignore[list-item]
        if mask is not None or self._mask is not None:
            ones = torch.ones(b, self.length, dtype=torch.bool, device=key.device)
            old = self.mask if self._mask is not None else ones
            new = mask.expand(b, tn) if mask is not None else torch.ones(b, tn, dtype=torch.bool, device=key.device)
            self._mask = torch.cat([old, new], dim=1)  # (B, T + Tn)

    def map_tensors(self, fn: Callable[[Tensor], Tensor]) -> KVCache:
        """A new cache whose tensors are ``fn`` of these, rows on dim 0 (``attnkit.decoding`` reorders beams
        with it: ``fn = lambda t: t.index_select(0, index)``)."""
        out = KVCache(static=self.static, capacity=self.capacity)
        out.length = self.length
        out._key, out._value, out._mask = (None if t is None else fn(t) for t in (self._key, self._value, self._mask))
        return out

    def select(self, index: Tensor) -> None:
        """Keep batch rows ``index`` ``(B',)`` in place (e.g. the surviving hypotheses of a beam search)."""
        other = self.map_tensors(lambda t: t.index_select(0, index.to(t.device)))
        self._key, self._value, self._mask = other._key, other._value, other._mask

    def reset(self) -> None:
        """Forget everything cached."""
        self._key = self._value = self._mask = None
        self.length = 0
