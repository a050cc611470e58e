"""Positional information for attention: sinusoidal, learned, rotary (RoPE) and ALiBi.

Shape legend: ``B`` batch, ``T`` length, ``D`` model width, ``H`` heads, ``Dh`` head size,
``Tq``/``Tk`` query/key length.

Attention itself is blind to order (permuting the keys permutes nothing in the output), so a model
adds position either to the inputs (sinusoidal, learned), to the queries and keys (rotary), or to
the scores (ALiBi).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnkit.layers._checks import check_tensor


def sinusoidal_encoding(
    length: int, dim: int, *, base: float = 10000.0, offset: int = 0,
    device: torch.device | str | None = None, dtype: torch.dtype | None = None,
) -> Tensor:  # fmt: skip
    """The fixed encoding of Vaswani et al. 2017, ``(length, dim)``.

    ``PE[pos, 2i] = sin(pos / base^(2i/dim))``, ``PE[pos, 2i+1] = cos(pos / base^(2i/dim))``,
    for positions ``offset .. offset + length - 1``.

    Example:
        >>> sinusoidal_encoding(2, 4)
        tensor([[0.0000, 1.0000, 0.0000, 1.0000],
                [0.8415, 0.5403, 0.0100, 0.9999]])
    """
    pos = torch.arange(offset, offset + length, device=device, dtype=torch.float64)[:, None]  # (T, 1)
    two_i = torch.arange(0, dim, 2, device=device, dtype=torch.float64)  # (ceil(D/2),)
    angle = pos / base ** (two_i / dim)  # (T, ceil(D/2))
    pe = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(-2)[:, :dim]  # interleave sin, cos: (T, D)
    return pe.to(dtype or torch.get_default_dtype())


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding to ``x``: ``(B, T, D) -> (B, T, D)`` (no parameters).

    Args:
        dim: ``D``; base: the wavelength base (10000 in the paper).

    Call arguments:
        x: ``(B, T, D)``; offset: position of ``x[:, 0]`` (for step-by-step decoding).

    Example:
        >>> import torch
        >>> SinusoidalPositionalEncoding(4)(torch.zeros(1, 2, 4))[0, 1]
        tensor([0.8415, 0.5403, 0.0100, 0.9999])
    """

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.dim, self.base = dim, base

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        check_tensor(x, "x", ndim=3)
        if x.shape[-1] != self.dim:
            raise ValueError(f"Expected `x` with last dimension {self.dim}. Received: x.shape={tuple(x.shape)}")
        return x + sinusoidal_encoding(x.shape[1], self.dim, base=self.base, offset=offset, device=x.device, dtype=x.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """Adds a learned vector per position (BERT, GPT-2): ``x + E[offset : offset + T]``.

    Args:
        max_len: the number of positions it knows; dim: ``D``.

    Example:
        >>> import torch
        >>> pe = LearnedPositionalEmbedding(16, 4)
        >>> bool(torch.equal(pe(torch.zeros(1, 3, 4))[0], pe.embedding.weight[:3]))
        True
    """

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        self.max_len, self.dim = max_len, dim
        self.embedding = nn.Embedding(max_len, dim)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        check_tensor(x, "x", ndim=3)
        t = x.shape[1]
        if offset + t > self.max_len:
            raise ValueError(
                f"Expected positions below max_len={self.max_len}. Received: offset={offset} with x.shape={tuple(x.shape)} "
                f"(last position {offset + t - 1})"
            )
        if x.shape[-1] != self.dim:
            raise ValueError(f"Expected `x` with last dimension {self.dim}. Received: x.shape={tuple(x.shape)}")
        return x + self.embedding.weight[offset : offset + t]


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE, Su et al. 2021) applied to queries and keys.

    Each pair of features ``(x_a, x_b)`` at position ``m`` is rotated by the angle ``m theta_i``,
    ``theta_i = base^(-2i/Dh)``, so ``<R_m q, R_n k>`` depends on ``m - n`` only. Pairs are
    ``(x_i, x_{i + Dh/2})`` (the "half" layout of GPT-NeoX and LLaMA checkpoints) or, with
    ``interleaved=True``, ``(x_{2i}, x_{2i+1})`` (the paper's layout).

    Call arguments:
        query: ``(..., Tq, Dh)``; key: ``(..., Tk, Dh)``; offset: position of the first query/key
            (the cache length when decoding step by step). Keys start at ``offset`` too.

    Returns:
        ``(query, key)`` rotated, same shapes.

    Example:
        >>> import torch
        >>> rope = RotaryEmbedding(8)
        >>> q, k = rope(torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 8))
        >>> tuple(q.shape)
        (2, 4, 5, 8)
    """

    def __init__(self, head_dim: int, base: float = 10000.0, interleaved: bool = False) -> None:
        super().__init__()
        if not isinstance(head_dim, int) or head_dim <= 0 or head_dim % 2:
            raise ValueError(f"Expected `head_dim` to be a positive even integer. Received: head_dim={head_dim!r}")
        self.head_dim, self.base, self.interleaved = head_dim, base, interleaved

    def angles(self, positions: Tensor) -> Tensor:
        """``m theta_i`` for positions ``(T,)``: ``(T, Dh/2)`` in float32 or wider."""
        inv_freq = self.base ** (-torch.arange(0, self.head_dim, 2, device=positions.device, dtype=torch.float64) / self.head_dim)
        return positions.to(torch.float64)[:, None] * inv_freq[None, :]

    def rotate(self, x: Tensor, offset: int = 0) -> Tensor:
        """Rotate ``x`` ``(..., T, Dh)`` whose first position is ``offset``."""
        check_tensor(x, "x")
        if x.shape[-1] != self.head_dim:
            raise ValueError(f"Expected last dimension head_dim={self.head_dim}. Received: shape={tuple(x.shape)}")
        t = x.shape[-2]
        ang = self.angles(torch.arange(offset, offset + t, device=x.device))  # (T, Dh/2)
        cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
        if self.interleaved:
            a, b = x[..., 0::2], x[..., 1::2]  # (..., T, Dh/2)
            return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)  # (..., T, Dh)
        half = self.head_dim // 2
        a, b = x[..., :half], x[..., half:]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)  # (..., T, Dh)

    def forward(self, query: Tensor, key: Tensor, offset: int = 0) -> tuple[Tensor, Tensor]:
        return self.rotate(query, offset), self.rotate(key, offset)


def alibi_slopes(num_heads: int) -> Tensor:
    """Head slopes of ALiBi (Press et al. 2022): ``2^(-8h/n)`` for ``h = 1..n`` when ``n`` is a power of two.

    Otherwise the slopes of the nearest lower power of two ``p`` followed by every other slope of ``2p``
    (the paper's recipe). ``(H,)`` float32.

    Example:
        >>> alibi_slopes(4)
        tensor([0.2500, 0.0625, 0.0156, 0.0039])
    """
    if not isinstance(num_heads, int) or num_heads <= 0:
        raise ValueError(f"Expected `num_heads` to be a positive integer. Received: num_heads={num_heads!r}")

    def power_of_two(n: int) -> list[float]:
        return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]

    p = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = power_of_two(p)
    if p != num_heads:
        slopes += power_of_two(2 * p)[0::2][: num_heads - p]
    return torch.tensor(slopes)


class ALiBi(nn.Module):
    """Attention with linear biases: add ``-m_h * |i - j|`` to head ``h``'s scores (no parameters).

    Query ``i`` sits at position ``offset + i`` (by default ``offset = Tk - Tq``, right for a key/value
    cache); with a causal mask this is exactly the paper's ``-m_h (i - j)`` for ``j <= i``.

    Call arguments:
        tq, tk: query and key lengths; offset: position of the first query.

    Returns:
        bias ``(H, Tq, Tk)``, to add to scores ``(B, H, Tq, Tk)`` before the softmax: pass it as
        ``attnkit.functional.attention(q, k, v, bias=alibi(tq, tk), causal=True)``, which keeps the fused path.

    Example:
        >>> ALiBi(2)(2, 2)
        tensor([[[ 0.0000, -0.0625],
                 [-0.0625,  0.0000]],
        <BLANKLINE>
                [[ 0.0000, -0.0039],
                 [-0.0039,  0.0000]]])
    """

    def __init__(self, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.register_buffer("slopes", alibi_slopes(num_heads), persistent=False)

    def forward(self, tq: int, tk: int, offset: int | None = None) -> Tensor:
        offset = tk - tq if offset is None else offset
        i = torch.arange(offset, offset + tq, device=self.slopes.device)[:, None]
        j = torch.arange(tk, device=self.slopes.device)[None, :]
        distance = (i - j).abs().to(self.slopes.dtype)  # (Tq, Tk)
        return 0.0 - self.slopes[:, None, None] * distance  # (H, Tq, Tk); "0.0 -" avoids printing -0
