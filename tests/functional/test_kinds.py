"""Attention kinds against naive float64 references written from their definitions.

Exact kinds (sliding window, block sparse) must equal full softmax attention under the equivalent mask,
built here independently (``local_window_mask``, the global rows/columns, the block layout expanded by
hand); linear attention must equal its dense definition; Performer must equal its dense definition given
its features, and approach softmax attention as features grow, within its documented bound.
Sizes are pairwise different (B=2, H=3, Tq/Tk=37/41, Dk=5, Dv=4) so a swapped axis fails.
"""

from __future__ import annotations

import math

import pytest
import torch

from attnkit.functional import attention, causal_mask, local_window_mask
from attnkit.functional.kinds import BlockSparseAttention, PerformerAttention, SlidingWindowAttention
from tests.functional.reference import naive_attention, scaled_dot_scores

B, H, TQ, TK, DK, DV = 2, 3, 37, 41, 5, 4


def _qkv(tq=TQ, tk=TK, dk=DK, dv=DV, seed=0, std=1.0):
    g = torch.Generator().manual_seed(seed)
    def r(*s):
        return (std * torch.randn(*s, generator=g, dtype=torch.float64)).requires_grad_()
    return r(B, H, tq, dk), r(B, H, tk, dk), r(B, H, tk, dv)


def _key_mask(tk=TK):
    """(B, 1, 1, Tk): batch 0 keeps 29 keys, batch 1 keeps none (every row fully masked)."""
    m = torch.zeros(B, 1, 1, tk, dtype=torch.bool)
    m[0, ..., :29] = True
    return m


def _check(out, ref, inputs, atol=1e-10):
    assert not torch.isnan(out).any()
    torch.testing.assert_close(out, ref, atol=atol, rtol=1e-9)
    probe = torch.randn_like(ref)
    got = torch.autograd.grad((out * probe).sum(), inputs)
    want = torch.autograd.grad((ref * probe).sum(), inputs)
    for a, b in zip(got, want, strict=True):
        assert not torch.isnan(a).any()
        torch.testing.assert_close(a, b, atol=atol, rtol=1e-9)


# ------------------------------------------------------------------ sliding window


@pytest.mark.parametrize("tq, tk, window, causal", [(TQ, TK, 3, False), (TK, TQ, 6, True), (TQ, TQ, 0, False),
                                                    (TQ, TK, 50, True), (TQ, TK, 17, False)])
def test_sliding_window_equals_full_attention_under_local_window_mask(tq, tk, window, causal):
    q, k, v = _qkv(tq, tk)
    allowed = local_window_mask(tq, tk, window) & (causal_mask(tq, tk) if causal else True) & _key_mask(tk)
    ref, ref_w = naive_attention(q, k, v, scaled_dot_scores(q, k), allowed)
    out, w = attention(q, k, v, kind="sliding_window", window=window, causal=causal, mask=_key_mask(tk),
                       return_weights=True)
    torch.testing.assert_close(w, ref_w, atol=1e-12, rtol=1e-9)
    _check(attention(q, k, v, kind="sliding_window", window=window, causal=causal, mask=_key_mask(tk),
                     chunk_size=7), ref, (q, k, v))
    assert out[1].abs().max() == 0  # every key of batch 1 masked: zeros, not NaN


@pytest.mark.parametrize("causal", [False, True])
def test_sliding_window_global_tokens_equal_full_attention_with_global_rows_and_columns(causal):
    q, k, v = _qkv()
    glob = (0, 20, 39)  # 39 is a key but not a query
    i, j = torch.arange(TQ)[:, None], torch.arange(TK)[None, :]
    allowed = (i - j).abs() <= 2
    for g in glob:
        allowed = allowed | (i == g) | (j == g)
    if causal:
        allowed = allowed & (j <= i)
    kind = SlidingWindowAttention(2, global_tokens=glob, block_size=5)
    ref, ref_w = naive_attention(q, k, v, scaled_dot_scores(q, k), allowed & _key_mask())
    out, w = attention(q, k, v, kind=kind, causal=causal, mask=_key_mask(), return_weights=True)
    torch.testing.assert_close(w, ref_w, atol=1e-12, rtol=1e-9)
    _check(attention(q, k, v, kind=kind, causal=causal, mask=_key_mask()), ref, (q, k, v))


