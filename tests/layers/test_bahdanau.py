"""BahdanauAttention against a naive float64 loop over the formula, and its properties."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from attnkit.layers.bahdanau import BahdanauAttention


def _naive(attn: BahdanauAttention, s: torch.Tensor, h: torch.Tensor, mask: torch.Tensor | None):
    """e_ij = w_v . tanh(W_q s_i + W_k h_j) one (i, j) at a time, in float64."""
    wq = attn.score.w_q.weight.detach().double()
    wk = attn.score.w_k.weight.detach().double()
    wv = attn.score.w_v.detach().double()
    s, h = s.double(), h.double()
    b, tq, tk = s.shape[0], s.shape[1], h.shape[1]
    weights = torch.zeros(b, tq, tk, dtype=torch.float64)
    for n in range(b):
        for i in range(tq):
            e = torch.tensor([float(wv @ torch.tanh(wq @ s[n, i] + wk @ h[n, j])) for j in range(tk)], dtype=torch.float64)
            keep = mask[n] if mask is not None else torch.ones(tk, dtype=torch.bool)
            if keep.any():
                ex = torch.where(keep, torch.exp(e - e[keep].max()), torch.zeros_like(e))
                weights[n, i] = ex / ex.sum()
    return weights @ h, weights


def test_matches_naive_formula_with_padding():
    torch.manual_seed(0)
    attn = BahdanauAttention(query_size=5, key_size=4, hidden_dim=6)  # B=2, Tq=3, Tk=7: all different
    s, h = torch.randn(2, 3, 5), torch.randn(2, 7, 4)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    ctx, w = attn(s, h, mask)
    ref_ctx, ref_w = _naive(attn, s, h, mask)
    torch.testing.assert_close(w.double(), ref_w, atol=1e-6, rtol=0)
    torch.testing.assert_close(ctx.double(), ref_ctx, atol=1e-6, rtol=0)


def test_single_step_and_precomputed_keys_agree_with_full():
    torch.manual_seed(1)
    attn = BahdanauAttention(5, 4, 6)
    s, h = torch.randn(2, 3, 5), torch.randn(2, 7, 4)
    ctx, w = attn(s, h)
    keys = attn.project_keys(h)
    assert keys.shape == (2, 7, 6)
    for i in range(3):
        c_i, w_i = attn(s[:, i], h, projected_keys=keys)
        assert c_i.shape == (2, 4) and w_i.shape == (2, 7)
        torch.testing.assert_close(c_i, ctx[:, i], atol=1e-6, rtol=0)
        torch.testing.assert_close(w_i, w[:, i], atol=1e-6, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 3), tq=st.integers(1, 4), tk=st.integers(1, 6), seed=st.integers(0, 10_000),
)
def test_weights_sum_to_one_and_masked_keys_get_zero(b, tq, tk, seed):
    assume(len({b, tq, tk}) == 3)  # B, Tq, Tk pairwise different; the widths 9, 7, 8 exceed every length
    g = torch.Generator().manual_seed(seed)
    attn = BahdanauAttention(9, 7, 8)
    s, h = torch.randn(b, tq, 9, generator=g), torch.randn(b, tk, 7, generator=g)
    mask = torch.rand(b, tk, generator=g) > 0.4
    ctx, w = attn(s, h, mask)
    assert torch.all(w[~mask[:, None, :].expand_as(w)] == 0)
    sums = w.sum(-1)
    has_key = mask.any(-1)[:, None].expand_as(sums)
    torch.testing.assert_close(sums[has_key], torch.ones_like(sums[has_key]))
    assert torch.all(sums[~has_key] == 0) and torch.all(ctx[~mask.any(-1)] == 0)


def test_fully_masked_sentence_has_finite_gradients():
    attn = BahdanauAttention(3, 4, 6)  # B=2, Dq=3, Tk=5, Dk=4, A=6
    s = torch.randn(2, 3, requires_grad=True)
    h = torch.randn(2, 5, 4, requires_grad=True)
    mask = torch.tensor([[True] * 5, [False] * 5])
    ctx, _ = attn(s, h, mask)
    ctx.sum().backward()
    assert torch.isfinite(s.grad).all() and torch.isfinite(h.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in attn.parameters())


def test_bad_input_messages():
    attn = BahdanauAttention(3, 4, 6)  # B=2, Dq=3, Tk=5, Dk=4, A=6
    s, h = torch.randn(2, 3), torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match=r"Expected `projected_keys` of shape \(2, 5, 6\).*Received: projected_keys.shape=\(2, 5, 4\)"):
        attn(s, h, projected_keys=h)
    with pytest.raises(ValueError, match=r"Expected `query` with last dimension 3 .*Received: query.shape=\(2, 7\)"):
        attn(torch.randn(2, 7), h)
    with pytest.raises(ValueError, match=r"Expected `key_mask` of shape \(2, 5\). Received: key_mask.shape=\(2, 7\)"):
        attn(s, h, torch.ones(2, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"Expected `keys` of rank 3. Received: keys.shape=\(5, 4\)"):
        attn(s, h[0])
    with pytest.raises(ValueError, match=r"Expected `hidden_dim` to be a positive integer. Received: hidden_dim=0"):
        BahdanauAttention(3, 4, 0)


def test_projected_parts_give_the_layer_weights():
    # B=2, Tq=3, Tk=7, Dq=5, Dk=4, A=6: softmax of projected_score(project_query, project_keys) = the weights
    torch.manual_seed(3)
    attn = BahdanauAttention(5, 4, 6)
    s, h = torch.randn(2, 3, 5), torch.randn(2, 7, 4)
    _, weights = attn(s, h)
    scores = attn.projected_score()(attn.project_query(s), attn.project_keys(h))  # (B, Tq, Tk)
    w_q, w_k, w_v = (p.detach().double() for p in (attn.score.w_q.weight, attn.score.w_k.weight, attn.score.w_v))
    naive = torch.tanh((s.double() @ w_q.T)[:, :, None] + (h.double() @ w_k.T)[:, None]) @ w_v  # (B, Tq, Tk)
    torch.testing.assert_close(scores.double(), naive, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(scores.softmax(-1), weights)
