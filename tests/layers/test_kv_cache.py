"""The key/value cache: step-by-step decoding gives the numbers of the full computation."""

from __future__ import annotations

import pytest
import torch

from attnkit.layers.kv_cache import KVCache
from attnkit.layers.multi_head import MultiHeadAttention


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kv_heads", [None, 2, 1])
@pytest.mark.parametrize("weights", [False, True])
def test_cached_steps_match_full_causal(kv_heads, weights):
    # B=5, T=6 (self-attention: Tq = Tk), H=4, Hkv in (4, 2, 1), Dk=3, Dv=7, E=8
    layer = MultiHeadAttention(4, 3, value_dim=7, num_key_value_heads=kv_heads, query_dim=8).eval()
    x = _rand(5, 6, 8)
    full, full_w = layer(x, x, use_causal_mask=True, return_attention_scores=True)
    cache = KVCache()
    outs = []
    # a prompt of 2 tokens, then one token at a time
    for start, stop in ((0, 2), (2, 3), (3, 4), (4, 5), (5, 6)):
        xs = x[:, start:stop]
        res = layer(xs, xs, cache=cache, use_causal_mask=True, return_attention_scores=weights)
        out = res[0] if weights else res
        if weights:
            torch.testing.assert_close(res[1], full_w[:, :, start:stop, :stop], atol=1e-6, rtol=0)
        outs.append(out)
    assert cache.length == 6
    torch.testing.assert_close(torch.cat(outs, dim=1), full, atol=1e-5, rtol=0)


def test_cache_keeps_padding_masks():
    layer = MultiHeadAttention(2, 4, value_dim=6, query_dim=8).eval()  # B=3, T=5, H=2, Dk=4, Dv=6, E=8
    x = _rand(3, 5, 8, seed=1)
    vm = torch.tensor([[False, True, True, True, True], [True] * 5, [False, False, True, True, True]])  # left padding
    full = layer(x, x, value_mask=vm, use_causal_mask=True)
    cache = KVCache()
    outs = [layer(x[:, :3], x[:, :3], value_mask=vm[:, :3], cache=cache, use_causal_mask=True)]
    for t in (3, 4):
        outs.append(layer(x[:, t : t + 1], x[:, t : t + 1], cache=cache, use_causal_mask=True))
    got = torch.cat(outs, dim=1)
    torch.testing.assert_close(got, full, atol=1e-5, rtol=0)  # rows 0 and 2 see no key at first: zero weights in both
    assert cache.mask.tolist() == vm.tolist()


def test_static_cache_for_cross_attention_and_select():
    # B=3, Tq=4, Tk=7, H=2, Dk=5, Dv=6, query width 8, memory width 9
    layer = MultiHeadAttention(2, 5, value_dim=6, query_dim=8, value_dim_in=9).eval()
    memory = _rand(3, 7, 9, seed=2)
    q = _rand(3, 4, 8, seed=3)
    full = layer(q, memory)
    cache = KVCache(static=True)
    steps = [layer(q[:, t : t + 1], memory, cache=cache) for t in range(4)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-6, rtol=0)
    assert cache.length == 7
    cache.select(torch.tensor([2, 0]))
    torch.testing.assert_close(layer(q[[2, 0], :1], memory[[2, 0]], cache=cache), full[[2, 0], :1], atol=1e-6, rtol=0)


def test_cache_shape_mismatch_message():
    cache = KVCache()
    cache.update(torch.zeros(2, 3, 5, 4), torch.zeros(2, 3, 5, 6))  # B=2, Hkv=3, T=5, Dk=4, Dv=6
    with pytest.raises(ValueError, match=r"Expected new keys of shape \(B, Hkv, Tn, Dk\) = \(2, 3, Tn, 4\).*Received: key.shape=\(1, 3, 1, 4\)"):
        cache.update(torch.zeros(1, 3, 1, 4), torch.zeros(1, 3, 1, 6))
    cache.reset()
    assert cache.length == 0
