"""The attention engine the model blocks run, against torch.nn.MultiheadAttention with copied weights (a peer
library), its cached steps against the whole computation, and its Keras facade with the same weights.
Sizes are pairwise different (B=2, T=5, S=7, D=12, H=3) so a swapped axis fails."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnkit.layers import AttentionEngine, KVCache, MultiHeadAttention

B, T, S, D, H = 2, 5, 7, 12, 3


def _peer(engine: AttentionEngine) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(D, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.in_proj_weight.copy_(engine.in_proj_weight)  # rows: query, key, value, as torch packs them
        ref.in_proj_bias.copy_(engine.in_proj_bias)
        ref.out_proj.weight.copy_(engine.output_dense.weight)
        ref.out_proj.bias.copy_(engine.output_dense.bias)
    return ref.eval()


@pytest.mark.parametrize("causal", [False, True])
def test_self_and_cross_attention_equal_torch_multihead_attention(causal):
    torch.manual_seed(0)
    engine = AttentionEngine(D, H).double().eval()
    with torch.no_grad():
        engine.in_proj_bias.normal_()  # non-zero biases, so a bias mix-up shows
    ref = _peer(engine)
    x, memory = torch.randn(B, T, D, dtype=torch.float64), torch.randn(B, S, D, dtype=torch.float64)
    key_mask = torch.tensor([[True] * T, [True] * 3 + [False] * (T - 3)])
    out, w = engine(x, key_mask=key_mask, causal=causal, return_weights=True)
    future = torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None  # torch: True = not allowed
    want, want_w = ref(x, x, x, key_padding_mask=~key_mask, attn_mask=future, average_attn_weights=False)
    torch.testing.assert_close(out, want, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(w, want_w, atol=1e-10, rtol=1e-9)
    memory_mask = torch.tensor([[True] * S, [True] * 4 + [False] * (S - 4)])
    out, _ = engine(x, memory, key_mask=memory_mask)
    torch.testing.assert_close(out, ref(x, memory, memory, key_padding_mask=~memory_mask)[0], atol=1e-10, rtol=1e-9)


def test_cached_steps_equal_the_whole_computation_and_a_static_cache_is_reused():
    torch.manual_seed(1)
    engine = AttentionEngine(D, H).eval()
    x, memory = torch.randn(B, T, D), torch.randn(B, S, D)
    with torch.no_grad():
        full, _ = engine(x, causal=True)
        cache = KVCache(capacity=2)
        steps = [engine(x[:, t:t + 1], causal=True, cache=cache)[0] for t in range(T)]
        torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
        static = KVCache(static=True)
        first, _ = engine(x, memory, cache=static)
        again, _ = engine(x, memory * 0, cache=static)  # the memory's keys and values come from the cache
    torch.testing.assert_close(again, first)
    assert cache.length == T and static.length == S


def test_the_keras_facade_computes_what_the_engine_does():
    torch.manual_seed(2)
    engine = AttentionEngine(D, H).eval()
    facade = MultiHeadAttention(H, D // H, query_dim=D).eval()
    facade.load_state_dict(engine.state_dict())
    x = torch.randn(B, T, D)
    key_mask = torch.tensor([[True] * T, [True] * 2 + [False] * (T - 2)])
    out, w = engine(x, key_mask=key_mask, causal=True, return_weights=True)
    want, want_w = facade(x, x, key_mask=key_mask, use_causal_mask=True, return_attention_scores=True)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(w, want_w)


def test_engine_arguments_are_checked():
    with pytest.raises(ValueError, match="Expected d_model divisible by num_heads. Received: d_model=10, num_heads=3"):
        AttentionEngine(10, 3)
    with pytest.raises(ValueError, match="Expected dropout=0 with kind='linear'. Received: dropout=0.1"):
        AttentionEngine(D, H, dropout=0.1, kind="linear")
    engine = AttentionEngine(D, H, kind={"name": "sliding_window", "window": 2})
    assert engine.kind.window == 2
