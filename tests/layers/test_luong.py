"""LuongAttention = a score module + an optional window: against the paper's formulas in float64.

References are written one (t, s) pair at a time from Luong, Pham & Manning 2015 (eqs. 7-10) with
pairwise-different sizes: B=3 rows, Tq=2 steps, Tk=7 source positions, Dq=5, Dk=4, A=6.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from attnkit.layers import (
    ConcatScore,
    DotScore,
    GeneralScore,
    LuongAttention,
    MonotonicWindow,
    PredictiveWindow,
)
from attnkit.layers.factory import build_score, build_window

B, TQ, TK, DQ, DK, A = 3, 2, 7, 5, 4, 6
MASK = torch.tensor([[True] * 7, [True] * 4 + [False] * 3, [True] * 6 + [False]])  # (B, Tk)


def _softmax_over(e: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """softmax of the scores e (Tk,) over the kept positions, 0 elsewhere (all 0 if none is kept)."""
    if not keep.any():
        return torch.zeros_like(e)
    ex = torch.where(keep, torch.exp(e - e[keep].max()), torch.zeros_like(e))
    return ex / ex.sum()


def _naive_score(score: torch.nn.Module, ht: torch.Tensor, hs: torch.Tensor) -> float:
    """score(h_t, h_s) for one pair in float64, from the module's weights."""
    ht, hs = ht.detach().double(), hs.detach().double()
    score = score.double().requires_grad_(False)
    if isinstance(score, DotScore):
        return float(ht @ hs)  # h_t^T h_s
    if isinstance(score, GeneralScore):
        return float(ht @ score.w_a.double() @ hs)  # h_t^T W_a h_s
    w_a, v_a = score.w_a.double(), score.v_a.double()  # (A, Dq + Dk), (A,)
    return float(v_a @ torch.tanh(w_a @ torch.cat([ht, hs])))  # v_a^T tanh(W_a [h_t; h_s])


def _naive_weights(attn: LuongAttention, ht: torch.Tensor, hs: torch.Tensor, keep: torch.Tensor, centre=None):
    """a_t (Tk,) for one decoder state: windowed softmax, times the Gaussian for a predictive window."""
    e = torch.tensor([_naive_score(attn.score, ht, hs[s]) for s in range(hs.shape[0])], dtype=torch.float64)
    if centre is None:
        return _softmax_over(e, keep)
    w = attn.window.half_width
    keep = keep & torch.tensor([abs(s - centre) <= w for s in range(hs.shape[0])])
    a = _softmax_over(e, keep)
    if isinstance(attn.window, PredictiveWindow):
        sigma = w / 2  # sigma = 0: the limit, 1 at s = p_t only
        gauss = [math.exp(-((s - centre) ** 2) / (2 * sigma**2)) if sigma else float(s == centre)
                 for s in range(hs.shape[0])]  # fmt: skip
        a = a * torch.tensor(gauss, dtype=torch.float64)
    return a


def _inputs(dq=DQ, dk=DK, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, TQ, dq, generator=g), torch.randn(B, TK, dk, generator=g)


SCORES = {
    "dot": lambda: DotScore(),
    "general": lambda: GeneralScore(DQ, DK),
    "concat": lambda: ConcatScore(DQ, DK, A),
}


@pytest.mark.parametrize("name", list(SCORES))
def test_global_attention_matches_the_formula(name):
    torch.manual_seed(0)
    score = SCORES[name]()
    dk = DQ if name == "dot" else DK
    attn = LuongAttention(score=score).double()
    h_t, h_s = _inputs(dk=dk)
    ctx, w = attn(h_t.double(), h_s.double(), MASK)
    assert ctx.shape == (B, TQ, dk) and w.shape == (B, TQ, TK)
    for n in range(B):
        for t in range(TQ):
            ref = _naive_weights(attn, h_t[n, t], h_s[n], MASK[n])
            torch.testing.assert_close(w[n, t], ref, atol=1e-12, rtol=0)
            torch.testing.assert_close(ctx[n, t], ref @ h_s[n].double(), atol=1e-12, rtol=0)