# ------------------------------------------------------------------ block sparse


def test_block_sparse_layout_is_local_global_and_seeded_random():
    kind = BlockSparseAttention(block_size=4, num_local=1, num_global=1, num_random=2, seed=5)
    layout = kind.layout(9, 11)
    i, j = torch.arange(9)[:, None], torch.arange(11)[None, :]
    fixed = ((i - j).abs() <= 1) | (i == 0) | (j == 0)
    assert bool(layout[fixed].all())
    extra = (layout & ~fixed).sum(-1)
    assert extra[0] == 0 and bool((extra[1:] == 2).all())  # two random blocks per non-global row
    assert torch.equal(layout, BlockSparseAttention(block_size=4, num_random=2, seed=5).layout(9, 11))
    assert not torch.equal(layout, BlockSparseAttention(block_size=4, num_random=2, seed=6).layout(9, 11))


@pytest.mark.parametrize("tq, tk, causal", [(TQ, TK, False), (TK, TQ, True), (TQ, TQ, True)])
def test_block_sparse_equals_full_attention_under_its_layout(tq, tk, causal):
    q, k, v = _qkv(tq, tk)
    kind = BlockSparseAttention(block_size=4, num_local=1, num_global=1, num_random=2, seed=1)
    layout = kind.layout(math.ceil(tq / 4), math.ceil(tk / 4))
    expanded = torch.zeros(tq, tk, dtype=torch.bool)  # each block pair written out by hand
    for bi, bj in layout.nonzero().tolist():
        expanded[bi * 4:(bi + 1) * 4, bj * 4:(bj + 1) * 4] = True
    allowed = expanded & (causal_mask(tq, tk) if causal else True) & _key_mask(tk)
    ref, ref_w = naive_attention(q, k, v, scaled_dot_scores(q, k), allowed)
    out, w = attention(q, k, v, kind=kind, causal=causal, mask=_key_mask(tk), return_weights=True)
    torch.testing.assert_close(w, ref_w, atol=1e-12, rtol=1e-9)
    _check(attention(q, k, v, kind=kind, causal=causal, mask=_key_mask(tk)), ref, (q, k, v))
    assert out[1].abs().max() == 0


# ------------------------------------------------------------------ linear attention


def _naive_features(phi_q, phi_k, v, allowed):
    """A = phi(Q) phi(K)^T on allowed pairs, rows normalised (zero rows stay zero), A V."""
    a = (phi_q @ phi_k.transpose(-2, -1)) * allowed
    den = a.sum(-1, keepdim=True)
    w = torch.where(den > 0, a / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(a))
    return w @ v, w


def _elu1(x):
    return torch.where(x > 0, x + 1, torch.exp(x))


@pytest.mark.parametrize("tq, tk, causal, chunk", [(TQ, TK, False, None), (TQ, TQ, True, None),
                                                   (TQ, TQ, True, 7), (TK, TQ, True, 8), (TQ, TK, True, 5)])
def test_linear_attention_equals_its_dense_definition(tq, tk, causal, chunk):
    q, k, v = _qkv(tq, tk)
    allowed = _key_mask(tk) & (causal_mask(tq, tk) if causal else True)
    ref, ref_w = _naive_features(_elu1(q), _elu1(k), v, allowed)
    out, w = attention(q, k, v, kind="linear", causal=causal, mask=_key_mask(tk), return_weights=True)
    torch.testing.assert_close(w, ref_w, atol=1e-12, rtol=1e-9)
    _check(attention(q, k, v, kind="linear", causal=causal, mask=_key_mask(tk), chunk_size=chunk), ref, (q, k, v))
    assert out[1].abs().max() == 0


# ------------------------------------------------------------------ performer


