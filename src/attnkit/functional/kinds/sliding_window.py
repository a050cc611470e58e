"""Sliding-window (local) attention with optional global tokens (Longformer, Beltagy et al. 2020).

Query ``i`` attends the keys ``j`` with ``|i - j| <= w`` (``j <= i`` too when causal); a global token
``g`` attends every key and every query attends it:

    allowed(i, j) = |i - j| <= w  or  i in G  or  j in G          (and j <= i when causal)
    output_i      = sum_j softmax_j(scale * q_i . k_j | allowed) v_j

It equals full attention under ``local_window_mask(Tq, Tk, w)`` (or that mask ``|`` the global rows and
columns) exactly, but never builds the ``Tq x Tk`` matrix: queries go in blocks of ``b`` positions, each
over the ``M = b + 2w`` keys of its band (``b + w`` when causal) plus the ``G`` global keys.

Time ``O(Tq * (b + 2w + G) * D + G * Tk * D)``; memory ``O(Tq * (b + 2w + G) + G * Tk)`` for the weights,
plus ``O(Tq / b * (b + 2w + G) * D)`` for the gathered keys and values. With the default ``b = clamp(w,
16, 256)`` the cost per query is about ``3w``: linear in the length, ``Tk / 3w`` times less than full.

Masks: a key padding mask (``(..., 1, Tk)``-shaped) and ``causal``; pair masks raise. Dropout and
``return_weights`` (a dense ``(..., Tq, Tk)`` tensor) are supported.

Shape legend: ``...`` leading dims, Tq/Tk query/key length, w window, b query block, M keys per block,
G global tokens, D width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from attnkit.functional.kinds._blocked import (
    and_all,
    causal_allowed,
    gathered_attention,
    global_rows,
    padded_key_mask,
    put_rows,
    row_mask,
)
from attnkit.functional.kinds.base import AttentionKind


class SlidingWindowAttention(AttentionKind):
    """Local attention over ``window`` positions on each side, plus optional global tokens.

    Args:
        window: ``w >= 0``, keys ``|i - j| <= w`` are attended (only ``i - w <= j <= i`` when causal). A window
            wider than the sequence is clamped to it (same result), so the memory stays bounded by the length.
        global_tokens: positions that attend every key and that every query attends (Longformer's
            global attention, e.g. ``(0,)`` for a [CLS] token); positions past the end are ignored.
        block_size: queries per block ``b`` (default ``clamp(window, 16, 256)``); any value gives the
            same result, it only trades Python overhead against wasted band entries; clamped to ``Tq``.

    Example:
        >>> import torch
        >>> from attnkit.functional import attention, local_window_mask
        >>> q, k, v = torch.randn(2, 50, 8), torch.randn(2, 50, 8), torch.randn(2, 50, 4)
        >>> out = attention(q, k, v, kind="sliding_window", window=3)
        >>> full = attention(q, k, v, mask=local_window_mask(50, 50, 3))
        >>> bool(torch.allclose(out, full, atol=1e-6))
        True
    """

    name = "sliding_window"
    supports_dropout = True

    def __init__(self, window: int, global_tokens: Sequence[int] = (), block_size: int | None = None) -> None:
        super().__init__()
        if not isinstance(window, int) or isinstance(window, bool) or window < 0:
            raise ValueError(f"Expected window a non-negative int for kind='sliding_window'. Received: {window!r}")
        tokens = tuple(global_tokens)
        if any(not isinstance(g, int) or g < 0 for g in tokens):
            raise ValueError(f"Expected global_tokens non-negative int positions. Received: {tokens!r}")
        if block_size is not None and (not isinstance(block_size, int) or block_size < 1):
            raise ValueError(f"Expected block_size a positive int or None. Received: {block_size!r}")
        self.window, self.global_tokens, self.block_size = window, tuple(sorted(set(tokens))), block_size

    def options(self) -> dict:
        return {"window": self.window, "global_tokens": self.global_tokens, "block_size": self.block_size}

    def forward(self, query: Tensor, key: Tensor, value: Tensor, *, key_mask: Tensor | None, causal: bool,
                scale: float, dropout_p: float, return_weights: bool,
                chunk_size: int | None) -> tuple[Tensor, Tensor | None]:
        tq, tk, dev = query.shape[-2], key.shape[-2], query.device
        w = min(self.window, max(tq, tk))  # a wider window sees the same keys: bounded before allocation
        b = min(chunk_size or self.block_size or min(max(w, 16), 256), max(tq, 1))  # no block past the queries
        nb = -(-tq // b)
        span = b + w if causal else b + 2 * w  # keys a block's band can reach
        starts = torch.arange(nb, device=dev)[:, None] * b  # (nb, 1)
        band_pos = starts - w + torch.arange(span, device=dev)[None, :]  # (nb, M): may fall outside [0, Tk)
        qpos = starts[:, :, None] + torch.arange(b, device=dev)[None, :, None]  # (nb, b, 1)
        kpos = band_pos[:, None, :]  # (nb, 1, M)
        allowed = (kpos - qpos).abs() <= w  # (nb, b, M), the band
        allowed &= (kpos >= 0) & (kpos < tk)
        glob = torch.tensor([g for g in self.global_tokens if g < tk], dtype=torch.long, device=dev)  # (G,)
        if glob.numel():  # every query also attends the global keys (once: not again inside its band)
            gpos = glob[None, None, :].expand(nb, 1, -1)  # (nb, 1, G)
            allowed = torch.cat([allowed, ((gpos - qpos).abs() > w).expand(nb, b, -1)], dim=-1)  # (nb, b, M + G)
            band_pos = torch.cat([band_pos, glob[None, :].expand(nb, -1)], dim=-1)
            kpos = band_pos[:, None, :]
        key_pos = band_pos.clamp(0, max(tk - 1, 0))  # (nb, M + G)
        allowed = and_all(allowed, causal_allowed(qpos, kpos, causal), padded_key_mask(key_mask, key_pos))
        out, weights = gathered_attention(query, key, value, key_pos, allowed, scale, dropout_p, b, return_weights)
        rows = glob[glob < tq]  # global queries attend every key
        if rows.numel():
            g_out, g_w = global_rows(query, key, value, rows, row_mask(key_mask, rows, tk, causal), scale, dropout_p)
            out = put_rows(out, rows, g_out)
            weights = None if weights is None else put_rows(weights, rows, g_w.expand(*weights.shape[:-2], -1, -1))
        return out, weights

    def dense_mask(self, tq: int, tk: int, device: torch.device | str | None = None) -> Tensor:
        """The ``(Tq, Tk)`` bool mask full attention would need for the same result (without causal).

        Example:
            >>> SlidingWindowAttention(1, global_tokens=(0,)).dense_mask(4, 4).int()
            tensor([[1, 1, 1, 1],
                    [1, 1, 1, 0],
                    [1, 1, 1, 1],
                    [1, 0, 1, 1]], dtype=torch.int32)
        """
        i = torch.arange(tq, device=device)[:, None]
        j = torch.arange(tk, device=device)[None, :]
        allowed = (i - j).abs() <= self.window
        for g in self.global_tokens:
            allowed = allowed | (i == g) | (j == g)
        return allowed