def test_monotonic_window_is_softmax_around_the_decoder_step():
    torch.manual_seed(1)
    attn = LuongAttention(score=GeneralScore(DQ, DK), window=MonotonicWindow(half_width=2)).double()
    h_t, h_s = _inputs()
    position = torch.tensor([0, 3, 5])  # step of the first query; query i is at position + i
    ctx, w = attn(h_t.double(), h_s.double(), MASK, position=position)
    for n in range(B):
        for i in range(TQ):
            t = int(position[n]) + i
            ref = _naive_weights(attn, h_t[n, i], h_s[n], MASK[n], centre=t)
            torch.testing.assert_close(w[n, i], ref, atol=1e-12, rtol=0)
            torch.testing.assert_close(ctx[n, i], ref @ h_s[n].double(), atol=1e-12, rtol=0)
    # one step at a time agrees with several at once
    for i in range(TQ):
        c_i, w_i = attn(h_t[:, i].double(), h_s.double(), MASK, position=position + i)
        torch.testing.assert_close(w_i, w[:, i])
        torch.testing.assert_close(c_i, ctx[:, i])


@pytest.mark.parametrize("half_width", [0, 1, 3])
def test_predictive_window_matches_the_paper(half_width):
    torch.manual_seed(2)
    window = PredictiveWindow(DQ, half_width=half_width, hidden_dim=A)
    attn = LuongAttention(score=ConcatScore(DQ, DK, A + 2), window=window).double()  # score width 8: not TK=7
    h_t, h_s = _inputs(seed=3)
    ctx, w = attn(h_t.double(), h_s.double(), MASK)
    wp, vp = window.w_p.weight.detach().double(), window.v_p.weight.detach().double()[0]  # (A, Dq), (A,)
    for n in range(B):
        big_s = float(MASK[n].sum())
        for t in range(TQ):
            p_t = big_s * float(torch.sigmoid(vp @ torch.tanh(wp @ h_t[n, t].double())))  # eq. 9
            ref = _naive_weights(attn, h_t[n, t], h_s[n], MASK[n], centre=p_t)
            torch.testing.assert_close(w[n, t], ref, atol=1e-12, rtol=0)
            torch.testing.assert_close(ctx[n, t], ref @ h_s[n].double(), atol=1e-12, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    window=st.sampled_from(["global", "monotonic", "predictive"]), score=st.sampled_from(list(SCORES)),
    b=st.integers(1, 3), tk=st.integers(1, 12), half_width=st.integers(0, 3), seed=st.integers(0, 10_000),
)
def test_properties(window, score, b, tk, half_width, seed):
    assume(len({b, 2, tk, DQ, DK}) == 5)  # B, Tq=2, Tk and the widths pairwise different
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    win = {"global": None, "monotonic": MonotonicWindow(half_width), "predictive": PredictiveWindow(DQ, half_width)}
    dk = DQ if score == "dot" else DK
    attn = LuongAttention(score=SCORES[score](), window=win[window])
    h_t, h_s = torch.randn(b, 2, DQ, generator=g), torch.randn(b, tk, dk, generator=g)
    mask = torch.rand(b, tk, generator=g) > 0.3
    ctx, w = attn(h_t, h_s, mask, position=torch.randint(0, tk, (b,), generator=g))
    assert torch.isfinite(w).all() and torch.isfinite(ctx).all()
    assert torch.all(w[~mask[:, None, :].expand_as(w)] == 0)  # masked keys get 0
    sums = w.sum(-1)
    if window == "predictive":
        assert torch.all(sums <= 1 + 1e-6)
        p_t = attn.window.predict_position(h_t, mask.sum(-1).float())  # (B, 2)
        outside = (torch.arange(tk).float()[None, None, :] - p_t[..., None]).abs() > half_width
        assert torch.all(w[outside] == 0)  # nothing outside [p_t - W, p_t + W]
    else:
        nonzero = sums > 0
        torch.testing.assert_close(sums[nonzero], torch.ones_like(sums[nonzero]))
        if window == "global":
            assert torch.equal(nonzero, mask.any(-1)[:, None].expand_as(sums))


def test_gradient_reaches_the_position_predictor_and_the_score():
    attn = LuongAttention(score=GeneralScore(DQ, DK), window=PredictiveWindow(DQ, 3))
    ctx, _ = attn(torch.randn(B, DQ), torch.randn(B, TK, DK))
    ctx.square().sum().backward()
    assert attn.window.w_p.weight.grad.abs().sum() > 0 and attn.window.v_p.weight.grad.abs().sum() > 0
    assert attn.score.w_a.grad.abs().sum() > 0


