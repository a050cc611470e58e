"""Block-sparse attention (BigBird, Zaheer et al. 2020): local + global + random blocks.

Queries and keys are cut into blocks of ``b`` positions. Query block ``I`` attends key block ``J`` when

    |I - J| <= num_local                       (sliding blocks)
    or I < num_global or J < num_global         (global blocks: attend everything, attended by everyone)
    or J in R(I)                                (num_random blocks drawn per row from a seeded generator)

and, inside the allowed blocks, every key (``j <= i`` when causal; key padding applies). The block
``layout (nbq, nbk)`` is a function of the sizes and ``seed`` only, so the same call always gives the same
answer, and it equals full attention under the layout expanded to positions (:meth:`BlockSparseAttention.dense_mask`)
exactly. Each non-global query block gathers its ``m = 2 * num_local + 1 + num_global + num_random`` key
blocks; global query blocks are dense rows.

Time ``O(Tq * m * b * D + num_global * b * Tk * D)``; memory ``O(Tq * m * b + num_global * b * Tk)`` for the
weights, plus ``O(Tq / b * m * b * D)`` gathered keys and values: linear in the length for fixed ``m, b``.

Masks: a key padding mask (``(..., 1, Tk)``-shaped) and ``causal``; pair masks raise. Dropout and
``return_weights`` are supported.

Shape legend: ``...`` leading dims, Tq/Tk query/key length, b block, nbq/nbk query/key blocks, m key blocks
per query block, D width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


class BlockSparseAttention(AttentionKind):
    """BigBird-style block-sparse attention with a seeded random layout.

    Args:
        block_size: positions per block ``b`` (clamped to the longer sequence: a block past the input changes
            nothing but the memory).
        num_local: neighbouring blocks on each side (1: the block itself and one either side).
        num_global: leading blocks that attend and are attended by every block.
        num_random: random key blocks per query block.
        seed: seed of the random blocks (the layout depends on the sizes and this only).

    Example:
        >>> import torch
        >>> from attnkit.functional import attention
        >>> kind = BlockSparseAttention(block_size=4, num_random=1, seed=3)
        >>> q, k, v = torch.randn(2, 30, 8), torch.randn(2, 30, 8), torch.randn(2, 30, 5)
        >>> out = attention(q, k, v, kind=kind)
        >>> full = attention(q, k, v, mask=kind.dense_mask(30, 30))
        >>> bool(torch.allclose(out, full, atol=1e-6))
        True
    """

    name = "block_sparse"
    supports_dropout = True

    def __init__(self, block_size: int = 64, num_local: int = 1, num_global: int = 1, num_random: int = 2,
                 seed: int = 0) -> None:
        super().__init__()
        for arg, value, low in (("block_size", block_size, 1), ("num_local", num_local, 0),
                                ("num_global", num_global, 0), ("num_random", num_random, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"Expected {arg} an int >= {low} for kind='block_sparse'. Received: {value!r}")
        self.block_size, self.num_local, self.num_global = block_size, num_local, num_global
        self.num_random, self.seed = num_random, int(seed)
        self._plans: dict = {}

    def options(self) -> dict:
        return {"block_size": self.block_size, "num_local": self.num_local, "num_global": self.num_global,
                "num_random": self.num_random, "seed": self.seed}

    def layout(self, nbq: int, nbk: int, device: torch.device | str | None = None) -> Tensor:
        """``(nbq, nbk)`` bool: which key blocks each query block attends (the seeded random draw included).

        Example:
            >>> BlockSparseAttention(num_random=1, seed=0).layout(5, 5).sum(-1).tolist()
            [5, 4, 5, 5, 4]
        """
        i = torch.arange(nbq)[:, None]
        j = torch.arange(nbk)[None, :]
        layout = ((i - j).abs() <= self.num_local) | (i < self.num_global) | (j < self.num_global)
        gen = torch.Generator().manual_seed(self.seed)
        noise = torch.rand(nbq, nbk, generator=gen).masked_fill(layout, 2.0)  # chosen blocks sort last
        picks = noise.argsort(dim=-1)[:, : min(self.num_random, nbk)]  # (nbq, r) of the blocks not yet chosen
        layout = layout.scatter(1, picks, torch.ones_like(picks, dtype=torch.bool))
        return layout.to(device)

    def dense_mask(self, tq: int, tk: int, device: torch.device | str | None = None) -> Tensor:
        """The layout expanded to positions: the ``(Tq, Tk)`` mask full attention would need (without causal)."""
        b = self._block(tq, tk)
        layout = self.layout(-(-tq // b), -(-tk // b), device)
        return layout.repeat_interleave(b, 0)[:tq].repeat_interleave(b, 1)[:, :tk]

    def _block(self, tq: int, tk: int) -> int:
        """``block_size`` clamped to the longer sequence: one block either way (the same layout, ``[[True]]``),
        so a block larger than the input allocates for the input, not for the block."""
        return max(min(self.block_size, max(tq, tk)), 1)

    def _gather_plan(self, nbq: int, nbk: int, tk: int, b: int, device) -> tuple[Tensor, Tensor, Tensor]:
        """Key blocks per query block ``order (nbq, m)``, which gathered keys count ``ok (nbq, m*b)``, and their
        positions ``kpos (nbq, m*b)``; cached per size (the layout is fixed by the sizes and the seed)."""
        cache_key = (nbq, nbk, tk, b, str(device))
        if cache_key not in self._plans:
            layout = self.layout(nbq, nbk, device)  # (nbq, nbk)
            layout[: self.num_global] = False  # global query blocks attend everything: dense rows instead
            m = max(int(layout.sum(-1).max()), 1)
            order = (~layout).to(torch.uint8).argsort(dim=-1, stable=True)[:, :m]  # (nbq, m): chosen blocks first
            chosen = layout.gather(1, order)  # (nbq, m): False for the padding slots of shorter rows
            kpos = (order[:, :, None] * b + torch.arange(b, device=device)).reshape(nbq, m * b)
            ok = chosen.repeat_interleave(b, dim=1) & (kpos < tk)
            self._plans = {cache_key: (order, ok, kpos)}  # keep one size: a model sees one length at a time
        return self._plans[cache_key]

    def forward(self, query: Tensor, key: Tensor, value: Tensor, *, key_mask: Tensor | None, causal: bool,
                scale: float, dropout_p: float, return_weights: bool,
                chunk_size: int | None) -> tuple[Tensor, Tensor | None]:
        if chunk_size is not None:
            raise ValueError("Expected chunk_size=None for kind='block_sparse' (its block_size is part of the "
                             f"layout, set it on BlockSparseAttention). Received: chunk_size={chunk_size}")
        tq, tk, dev = query.shape[-2], key.shape[-2], query.device
        b = self._block(tq, tk)
        nbq, nbk = -(-tq // b), -(-tk // b)
        order, ok, kpos = self._gather_plan(nbq, nbk, tk, b, dev)  # (nbq, m), (nbq, m*b), (nbq, m*b)
        key_pos = kpos.clamp(max=tk - 1)
        qpos = (torch.arange(nbq, device=dev)[:, None] * b + torch.arange(b, device=dev))[:, :, None]  # (nbq, b, 1)
        allowed = and_all(ok[:, None, :], causal_allowed(qpos, kpos[:, None, :], causal),
                          padded_key_mask(key_mask, key_pos))
        def blocks(t: Tensor) -> Tensor:  # (..., Tk, X) -> (..., nbq, m*b, X), whole blocks at a time
            t = F.pad(t, (0, 0, 0, nbk * b - tk)).view(*t.shape[:-2], nbk, b, t.shape[-1])  # (..., nbk, b, X)
            return t[..., order, :, :].flatten(-3, -2)
        out, weights = gathered_attention(query, key, value, key_pos, allowed, scale, dropout_p, b, return_weights,
                                          gathered=(blocks(key), blocks(value)))
        rows = torch.arange(min(self.num_global * b, tq), device=dev)  # global query blocks: dense rows
        if rows.numel():
            g_out, g_w = global_rows(query, key, value, rows, row_mask(key_mask, rows, tk, causal), scale, dropout_p)
            out = put_rows(out, rows, g_out)
            weights = None if weights is None else put_rows(weights, rows, g_w.expand(*weights.shape[:-2], -1, -1))
        return out, weights
