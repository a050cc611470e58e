"""SelfAttention / CrossAttention: the course's parameter-free formula and the projected form."""

from __future__ import annotations

import math

import pytest
import torch

from attnkit.layers.self_cross import CrossAttention, SelfAttention


def test_parameter_free_self_attention_by_hand():
    # x = [[1, 0], [0, 2]]: scores x_i . x_j = [[1, 0], [0, 4]]
    x = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    y, w = SelfAttention()(x, return_attention_scores=True)
    e = math.e
    w_ref = torch.tensor([[[e / (e + 1), 1 / (e + 1)], [1 / (1 + e**4), e**4 / (1 + e**4)]]])
    torch.testing.assert_close(w, w_ref)
    torch.testing.assert_close(y, w_ref @ x)
    assert len(list(SelfAttention().parameters())) == 0


def test_parameter_free_masks_and_causal_against_float64():
    x = torch.randn(2, 5, 3)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    y, w = SelfAttention()(x, mask, use_causal_mask=True, return_attention_scores=True)
    xd = x.double()
    scores = xd @ xd.transpose(1, 2)
    allowed = mask[:, None, :] & torch.ones(5, 5, dtype=torch.bool).tril()
    ref_w = torch.softmax(scores.masked_fill(~allowed, -torch.inf), -1)
    torch.testing.assert_close(w.double(), ref_w, atol=1e-6, rtol=0)
    torch.testing.assert_close(y.double(), ref_w @ xd, atol=1e-6, rtol=0)
    torch.testing.assert_close(SelfAttention()(x, mask, use_causal_mask=True), y, atol=1e-6, rtol=0)


def test_projected_self_attention_against_float64_heads():
    torch.manual_seed(0)
    layer = SelfAttention(6, num_heads=2).double()
    x = torch.randn(2, 4, 6, dtype=torch.float64)
    y, w = layer(x, return_attention_scores=True)
    mha = layer.mha
    q = mha.query_dense(x).view(2, 4, 2, 3)
    k = mha.key_dense(x).view(2, 4, 2, 3)
    v = mha.value_dense(x).view(2, 4, 2, 3)
    heads = [torch.softmax(q[:, :, h] @ k[:, :, h].transpose(1, 2) / math.sqrt(3), -1) for h in range(2)]
    torch.testing.assert_close(w, torch.stack(heads, 1))
    torch.testing.assert_close(y, mha.output_dense(torch.cat([heads[h] @ v[:, :, h] for h in range(2)], -1)))


def test_cross_attention_both_forms():
    q, c = torch.randn(2, 3, 4), torch.randn(2, 6, 4)
    cm = torch.tensor([[True] * 6, [True] * 2 + [False] * 4])
    y, w = CrossAttention()(q, c, cm, return_attention_scores=True)
    ref_w = torch.softmax((q.double() @ c.double().transpose(1, 2)).masked_fill(~cm[:, None, :], -torch.inf), -1)
    torch.testing.assert_close(w.double(), ref_w, atol=1e-6, rtol=0)
    torch.testing.assert_close(y.double(), ref_w @ c.double(), atol=1e-6, rtol=0)
    proj = CrossAttention(4, context_dim=5, num_heads=2)
    out, w2 = proj(q, torch.randn(2, 6, 5), cm, return_attention_scores=True)
    assert out.shape == (2, 3, 4) and w2.shape == (2, 2, 3, 6)
    assert torch.all(w2[1, :, :, 2:] == 0)


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"Expected `num_heads` to be a positive integer dividing the width 6. Received: num_heads=4"):
        SelfAttention(6, num_heads=4)
    with pytest.raises(ValueError, match=r"Expected `mask` of shape \(2, 5\). Received: mask.shape=\(2, 4\)"):
        SelfAttention()(torch.randn(2, 5, 3), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"Expected query and context of equal width"):
        CrossAttention()(torch.randn(2, 3, 4), torch.randn(2, 6, 5))
    with pytest.raises(ValueError, match=r"Expected `query_dim` when `context_dim` is given"):
        CrossAttention(context_dim=5)