def test_sizes_come_from_the_score_and_window():
    attn = LuongAttention(score=GeneralScore(DQ, DK), window=PredictiveWindow(DQ, 2))
    assert (attn.query_size, attn.key_size) == (DQ, DK)
    assert (LuongAttention(DQ).query_size, LuongAttention(DQ).key_size) == (DQ, DQ)
    assert (LuongAttention().query_size, LuongAttention().key_size) == (None, None)
    c, w = LuongAttention()(torch.randn(B, TQ, DK), torch.randn(B, TK, DK))  # any equal widths
    assert c.shape == (B, TQ, DK) and w.shape == (B, TQ, TK)


# ---- config names (layers.factory): the same objects, the same numbers ------------------------------------


NAMED = [  # (score name, window name, half-width), (direct objects), sizes Dq=5 and Dk=4 (Dk=5 for dot)
    (("dot", "global", 10), dict(score=lambda: DotScore(), window=lambda: None)),
    (("general", "global", 3), dict(score=lambda: GeneralScore(DQ, DK), window=lambda: None)),
    (("concat", "global", 10), dict(score=lambda: ConcatScore(DQ, DK, DQ), window=lambda: None)),
    (("general", "local-m", 2), dict(score=lambda: GeneralScore(DQ, DK), window=lambda: MonotonicWindow(2))),
    (("general", "local-p", 2), dict(score=lambda: GeneralScore(DQ, DK), window=lambda: PredictiveWindow(DQ, 2))),
    (("concat", "local-p", 10), dict(score=lambda: ConcatScore(DQ, DK, DQ), window=lambda: PredictiveWindow(DQ, 10))),
]


@pytest.mark.parametrize(("names", "direct"), NAMED)
def test_config_names_build_the_same_objects_and_numbers(names, direct):
    score_name, window_name, half_width = names
    dk = DQ if score_name == "dot" else DK
    torch.manual_seed(5)
    named = LuongAttention(DQ, dk, score=build_score(score_name, DQ, dk),
                           window=build_window(window_name, DQ, half_width))
    torch.manual_seed(5)
    modern = LuongAttention(DQ, dk, score=direct["score"](), window=direct["window"]())
    assert type(named.score) is type(modern.score) and type(named.window) is type(modern.window)
    for (n1, p1), (n2, p2) in zip(named.state_dict().items(), modern.state_dict().items(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
    h_t, h_s = _inputs(dk=dk, seed=7)
    a = named(h_t, h_s, MASK, position=1)
    b = modern(h_t, h_s, MASK, position=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_new_forms_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LuongAttention(DQ, DK, score=GeneralScore(query_size=DQ, key_size=DK), window=MonotonicWindow(1))
        LuongAttention()(torch.randn(B, TQ, DQ), torch.randn(B, TK, DQ))


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"Expected key_size == query_size for DotScore.*Received: query_size=4, key_size=3"):
        LuongAttention(4, 3)
    with pytest.raises(ValueError, match=r"Expected `key_size` to match the GeneralScore's. Received: key_size=3, GeneralScore.key_size=4"):
        LuongAttention(5, 3, score=GeneralScore(5, 4))
    with pytest.raises(ValueError, match=r"Expected `query_size` to match the PredictiveWindow's"):
        LuongAttention(score=GeneralScore(5, 4), window=PredictiveWindow(6, 2))
    with pytest.raises(TypeError, match=r"Expected `window` to be None or a LocalWindow.*Received: window='local-m'"):
        LuongAttention(4, window="local-m")
    with pytest.raises(ValueError, match=r"Expected `half_width` to be a non-negative integer. Received: half_width=-1"):
        MonotonicWindow(-1)
    with pytest.raises(ValueError, match=r"Expected `mode` in .*Received: mode='local'"):
        build_window("local", 4, 2)
    with pytest.raises(ValueError, match=r"Expected `score` in .*Received: score='cosine'"):
        build_score("cosine", 4)
    with pytest.raises(TypeError, match=r"Expected `score` to be a score module .*Received: score='general'"):
        LuongAttention(4, score="general")
    attn = LuongAttention(4, window=MonotonicWindow(2))
    with pytest.raises(ValueError, match=r"Expected `position` .*Received: position=None"):
        attn(torch.randn(2, 4), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"Expected `position` of shape \(2,\) or \(2, 1\). Received: position.shape=\(3,\)"):
        attn(torch.randn(2, 4), torch.randn(2, 5, 4), position=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected `keys` with last dimension 4 .*Received: keys.shape=\(2, 5, 3\)"):
        attn(torch.randn(2, 4), torch.randn(2, 5, 3), position=0)
