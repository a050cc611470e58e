"""LuongAttention: scores against the paper's formulas in float64, and window properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnkit.layers.luong import LuongAttention


def _softmax_over(e: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    if not keep.any():
        return torch.zeros_like(e)
    ex = torch.where(keep, torch.exp(e - e[keep].max()), torch.zeros_like(e))
    return ex / ex.sum()


def _naive_score(attn: LuongAttention, ht: torch.Tensor, hs: torch.Tensor) -> float:
    ht, hs = ht.double(), hs.double()
    if attn.score_name == "dot":
        return float(ht @ hs)  # h_t^T h_s
    if attn.score_name == "general":
        return float(ht @ attn.score.w_a.double() @ hs)  # h_t^T W_a h_s
    w_a, v_a = attn.score.w_a.double(), attn.score.v_a.double()
    return float(v_a @ torch.tanh(w_a @ torch.cat([ht, hs])))  # v_a^T tanh(W_a [h_t; h_s])


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_global_matches_formula(score):
    torch.manual_seed(0)
    key_dim = 4 if score == "dot" else 3
    attn = LuongAttention(4, score=score, key_dim=key_dim)
    h_t, h_s = torch.randn(2, 4), torch.randn(2, 6, key_dim)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    ctx, w = attn(h_t, h_s, mask)
    for n in range(2):
        e = torch.tensor([_naive_score(attn, h_t[n], h_s[n, s]) for s in range(6)], dtype=torch.float64)
        ref_w = _softmax_over(e, mask[n])
        torch.testing.assert_close(w[n].double(), ref_w, atol=1e-6, rtol=0)
        torch.testing.assert_close(ctx[n].double(), ref_w @ h_s[n].double(), atol=1e-6, rtol=0)


def test_local_m_is_softmax_over_the_window_around_t():
    torch.manual_seed(1)
    attn = LuongAttention(4, mode="local-m", window=2)
    h_t, h_s = torch.randn(3, 4), torch.randn(3, 9, 4)
    position = torch.tensor([0, 4, 8])
    ctx, w = attn(h_t, h_s, position=position)
    for n, t in enumerate(position.tolist()):
        keep = torch.tensor([abs(s - t) <= 2 for s in range(9)])
        e = h_s[n].double() @ h_t[n].double()
        ref_w = _softmax_over(e, keep)
        torch.testing.assert_close(w[n].double(), ref_w, atol=1e-6, rtol=0)
    # several steps at once: query i is at step position + i
    hq = torch.randn(3, 5, 4)
    _, w_all = attn(hq, h_s, position=1)
    for i in range(5):
        _, w_i = attn(hq[:, i], h_s, position=1 + i)
        torch.testing.assert_close(w_all[:, i], w_i)


def test_local_p_matches_paper():
    torch.manual_seed(2)
    window = 2
    attn = LuongAttention(4, score="general", mode="local-p", window=window)
    h_t, h_s = torch.randn(2, 4), torch.randn(2, 8, 4)
    mask = torch.tensor([[True] * 8, [True] * 5 + [False] * 3])
    ctx, w = attn(h_t, h_s, mask)
    sigma = window / 2
    for n in range(2):
        big_s = float(mask[n].sum())
        wp, vp = attn.w_p.weight.double(), attn.v_p.weight.double()[0]
        p_t = big_s * torch.sigmoid(vp @ torch.tanh(wp @ h_t[n].double()))
        keep = torch.tensor([abs(s - float(p_t)) <= window for s in range(8)]) & mask[n]
        e = torch.tensor([_naive_score(attn, h_t[n], h_s[n, s]) for s in range(8)], dtype=torch.float64)
        gauss = torch.tensor([math.exp(-((s - float(p_t)) ** 2) / (2 * sigma**2)) for s in range(8)], dtype=torch.float64)
        ref_w = _softmax_over(e, keep) * gauss
        torch.testing.assert_close(w[n].double(), ref_w, atol=1e-6, rtol=0)
        torch.testing.assert_close(ctx[n].double(), ref_w @ h_s[n].double(), atol=1e-6, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    mode=st.sampled_from(["global", "local-m", "local-p"]), score=st.sampled_from(["dot", "general", "concat"]),
    b=st.integers(1, 3), tk=st.integers(1, 12), window=st.integers(0, 3), seed=st.integers(0, 10_000),
)
def test_properties(mode, score, b, tk, window, seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    attn = LuongAttention(3, score=score, mode=mode, window=window)
    h_t, h_s = torch.randn(b, 2, 3, generator=g), torch.randn(b, tk, 3, generator=g)
    mask = torch.rand(b, tk, generator=g) > 0.3
    ctx, w = attn(h_t, h_s, mask, position=torch.randint(0, tk, (b,), generator=g))
    assert torch.isfinite(w).all() and torch.isfinite(ctx).all()
    assert torch.all(w[~mask[:, None, :].expand_as(w)] == 0)  # masked keys get 0
    sums = w.sum(-1)
    if mode == "local-p":
        assert torch.all(sums <= 1 + 1e-6)
        # weights vanish outside [p_t - D, p_t + D]
        length = mask.sum(-1).float()
        p_t = attn.predict_position(h_t, length)  # (B, 2)
        s = torch.arange(tk).float()
        outside = (s[None, None, :] - p_t[..., None]).abs() > window
        assert torch.all(w[outside] == 0)
    else:
        nonzero = sums > 0
        torch.testing.assert_close(sums[nonzero], torch.ones_like(sums[nonzero]))
        if mode == "global":
            assert torch.equal(nonzero, mask.any(-1)[:, None].expand_as(sums))


def test_local_p_gradient_reaches_position_predictor():
    attn = LuongAttention(4, mode="local-p", window=3)
    ctx, _ = attn(torch.randn(2, 4), torch.randn(2, 10, 4))
    ctx.square().sum().backward()
    assert attn.w_p.weight.grad.abs().sum() > 0 and attn.v_p.weight.grad.abs().sum() > 0


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"Expected key_dim == dim for score='dot'.*Received: dim=4, key_dim=3"):
        LuongAttention(4, key_dim=3)
    with pytest.raises(ValueError, match=r"Expected `mode` in .*Received: mode='local'"):
        LuongAttention(4, mode="local")
    with pytest.raises(ValueError, match=r"Expected `score` in .*Received: score='cosine'"):
        LuongAttention(4, score="cosine")
    attn = LuongAttention(4, mode="local-m")
    with pytest.raises(ValueError, match=r"Expected `position` .*Received: position=None"):
        attn(torch.randn(2, 4), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"Expected `position` of shape \(2,\) or \(2, 1\). Received: position.shape=\(3,\)"):
        attn(torch.randn(2, 4), torch.randn(2, 5, 4), position=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected `keys` with last dimension 4 .*Received: keys.shape=\(2, 5, 3\)"):
        attn(torch.randn(2, 4), torch.randn(2, 5, 3), position=0)
