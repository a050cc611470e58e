"""The one dispatcher: every named path of ``PATHS``, called alone with the one signature, against naive
float64 definitions (forward and gradients) under the masks it takes; ``choose`` picks as documented.
Sizes are pairwise different (B=2, H=3, Tq=7, Tk=11, Dk=5, Dv=4) so a swapped axis fails."""

from __future__ import annotations

import math

import pytest
import torch

from attnkit.functional import PATHS, causal_mask, choose, local_window_mask
from attnkit.functional.kinds import (
    BlockSparseAttention,
    LinearAttention,
    PerformerAttention,
    SlidingWindowAttention,
)
from tests.functional.reference import naive_attention, scaled_dot_scores
from tests.functional.test_kinds import _elu1, _naive_features

B, H, TQ, TK, DK, DV = 2, 3, 7, 11, 5, 4
SCALE = DK ** -0.5


def _qkv(tq=TQ, tk=TK, dk=DK, dv=DV, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, *s, generator=g, dtype=torch.float64).requires_grad_()
            for s in ((tq, dk), (tk, dk), (tk, dv))]


def _pair_mask(tq=TQ, tk=TK):
    """(B, 1, Tq, Tk): random pairs; query 2 of batch 1 sees no key (zeros, not NaN)."""
    m = torch.rand(B, 1, tq, tk, generator=torch.Generator().manual_seed(1)) > 0.4
    m[1, :, 2] = False
    return m


def _key_mask(tk=TK):
    m = torch.ones(B, 1, 1, tk, dtype=torch.bool)
    m[0, ..., 8:] = False
    return m


def _call(name, q, k, v, **kw):
    args = dict(score="scaled_dot", scale=SCALE, mask=None, causal=False, dropout_p=0.0, return_weights=False,
                chunk_size=None, bias=None, kind=None)
    return PATHS[name](q, k, v, **{**args, **kw})


def _agree(out, ref, inputs):
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-9)
    probe = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad((out * probe).sum(), inputs),
                    torch.autograd.grad((ref * probe).sum(), inputs), strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


def test_the_table_names_every_path_and_each_takes_the_one_signature():
    assert set(PATHS) == {"reference", "fused", "chunked", "weights_inplace", "causal_dropout",
                          "sliding_window", "block_sparse", "linear", "performer"}
    q, k, v = (t.detach() for t in _qkv(TQ, TQ, DK, DK))
    for name in PATHS:  # each alone, with the arguments of one causal call
        kind = SlidingWindowAttention(2) if name == "sliding_window" else None
        out, weights = _call(name, q, k, v, causal=True, kind=kind)
        assert out.shape == (B, H, TQ, DK) and not torch.isnan(out).any(), name
        assert (weights is None) == (name != "weights_inplace"), name  # that kernel always returns them


@pytest.mark.parametrize("name, extra", [("reference", {}), ("fused", {}), ("chunked", {"chunk_size": 4}),
                                         ("weights_inplace", {})])
@pytest.mark.parametrize("causal", [False, True])
def test_each_softmax_path_equals_float64_softmax_attention_under_a_pair_mask(name, extra, causal):
    q, k, v = _qkv()
    mask = _pair_mask()
    allowed = mask & (causal_mask(TQ, TK) if causal else True)
    ref, ref_w = naive_attention(q, k, v, scaled_dot_scores(q, k), allowed)
    weights = name in ("reference", "weights_inplace")
    out, w = _call(name, q, k, v, mask=mask, causal=causal, return_weights=weights, **extra)
    _agree(out, ref, (q, k, v))  # under autograd the weights kernel runs its twin
    assert not torch.isnan(out).any() and out[1, :, 2].abs().max() == 0
    if weights:
        torch.testing.assert_close(w, ref_w, atol=1e-12, rtol=1e-9)
        with torch.no_grad():  # the in-place kernel itself
            out_ng, w_ng = _call(name, q, k, v, mask=mask, causal=causal, return_weights=True)
        torch.testing.assert_close(out_ng, ref, atol=1e-10, rtol=1e-9)
        torch.testing.assert_close(w_ng, ref_w, atol=1e-12, rtol=1e-9)