@pytest.mark.parametrize("causal", [False, True])
def test_performer_equals_its_dense_definition_given_its_features(causal):
    q, k, v = _qkv(TQ, TQ, std=0.5)
    kind = PerformerAttention(num_features=24, seed=3, eps=0.0)
    out = attention(q, k, v, kind=kind, causal=causal, mask=_key_mask(TQ), chunk_size=6)
    w_rand = kind.projection  # (m, Dk), drawn at the first call
    root = DK ** -0.25  # scale^(1/2) with scale = 1/sqrt(Dk)
    def phi(x):
        x = x * root
        return torch.exp(x @ w_rand.T - (x * x).sum(-1, keepdim=True) / 2) / math.sqrt(24)
    allowed = _key_mask(TQ) & (causal_mask(TQ) if causal else True)
    ref, _ = _naive_features(phi(q), phi(k), v, allowed)
    _check(out, ref, (q, k, v), atol=1e-9)


def test_performer_error_against_softmax_falls_with_features_and_stays_within_the_documented_bound():
    g = torch.Generator().manual_seed(1)
    q, k = (0.5 * torch.randn(2, 3, 64, 16, generator=g, dtype=torch.float64) for _ in range(2))
    v = torch.randn(2, 3, 64, 5, generator=g, dtype=torch.float64)
    exact, _ = naive_attention(q, k, v, scaled_dot_scores(q, k))
    errors = [float((attention(q, k, v, kind=PerformerAttention(num_features=m, seed=0)) - exact).abs().mean())
              for m in (16, 64, 256, 1024)]
    assert errors == sorted(errors, reverse=True), errors
    assert errors[2] < 0.03 and errors[3] < 0.012, errors  # the bounds in attnkit.functional.kinds.performer


def test_performer_features_are_seeded_orthogonal_and_redrawable():
    kind = PerformerAttention(num_features=12, dim=5, seed=7)
    w = kind.projection
    block = w[:5] / w[:5].norm(dim=1, keepdim=True)
    torch.testing.assert_close(block @ block.T, torch.eye(5, dtype=torch.float64), atol=1e-12, rtol=0)
    assert torch.equal(w, PerformerAttention(num_features=12, dim=5, seed=7).projection)
    kind.redraw()
    assert kind.projection.shape == (12, 5) and not torch.equal(w, kind.projection)
    kind.redraw(torch.Generator().manual_seed(0))
    again = PerformerAttention(num_features=12, dim=5)
    again.redraw(torch.Generator().manual_seed(0))
    assert torch.equal(kind.projection, again.projection)


# ------------------------------------------------------------------ shared behaviour and errors


@pytest.mark.parametrize("kind", ["linear", "performer", "block_sparse", SlidingWindowAttention(1, (0,))])
def test_kinds_accept_float32_and_broadcast_leading_dims(kind):
    q, k, v = torch.randn(2, 1, 9, 8), torch.randn(1, 3, 9, 8), torch.randn(1, 3, 9, 6)
    out = attention(q, k, v, kind=kind, causal=True)
    assert out.shape == (2, 3, 9, 6) and out.dtype == torch.float32 and not torch.isnan(out).any()


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "linear", "mask": torch.ones(TQ, TK, dtype=torch.bool)}, "Expected a key padding mask for kind='linear'"),
    ({"kind": "performer", "bias": torch.zeros(TQ, TK)}, "Expected bias=None with kind='performer'"),
    ({"kind": "block_sparse", "score": lambda q, k: q @ k.transpose(-2, -1)}, "Expected score 'scaled_dot' or 'dot'"),
    ({"kind": "linear", "dropout_p": 0.1}, "Expected dropout_p=0 with kind='linear'"),
    ({"kind": "sliding_window"}, "Expected window= (keys on each side)"),
    ({"kind": "linear", "window": 3}, "Expected window=None unless kind='sliding_window'"),
    ({"kind": "sparse"}, "Expected kind one of full, sliding_window"),
    ({"kind": "block_sparse", "chunk_size": 8}, "Expected chunk_size=None for kind='block_sparse'"),
])
def test_kinds_reject_what_they_cannot_do(kwargs, message):
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="Received") as info:
        attention(q, k, v, **kwargs)
    assert message in str(info.value)
