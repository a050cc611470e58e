"""``MultiHeadAttention(kind=...)``: the kinds inside the one attention module, and in GPT through its config.

The exact kinds must give the numbers of the full module under the equivalent ``attention_mask`` (same
weights); the approximate kinds those of ``attnkit.functional.attention(kind=...)`` (itself tested against
float64 references) on the module's own projections. Sizes: B=2, T=11, E=12, H=3, Dk=4 (all distinct).
"""

from __future__ import annotations

import pytest
import torch

from attnkit.functional import attention, causal_mask, local_window_mask
from attnkit.functional.kinds import BlockSparseAttention, PerformerAttention
from attnkit.layers import KVCache, MultiHeadAttention
from attnkit.models import GPT, GPTConfig

B, T, E, H, DK = 2, 11, 12, 3, 4


def _pair(**kind):
    torch.manual_seed(0)
    full = MultiHeadAttention(H, DK, query_dim=E, dtype=torch.float64)
    other = MultiHeadAttention(H, DK, query_dim=E, dtype=torch.float64, **kind)
    other.load_state_dict(full.state_dict())
    return full, other


def _inputs():
    x = torch.randn(B, T, E, dtype=torch.float64)
    key_mask = torch.ones(B, T, dtype=torch.bool)
    key_mask[1, 8:] = False
    return x, key_mask


@pytest.mark.parametrize("causal", [False, True])
def test_sliding_window_module_equals_full_module_under_the_window_mask(causal):
    full, local = _pair(kind="sliding_window", window=2)
    x, key_mask = _inputs()
    pairs = local_window_mask(T, T, 2) & (causal_mask(T) if causal else True)
    want, want_w = full(x, x, key_mask=key_mask, attention_mask=pairs[None], return_attention_scores=True)
    got, got_w = local(x, x, key_mask=key_mask, use_causal_mask=causal, return_attention_scores=True)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_w, want_w)
    assert got_w.shape == (B, H, T, T)


def test_block_sparse_module_equals_full_module_under_its_layout():
    kind = BlockSparseAttention(block_size=3, num_random=1, seed=2)
    full, sparse = _pair(kind=kind)
    x, key_mask = _inputs()
    want = full(x, x, key_mask=key_mask, attention_mask=kind.dense_mask(T, T)[None])
    torch.testing.assert_close(sparse(x, x, key_mask=key_mask), want)


@pytest.mark.parametrize("kind", ["linear", PerformerAttention(num_features=16, seed=1)])
def test_feature_kinds_in_the_module_match_the_functional_kind_on_its_projections(kind):
    _, mha = _pair(kind=kind)
    x, key_mask = _inputs()
    out = mha(x, x, key_mask=key_mask, use_causal_mask=True)
    q, k, v = (p(x).view(B, T, H, DK).transpose(1, 2) for p in (mha.query_dense, mha.key_dense, mha.value_dense))
    heads = attention(q, k, v, kind=kind, mask=key_mask[:, None, None, :], causal=True)  # (B, H, T, Dk)
    want = mha.output_dense(heads.transpose(1, 2).reshape(B, T, H * DK))
    torch.testing.assert_close(out, want)


def test_performer_module_redraws_features_reproducibly_and_does_not_save_them():
    mha = MultiHeadAttention(H, DK, query_dim=E, kind="performer")
    x = torch.randn(B, T, E)
    first = mha(x, x)
    mha.redraw_features(torch.Generator().manual_seed(4))
    second = mha(x, x)
    assert not torch.allclose(first, second)
    mha.redraw_features(torch.Generator().manual_seed(4))
    torch.testing.assert_close(mha(x, x), second)
    assert not any("projection" in name for name in mha.state_dict())


def test_module_kinds_refuse_dropout_without_weights_a_filled_cache_and_redraw_without_features():
    with pytest.raises(ValueError, match=r"Expected dropout=0 with kind='linear'. Received: dropout=0.1"):
        MultiHeadAttention(H, DK, dropout=0.1, kind="linear")
    mha = MultiHeadAttention(H, DK, query_dim=E, kind="linear").eval()
    cache, x = KVCache(), torch.randn(B, T, E)
    mha(x, x, use_causal_mask=True, cache=cache)  # prefill: an empty cache is fine
    with pytest.raises(ValueError, match="Expected kind='full' with a filled KVCache. Received: kind='linear'"):
        mha(x[:, :1], x[:, :1], use_causal_mask=True, cache=cache)
    with pytest.raises(ValueError, match="Expected kind='performer' to redraw features. Received: kind='linear'"):
        mha.redraw_features()


def test_gpt_config_picks_the_kind_of_every_block_and_trains():
    config = GPTConfig(vocab_size=23, n_positions=16, n_embd=12, n_layer=2, n_head=3, attn_pdrop=0.0,
                       attention_kind="sliding_window", attention_window=3)
    model = GPT(config)
    assert all(block.self_attn.kind.window == 3 for block in model.blocks)
    ids = torch.randint(0, 23, (2, 13))
    loss = model(ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss) and model.wte.weight.grad.abs().sum() > 0
    full = GPT(GPTConfig(**{**config.__dict__, "attention_kind": "full", "attention_window": None}))
    full.load_state_dict(model.state_dict())
    model.eval(), full.eval()  # no residual dropout
    same = full(ids[:, :4]).logits  # 4 positions, window 3: the causal window sees everything
    torch.testing.assert_close(model(ids[:, :4]).logits, same)
