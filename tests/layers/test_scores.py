"""Trainable score modules: same numbers as the pure functions with their weights, gradients reach them."""

import torch

from attnkit.functional import attention
from attnkit.functional import scores as S
from attnkit.layers import AdditiveScore, ConcatScore, GeneralScore, LocationScore


def test_modules_equal_functions_with_their_weights():
    q, k = torch.randn(2, 3, 4), torch.randn(2, 5, 6)
    add = AdditiveScore(4, 6, 8)
    torch.testing.assert_close(add(q, k), S.additive(q, k, add.w_q.weight, add.w_k.weight, add.w_v))
    cat = ConcatScore(4, 6, 8)
    torch.testing.assert_close(cat(q, k), S.concat(q, k, cat.w_a, cat.v_a))
    gen = GeneralScore(4, 6)
    torch.testing.assert_close(gen(q, k), S.general(q, k, gen.w_a))
    loc = LocationScore(4, 10)
    torch.testing.assert_close(loc(q, k), (q @ loc.w_a.T)[..., :5])


def test_project_combine_equals_forward():
    q, k = torch.randn(2, 3, 4), torch.randn(2, 5, 6)
    for m in (AdditiveScore(4, 6, 8), GeneralScore(4, 6)):
        torch.testing.assert_close(m.combine(*m.project(q, k)), m(q, k))


def test_chunked_gradients_equal_whole_and_reach_module_weights():
    torch.manual_seed(0)
    q = torch.randn(2, 7, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 9, 6, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 9, 3, dtype=torch.float64, requires_grad=True)
    score = AdditiveScore(4, 6, 8, bias=True).double()
    mask = torch.rand(2, 7, 9) > 0.3
    grads = []
    for chunk in (None, 1, 4):
        out = attention(q, k, v, score=score, mask=mask, chunk_size=chunk)
        out.pow(2).sum().backward()
        params = [q, k, v, *score.parameters()]
        grads.append([p.grad.clone() for p in params])
        for p in params:
            p.grad = None
    for other in grads[1:]:
        for a, b in zip(grads[0], other, strict=True):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


def test_gradcheck_module_scores_on_the_chunked_path():
    from torch.autograd import gradcheck

    torch.manual_seed(1)
    # B=2, Tq=3, Tk=5, Dq=4, Dk=6, Dv=7, A=8: pairwise different
    q = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 5, 7, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([True, True, False, True, True])
    for score in (AdditiveScore(4, 6, 8).double(), GeneralScore(4, 6).double()):
        params = list(score.parameters())
        assert gradcheck(lambda q, k, v, score=score: attention(q, k, v, score=score, mask=mask, causal=True, chunk_size=2), (q, k, v))
        # and the weights get the same gradient as on the reference path
        out_c = attention(q, k, v, score=score, mask=mask, chunk_size=2)
        g_c = torch.autograd.grad(out_c.sum(), params)
        out_r = attention(q, k, v, score=score, mask=mask, return_weights=True)[0]
        g_r = torch.autograd.grad(out_r.sum(), params)
        for a, b in zip(g_c, g_r, strict=True):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


def test_location_score_refuses_chunks_and_never_auto_chunks(monkeypatch):
    import importlib

    import pytest

    A = importlib.import_module("attnkit.functional.dispatch")
    monkeypatch.setattr(A, "AUTO_CHUNK_ELEMENTS", 1)
    loc = LocationScore(4, 10)
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 7, 6), torch.randn(2, 7, 5)  # B=2, Tq=3, Tk=7, Dq=4, Dk=6, Dv=5
    with pytest.raises(ValueError, match="depends on key positions and cannot run chunked"):
        attention(q, k, v, score=loc, chunk_size=2)
    expected = torch.softmax((q @ loc.w_a[:7].T), -1) @ v  # softmax(W_a q) over the 7 positions
    torch.testing.assert_close(attention(q, k, v, score=loc), expected)


def test_size_arguments():
    import pytest

    for cls, extra in ((GeneralScore, {}), (AdditiveScore, {"hidden_dim": 7}), (ConcatScore, {"hidden_dim": 7})):
        new = cls(query_size=4, key_size=6, **extra)
        assert (new.query_size, new.key_size) == (4, 6)
        with pytest.raises(TypeError, match="key_dim"):
            cls(4, key_dim=6, **extra)
    assert LocationScore(query_size=4, max_length=9).query_size == 4
    with pytest.raises(ValueError, match=r"Expected `hidden_dim` to be a positive integer. Received: hidden_dim=0"):
        AdditiveScore(4, 6, 0)