def test_causal_dropout_path_equals_float64_causal_attention():
    q, k, v = _qkv(TK, TK, DV, DV)  # the kernel takes one shape for q, k, v
    ref, _ = naive_attention(q, k, v, scaled_dot_scores(q, k, DV ** -0.5), causal_mask(TK, TK))
    _agree(_call("causal_dropout", q, k, v, scale=DV ** -0.5, causal=True)[0], ref, (q, k, v))


def _layout_mask(kind, tq, tk):
    b = kind.block_size
    layout = kind.layout(math.ceil(tq / b), math.ceil(tk / b))
    out = torch.zeros(tq, tk, dtype=torch.bool)
    for bi, bj in layout.nonzero().tolist():
        out[bi * b:(bi + 1) * b, bj * b:(bj + 1) * b] = True
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_each_kind_path_equals_its_float64_definition_under_a_key_mask(causal):
    q, k, v = _qkv()
    allowed = _key_mask() & (causal_mask(TQ, TK) if causal else True)
    window, sparse = SlidingWindowAttention(2), BlockSparseAttention(block_size=3, num_random=1, seed=2)
    refs = {
        "sliding_window": (window, naive_attention(q, k, v, scaled_dot_scores(q, k), allowed & local_window_mask(TQ, TK, 2))[0]),
        "block_sparse": (sparse, naive_attention(q, k, v, scaled_dot_scores(q, k), allowed & _layout_mask(sparse, TQ, TK))[0]),
        "linear": (LinearAttention(), _naive_features(_elu1(q), _elu1(k), v, allowed)[0]),
    }
    for name, (kind, ref) in refs.items():
        _agree(_call(name, q, k, v, mask=_key_mask(), causal=causal, kind=kind)[0], ref, (q, k, v))
    performer = PerformerAttention(num_features=16, seed=3, eps=0.0)
    out, _ = _call("performer", q, k, v, mask=_key_mask(), causal=causal, kind=performer)
    root, w = SCALE ** 0.5, performer.projection

    def phi(x):
        x = x * root
        return torch.exp(x @ w.T - (x * x).sum(-1, keepdim=True) / 2) / math.sqrt(16)

    _agree(out, _naive_features(phi(q), phi(k), v, allowed)[0], (q, k, v))


def test_a_path_given_what_it_cannot_do_says_so():
    q, k, v = (t.detach() for t in _qkv())
    with pytest.raises(ValueError, match="Expected a named score and return_weights=False on the fused path"):
        _call("fused", q, k, v, return_weights=True)
    with pytest.raises(ValueError, match="Expected a dot score, causal=True, no mask"):
        _call("causal_dropout", q, k, v, causal=True, mask=_key_mask())
    with pytest.raises(ValueError, match="Expected kind='linear' on the linear path. Received: kind='performer'"):
        _call("linear", q, k, v, kind=PerformerAttention())


def test_choose_takes_the_documented_path():
    q, k, v = (t.detach() for t in _qkv(TQ, TQ, DK, DK))
    base = dict(score="scaled_dot", mask=None, causal=True, dropout_p=0.0, return_weights=False, chunk_size=None,
                bias=None, kind=None)
    def pick(**kw):
        return choose(q, k, v, **{**base, **kw})[0]
    assert pick() == "fused"
    assert pick(dropout_p=0.1) == "causal_dropout"
    assert pick(dropout_p=0.1, mask=_key_mask(TQ)) == "fused"
    assert pick(return_weights=True) == "weights_inplace"
    assert pick(return_weights=True, dropout_p=0.1) == "reference"
    assert pick(chunk_size=3) == "chunked"
    assert pick(kind=LinearAttention()) == "linear"
    assert pick(score=lambda a, b: a @ b.transpose(-2, -1)) == "reference"  # small: no chunks
    qg = q.clone().requires_grad_()
    assert choose(qg, k, v, **{**base, "return_weights": True})[0] == "reference"  # autograd: the formula
