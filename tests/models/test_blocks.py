"""The one block family against a naive float64 reference written from the formulas, and the KV cache
through a block against the full computation. Sizes are pairwise different (B=2, H=3, T=5, S=7, D=12,
F=20) so that a swapped axis cannot pass."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attnkit.layers import KVCache
from attnkit.models.blocks import PostNormBlock, PreNormBlock, block_class, run_blocks

B, H, T, S, D, FF = 2, 3, 5, 7, 12, 20


def naive_mha(mha, x, m, allowed):
    """softmax(Q K^T / sqrt(Dh) masked) V W_o, per head, in float64; ``allowed`` (B, T, S) bool."""
    dh = mha.key_dim
    w, b = mha.in_proj_weight, mha.in_proj_bias
    q = x @ w[:D].T + b[:D]
    k = m @ w[D:2 * D].T + b[D:2 * D]
    v = m @ w[2 * D:].T + b[2 * D:]
    out = torch.zeros(x.shape[0], x.shape[1], D, dtype=torch.float64)
    for h in range(mha.num_heads):
        sl = slice(h * dh, (h + 1) * dh)
        scores = q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(dh)  # (B, T, S)
        p = scores.masked_fill(~allowed, float("-inf")).softmax(-1).nan_to_num(0.0)
        out[..., sl] = p @ v[..., sl]
    return out @ mha.output_dense.weight.T + mha.output_dense.bias


def naive_block(block, x, key_mask, causal, memory, memory_mask, pre):
    def ln(norm, y):
        return F.layer_norm(y, (D,), norm.weight, norm.bias, norm.eps)

    t = x.shape[1]
    allowed = key_mask[:, None, :].expand(-1, t, -1).clone()
    if causal:
        allowed &= torch.ones(t, t, dtype=torch.bool).tril()
    ff = lambda y: block.ff.fc_out(F.gelu(block.ff.fc_in(y)))  # noqa: E731
    cross_allowed = memory_mask[:, None, :].expand(-1, t, -1)
    if pre:
        h = ln(block.self_attn_norm, x)
        x = x + naive_mha(block.self_attn, h, h, allowed)
        x = x + naive_mha(block.cross_attn, ln(block.cross_attn_norm, x), memory, cross_allowed)
        return x + ff(ln(block.ff_norm, x))
    x = ln(block.self_attn_norm, x + naive_mha(block.self_attn, x, x, allowed))
    x = ln(block.cross_attn_norm, x + naive_mha(block.cross_attn, x, memory, cross_allowed))
    return ln(block.ff_norm, x + ff(x))


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("causal", [False, True])
def test_block_matches_naive_float64_formula(norm, causal):
    torch.manual_seed(0)
    block = block_class(norm)(D, H, FF, cross_attention=True).double().eval()
    x, memory = torch.randn(B, T, D, dtype=torch.float64), torch.randn(B, S, D, dtype=torch.float64)
    key_mask = torch.tensor([[True] * T, [True] * 3 + [False] * (T - 3)])
    memory_mask = torch.tensor([[True] * S, [True] * 4 + [False] * (S - 4)])
    out = block(x, key_mask=key_mask, causal=causal, memory=memory, memory_mask=memory_mask, return_weights=True)
    with torch.no_grad():
        ref = naive_block(block, x, key_mask, causal, memory, memory_mask, pre=norm == "pre")
    torch.testing.assert_close(out.hidden, ref, rtol=1e-9, atol=1e-9)
    assert out.self_weights.shape == (B, H, T, T) and out.cross_weights.shape == (B, H, T, S)
    assert torch.all(out.cross_weights[1, :, :, 4:] == 0)


@pytest.mark.parametrize("cls", [PreNormBlock, PostNormBlock])
def test_cached_steps_through_a_stack_equal_the_full_computation(cls):
    torch.manual_seed(1)
    blocks = torch.nn.ModuleList(cls(D, H, FF, cross_attention=True) for _ in range(2)).eval()
    x, memory = torch.randn(B, T, D), torch.randn(B, S, D)
    memory_mask = torch.tensor([[True] * S, [True] * 4 + [False] * (S - 4)])
    with torch.no_grad():
        full, _, _, _ = run_blocks(blocks, x, causal=True, memory=memory, memory_mask=memory_mask)
        caches = [KVCache(capacity=2) for _ in blocks]  # grows by doubling on the way
        cross = [KVCache(static=True) for _ in blocks]
        steps = []
        for t in range(T):
            y = x[:, t:t + 1]
            for i, block in enumerate(blocks):
                y = block(y, causal=True, cache=caches[i], memory=memory, memory_mask=memory_mask,
                          cross_cache=cross[i]).hidden
            steps.append(y)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)
    assert caches[0].length == T and cross[0].length == S


def test_block_errors():
    with pytest.raises(ValueError, match="Expected d_model divisible by num_heads. Received: d_model=10, num_heads=3"):
        PreNormBlock(10, 3, 16)
    with pytest.raises(ValueError, match="Expected norm in"):
        block_class("sandwich")
    with pytest.raises(ValueError, match=r"Expected `memory` \(B, S, D\)"):
        PreNormBlock(D, H, FF, cross_attention=True)(torch.randn(B, T, D))
