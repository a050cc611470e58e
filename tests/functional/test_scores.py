"""Score functions against their formulas computed pair by pair, and gradcheck in float64."""

import functools

import pytest
import torch
from torch.autograd import gradcheck

from attnkit.functional import SCORES, attention
from attnkit.functional import scores as S

from .reference import additive_scores_loop


def _loop(q, k, f):
    return torch.tensor([[float(f(q[i], k[j])) for j in range(k.shape[0])] for i in range(q.shape[0])], dtype=torch.float64)


@pytest.fixture
def qk():
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(5, 4, generator=g, dtype=torch.float64)


def test_dot_scaled_cosine_by_formula(qk):
    q, k = qk
    torch.testing.assert_close(S.dot(q, k), _loop(q, k, lambda a, b: (a * b).sum()))
    torch.testing.assert_close(S.scaled_dot(q, k), _loop(q, k, lambda a, b: (a * b).sum() / 2.0))  # sqrt(4) = 2
    torch.testing.assert_close(S.scaled_dot(q, k, scale=0.3), _loop(q, k, lambda a, b: 0.3 * (a * b).sum()))
    torch.testing.assert_close(S.cosine(q, k), _loop(q, k, lambda a, b: (a * b).sum() / (a.norm() * b.norm())))


def test_general_concat_additive_location_by_formula(qk):
    q, k = qk
    g = torch.Generator().manual_seed(1)
    w_a = torch.randn(4, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(S.general(q, k, w_a), _loop(q, k, lambda a, b: a @ w_a @ b))
    w_cat, v_a = torch.randn(6, 8, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    torch.testing.assert_close(S.concat(q, k, w_cat, v_a), _loop(q, k, lambda a, b: v_a @ torch.tanh(w_cat @ torch.cat([a, b]))))
    w_q, w_k = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(S.additive(q, k, w_q, w_k, v_a), additive_scores_loop(q, k, w_q, w_k, v_a))
    w_loc = torch.randn(9, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(S.location(q, k, w_loc), (q @ w_loc.T)[:, :5])  # (W_a q)_j for the 5 key positions


@pytest.mark.parametrize("name", sorted(SCORES))
def test_gradcheck_every_score_through_attention(name):
    g = torch.Generator().manual_seed(2)
    q = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 5, 2, generator=g, dtype=torch.float64, requires_grad=True)
    weights = {
        "dot": (), "scaled_dot": (), "cosine": (),
        "general": (torch.randn(4, 4, generator=g, dtype=torch.float64),),
        "concat": (torch.randn(6, 8, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)),
        "additive": (torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64),
                     torch.randn(6, generator=g, dtype=torch.float64)),
        "location": (torch.randn(7, 4, generator=g, dtype=torch.float64),),
    }[name]
    weights = tuple(w.requires_grad_() for w in weights)
    mask = torch.tensor([True, True, False, True, True])

    def f(q, k, v, *w, chunk):
        return attention(q, k, v, score=lambda a, b: SCORES[name](a, b, *w), mask=mask, chunk_size=chunk)

    for chunk in (None, 2):
        assert gradcheck(functools.partial(f, chunk=chunk), (q, k, v, *weights))


def test_named_scores_gradcheck_on_every_path():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(1, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(1, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 5, 2, generator=g, dtype=torch.float64, requires_grad=True)
    for name in ("dot", "scaled_dot", "cosine"):
        for kwargs in ({}, {"chunk_size": 2}, {"causal": True}):
            assert gradcheck(lambda q, k, v, name=name, kwargs=kwargs: attention(q, k, v, score=name, **kwargs), (q, k, v))


def test_score_errors_name_the_problem():
    q, k = torch.randn(3, 4), torch.randn(5, 6)
    with pytest.raises(ValueError, match=r"query \(\.\.\., 3, 4\) vs key \(\.\.\., 5, 6\)"):
        S.dot(q, k)
    with pytest.raises(ValueError, match=r"w_a must be \(Dq, Dk\) = \(4, 6\)"):
        S.general(q, k, torch.randn(4, 4))
    with pytest.raises(ValueError, match=r"w_a must be \(A, Dq \+ Dk\) = \(A, 10\)"):
        S.concat(q, k, torch.randn(2, 9), torch.randn(2))
    with pytest.raises(ValueError, match="5 keys but w_a only scores 3 positions"):
        S.location(q, k, torch.randn(3, 4))
