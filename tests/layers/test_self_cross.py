"""Self- and cross-attention: the course's parameter-free formula (DotSelfAttention, DotCrossAttention) and the
projected form (SelfAttention, CrossAttention), against float64."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from attnkit.layers import CrossAttention, DotCrossAttention, DotSelfAttention, SelfAttention


def test_parameter_free_self_attention_by_hand():
    # B=1, T=2, D=3; x = [[1, 0, 1], [0, 2, 0]]: scores x_i . x_j = [[2, 0], [0, 4]]
    x = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]]])
    y, w = DotSelfAttention()(x, return_weights=True)
    e = math.e
    w_ref = torch.tensor([[[e**2 / (e**2 + 1), 1 / (e**2 + 1)], [1 / (1 + e**4), e**4 / (1 + e**4)]]])
    torch.testing.assert_close(w, w_ref)
    torch.testing.assert_close(y, w_ref @ x)
    assert len(list(DotSelfAttention().parameters())) == 0


def test_parameter_free_masks_and_causal_against_float64():
    x = torch.randn(2, 5, 3)  # B=2, T=5, D=3
    key_mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    y, w = DotSelfAttention()(x, key_mask, causal=True, return_weights=True)
    xd = x.double()
    scores = xd @ xd.transpose(1, 2)
    allowed = key_mask[:, None, :] & torch.ones(5, 5, dtype=torch.bool).tril()
    ref_w = torch.softmax(scores.masked_fill(~allowed, -torch.inf), -1)
    torch.testing.assert_close(w.double(), ref_w, atol=1e-6, rtol=0)
    torch.testing.assert_close(y.double(), ref_w @ xd, atol=1e-6, rtol=0)
    torch.testing.assert_close(DotSelfAttention()(x, key_mask, causal=True), y, atol=1e-6, rtol=0)


def test_projected_self_attention_against_float64_heads():
    torch.manual_seed(0)
    b, t, d, h = 2, 4, 15, 3  # pairwise different, and head width 5 too
    layer = SelfAttention(d_model=d, num_heads=h).double()
    x = torch.randn(b, t, d, dtype=torch.float64)
    key_mask = torch.tensor([[True] * 4, [True] * 3 + [False]])
    y, w = layer(x, key_mask, causal=True, return_weights=True)
    mha = layer.mha
    q, k, v = (dense(x).view(b, t, h, d // h) for dense in (mha.query_dense, mha.key_dense, mha.value_dense))
    allowed = key_mask[:, None, :] & torch.ones(t, t, dtype=torch.bool).tril()  # (B, T, T)
    heads = [
        torch.softmax((q[:, :, i] @ k[:, :, i].transpose(1, 2) / math.sqrt(d // h)).masked_fill(~allowed, -torch.inf), -1)
        for i in range(h)
    ]
    torch.testing.assert_close(w, torch.stack(heads, 1))
    torch.testing.assert_close(y, mha.output_dense(torch.cat([heads[i] @ v[:, :, i] for i in range(h)], -1)))


def test_cross_attention_both_forms():
    # B=5, Tq=3, Tc=6, D=8 (the dot form needs equal query and context widths); projected: Dc=7, H=2, head width 4
    q, c = torch.randn(5, 3, 8), torch.randn(5, 6, 8)
    key_mask = torch.tensor([[True] * 6, [True] * 2 + [False] * 4, [True] * 6, [True] * 5 + [False], [True] * 6])
    y, w = DotCrossAttention()(q, c, key_mask, return_weights=True)
    ref_w = torch.softmax((q.double() @ c.double().transpose(1, 2)).masked_fill(~key_mask[:, None, :], -torch.inf), -1)
    torch.testing.assert_close(w.double(), ref_w, atol=1e-6, rtol=0)
    torch.testing.assert_close(y.double(), ref_w @ c.double(), atol=1e-6, rtol=0)
    proj = CrossAttention(query_size=8, context_size=7, num_heads=2)
    out, w2 = proj(q, torch.randn(5, 6, 7), key_mask, return_weights=True)
    assert out.shape == (5, 3, 8) and w2.shape == (5, 2, 3, 6)
    assert torch.all(w2[1, :, :, 2:] == 0)


def test_new_forms_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SelfAttention(6, num_heads=2)(torch.randn(4, 5, 6), causal=True)
        CrossAttention(6, 4)(torch.randn(2, 3, 6), torch.randn(2, 5, 4))


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"Expected `num_heads` to be a positive integer dividing the width 6. Received: num_heads=4"):
        SelfAttention(6, num_heads=4)
    with pytest.raises(ValueError, match=r"Expected `key_mask` of shape \(2, 5\). Received: key_mask.shape=\(2, 4\)"):
        DotSelfAttention()(torch.randn(2, 5, 3), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"Expected `key_mask` of shape \(3, 5\). Received: key_mask.shape=\(3, 4\)"):
        SelfAttention(6, 2)(torch.randn(3, 5, 6), torch.ones(3, 4, dtype=torch.bool))  # B=3, T=5, D=6, H=2
    with pytest.raises(ValueError, match=r"Expected query and context of equal width"):
        DotCrossAttention()(torch.randn(2, 3, 4), torch.randn(2, 6, 5))
    with pytest.raises(ValueError, match=r"Expected query and context with the same batch size"):
        CrossAttention(4)(torch.randn(2, 3, 4), torch.randn(3, 6, 4))
    with pytest.raises(TypeError, match="query_size"):
        CrossAttention(context_size=5)
    with pytest.raises(TypeError, match="d_model"):
        SelfAttention()
