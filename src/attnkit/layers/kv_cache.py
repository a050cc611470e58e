"""Key/value cache for step-by-step (incremental) decoding.

Shape legend: ``B`` batch, ``Hkv`` key/value heads, ``T`` cached length, ``Tn`` new tokens this
step, ``D`` head size.

An autoregressive decoder recomputes nothing for the tokens it has already produced: each
attention layer keeps the projected keys and values of the earlier steps and only projects the
new token(s). ``MultiHeadAttention(...)(x, x, cache=cache, use_causal_mask=True)`` appends to the
cache and attends over everything cached, with the causal mask shifted by ``cache.length``.
"""

from __future__ import annotations

import torch
from torch import Tensor


class KVCache:
    """Projected keys and values of the steps decoded so far, for one attention layer.

    Attributes:
        key: ``(B, Hkv, T, Dk)`` or ``None`` before the first step.
        value: ``(B, Hkv, T, Dv)`` or ``None``.
        mask: ``(B, T)`` bool, True = real token, or ``None`` when every cached token is real.
        static: when True the cache is filled once (the first call) and then reused as is; this
            is the cross-attention case, where the encoder's keys and values never change, so
            later calls skip projecting ``key``/``value`` altogether.

    Example:
        >>> import torch
        >>> from attnkit.layers.multi_head import MultiHeadAttention
        >>> mha = MultiHeadAttention(num_heads=2, key_dim=4, query_dim=8).eval()
        >>> cache = KVCache()
        >>> x = torch.randn(1, 3, 8)
        >>> steps = [mha(x[:, t:t + 1], x[:, t:t + 1], cache=cache, use_causal_mask=True) for t in range(3)]
        >>> full = mha(x, x, use_causal_mask=True)
        >>> torch.allclose(torch.cat(steps, dim=1), full, atol=1e-6)
        True
    """

    def __init__(self, static: bool = False) -> None:
        self.key: Tensor | None = None
        self.value: Tensor | None = None
        self.mask: Tensor | None = None
        self.static = static

    @property
    def length(self) -> int:
        """Number of cached time steps ``T``."""
        return 0 if self.key is None else self.key.shape[-2]

    def update(self, key: Tensor, value: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Append ``key`` ``(B, Hkv, Tn, Dk)``, ``value`` ``(B, Hkv, Tn, Dv)`` and their ``mask`` ``(B, Tn)``.

        Returns the whole cached ``(key, value, mask)``: ``(B, Hkv, T + Tn, .)`` and
        ``(B, T + Tn)`` or ``None``.
        """
        if self.key is None:
            self.key, self.value, self.mask = key, value, mask
            return key, value, mask
        if key.shape[0] != self.key.shape[0] or key.shape[1] != self.key.shape[1] or key.shape[-1] != self.key.shape[-1]:
            raise ValueError(
                f"Expected new keys of shape (B, Hkv, Tn, Dk) = ({self.key.shape[0]}, {self.key.shape[1]}, Tn, "
                f"{self.key.shape[-1]}) to match the cache. Received: key.shape={tuple(key.shape)}"
            )
        past = self.length
        if mask is not None or self.mask is not None:
            b = key.shape[0]
            old = self.mask if self.mask is not None else torch.ones(b, past, dtype=torch.bool, device=key.device)
            new = mask if mask is not None else torch.ones(b, key.shape[-2], dtype=torch.bool, device=key.device)
            self.mask = torch.cat([old, new.expand(b, -1)], dim=1)  # (B, T + Tn)
        self.key = torch.cat([self.key, key], dim=-2)  # (B, Hkv, T + Tn, Dk)
        self.value = torch.cat([self.value, value], dim=-2)  # (B, Hkv, T + Tn, Dv)
        return self.key, self.value, self.mask

    def select(self, index: Tensor) -> None:
        """Keep batch rows ``index`` ``(B',)`` (e.g. the surviving hypotheses of a beam search)."""
        if self.key is None:
            return
        self.key = self.key.index_select(0, index)
        self.value = self.value.index_select(0, index)  # type: ignore[union-attr]
        if self.mask is not None:
            self.mask = self.mask.index_select(0, index)

    def reset(self) -> None:
        """Forget everything cached."""
        self.key = self.value = self.mask = None
