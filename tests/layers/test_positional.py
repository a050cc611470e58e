"""Positional encodings against their papers' formulas and defining properties."""

from __future__ import annotations

import math

import pytest
import torch

from attnkit.layers.positional import (
    ALiBi,
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    alibi_slopes,
    sinusoidal_encoding,
)


def test_sinusoidal_matches_vaswani_formula():
    d = 6
    pe = sinusoidal_encoding(5, d, offset=3)
    for pos in range(5):
        for i in range(d // 2):
            angle = (pos + 3) / 10000 ** (2 * i / d)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert sinusoidal_encoding(4, 5).shape == (4, 5)  # odd width: the last sin column only
    x = torch.randn(2, 5, d)
    torch.testing.assert_close(SinusoidalPositionalEncoding(d)(x, offset=3), x + pe)


def test_learned_adds_rows_and_checks_length():
    pe = LearnedPositionalEmbedding(8, 4)
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(pe(x, offset=2), x + pe.embedding.weight[2:5])
    with pytest.raises(ValueError, match=r"Expected positions below max_len=8. Received: offset=6 .*last position 8"):
        pe(x, offset=6)


@pytest.mark.parametrize("interleaved", [False, True])
def test_rotary_matches_complex_rotation(interleaved):
    d = 8
    rope = RotaryEmbedding(d, interleaved=interleaved)
    x = torch.randn(2, 5, d, dtype=torch.float64)
    got = rope.rotate(x, offset=1)
    theta = torch.tensor([10000 ** (-2 * i / d) for i in range(d // 2)], dtype=torch.float64)
    for m in range(5):
        pairs = (x[:, m, 0::2], x[:, m, 1::2]) if interleaved else (x[:, m, : d // 2], x[:, m, d // 2 :])
        z = torch.complex(*pairs) * torch.exp(1j * (m + 1) * theta)  # rotate pair i by (m+1) theta_i
        out = (got[:, m, 0::2], got[:, m, 1::2]) if interleaved else (got[:, m, : d // 2], got[:, m, d // 2 :])
        torch.testing.assert_close(out[0], z.real)
        torch.testing.assert_close(out[1], z.imag)


def test_rotary_scores_depend_on_relative_position_only():
    rope = RotaryEmbedding(6)
    q, k = torch.randn(1, 1, 6, dtype=torch.float64), torch.randn(1, 1, 6, dtype=torch.float64)
    base = (rope.rotate(q, 7) * rope.rotate(k, 3)).sum()
    shifted = (rope.rotate(q, 17) * rope.rotate(k, 13)).sum()
    torch.testing.assert_close(base, shifted)
    torch.testing.assert_close(rope.rotate(q, 5).norm(), q.norm())
    with pytest.raises(ValueError, match=r"Expected `head_dim` to be a positive even integer. Received: head_dim=5"):
        RotaryEmbedding(5)


def test_alibi_slopes_follow_the_paper():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(k + 1) for k in range(8)]))
    # 6 heads: the 4-head slopes, then every other slope of 8 heads
    torch.testing.assert_close(alibi_slopes(6), torch.tensor([2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]))


def test_alibi_bias_with_cache_offset():
    alibi = ALiBi(2)
    full = alibi(4, 4)
    m = alibi_slopes(2)
    for i in range(4):
        for j in range(4):
            torch.testing.assert_close(full[:, i, j], -m * abs(i - j))
    torch.testing.assert_close(alibi(1, 4), full[:, 3:])  # the last query of a cache step
