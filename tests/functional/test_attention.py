"""attention() against a naive float64 reference, torch SDPA, and its own invariants."""

import importlib
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from attnkit.functional import attention, masked_softmax
from attnkit.layers import AdditiveScore, GeneralScore
from attnkit.masks import causal_mask

from .reference import naive_attention, scaled_dot_scores

shapes = st.tuples(
    st.integers(1, 3),  # batch
    st.integers(1, 9),  # Tq
    st.integers(1, 9),  # Tk
    st.integers(1, 8),  # Dk
    st.integers(1, 6),  # Dv
)
mask_kinds = st.sampled_from(["none", "random", "causal", "padding", "full_rows"])


def make_mask(kind, b, tq, tk, gen):
    if kind == "none":
        return None
    if kind == "random":
        return torch.rand(b, tq, tk, generator=gen) > 0.4
    if kind == "causal":  # (Tq, Tk) shared by the batch; written (1, Tq, Tk) when B == Tq, where (Tq, Tk)
        return causal_mask(tq, tk)[None] if b == tq > 1 else causal_mask(tq, tk)  # reads as (B, Tk) and is refused
    if kind == "padding":
        lengths = torch.randint(0, tk + 1, (b,), generator=gen)
        return (torch.arange(tk)[None, :] < lengths[:, None])[:, None, :]  # (B, 1, Tk)
    m = torch.rand(b, tq, tk, generator=gen) > 0.3
    m[:, 0, :] = False  # a fully masked query row
    return m


@settings(max_examples=60, deadline=None)
@given(shapes, mask_kinds, st.sampled_from(["dot", "scaled_dot", "cosine"]), st.integers(0, 2**31 - 1))
def test_every_path_matches_naive_float64(shape, kind, score, seed):
    b, tq, tk, dk, dv = shape
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(b, tq, dk, generator=gen), torch.randn(b, tk, dk, generator=gen)
    v = torch.randn(b, tk, dv, generator=gen)
    mask = make_mask(kind, b, tq, tk, gen)
    if score == "dot":
        s = q.double() @ k.double().transpose(-2, -1)
    elif score == "scaled_dot":
        s = scaled_dot_scores(q, k)
    else:
        s = F.normalize(q.double(), dim=-1) @ F.normalize(k.double(), dim=-1).transpose(-2, -1)
    ref_out, ref_w = naive_attention(q, k, v, s, mask)
    fused = attention(q, k, v, score=score, mask=mask)
    out, w = attention(q, k, v, score=score, mask=mask, return_weights=True)
    chunked = attention(q, k, v, score=score, mask=mask, chunk_size=int(torch.randint(1, 4, (1,), generator=gen)))
    for got in (fused, out, chunked):
        assert not torch.isnan(got).any()
        torch.testing.assert_close(got.double(), ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w.double(), ref_w, atol=1e-6, rtol=1e-5)


def test_weights_invariants():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 6, 4), torch.randn(2, 8, 4), torch.randn(2, 8, 3)
    mask = torch.rand(2, 6, 8) > 0.5
    mask[1, 2] = False
    _, w = attention(q, k, v, mask=mask, return_weights=True)
    assert torch.all(w[~mask] == 0)  # masked keys get exactly 0
    rows = mask.any(-1)
    torch.testing.assert_close(w.sum(-1)[rows], torch.ones(int(rows.sum())))
    assert torch.all(w[1, 2] == 0)


def test_permuting_keys_with_values_keeps_output():
    torch.manual_seed(1)
    q, k, v = torch.randn(3, 5, 4), torch.randn(3, 7, 4), torch.randn(3, 7, 2)
    mask = torch.rand(3, 1, 7) > 0.3
    perm = torch.randperm(7)
    score = AdditiveScore(4, 4, 8)
    for kwargs in ({}, {"score": score}, {"score": score, "chunk_size": 3}):
        a = attention(q, k, v, mask=mask, **kwargs)
        b = attention(q, k[:, perm], v[:, perm], mask=mask[..., perm], **kwargs)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind", ["none", "causal", "padding", "full_rows"])
@pytest.mark.parametrize("tq,tk", [(1, 7), (7, 1), (5, 9), (16, 16)])
def test_matches_torch_sdpa(dtype, kind, tq, tk):
    gen = torch.Generator().manual_seed(tq * 100 + tk)
    q = torch.randn(2, 3, tq, 8, generator=gen).to(dtype)
    k = torch.randn(2, 3, tk, 8, generator=gen).to(dtype)
    v = torch.randn(2, 3, tk, 5, generator=gen).to(dtype)
    mask = make_mask(kind, 2, tq, tk, gen)
    mask4 = None if mask is None else (mask[:, None] if mask.dim() == 3 else mask)
    expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=mask4)
    if mask4 is not None:  # SDPA's reference for fully masked rows: attnkit defines them as zeros
        expected = expected.masked_fill(~mask4.expand(2, 3, tq, tk).any(-1, keepdim=True), 0.0)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    for got in (attention(q, k, v, mask=mask4),
                attention(q, k, v, mask=mask4, return_weights=True)[0],
                attention(q, k, v, mask=mask4, chunk_size=2)):
        assert got.dtype == dtype
        assert not torch.isnan(got).any()
        torch.testing.assert_close(got.double(), expected, atol=tol, rtol=tol)


def test_causal_flag_equals_causal_mask():
    torch.manual_seed(2)
    q, k, v = torch.randn(2, 6, 4), torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    a = attention(q, k, v, causal=True)
    b = attention(q, k, v, mask=causal_mask(6))
    c = attention(q, k, v, causal=True, return_weights=True)[0]
    d = attention(q, k, v, causal=True, chunk_size=4)
    for x in (b, c, d):
        torch.testing.assert_close(a, x, atol=1e-6, rtol=1e-5)


def test_fully_masked_rows_give_zero_output_and_finite_gradients():
    q = torch.randn(1, 3, 4, requires_grad=True)
    k = torch.randn(1, 5, 4, requires_grad=True)
    v = torch.randn(1, 5, 2, requires_grad=True)
    score = GeneralScore(4, 4)
    mask = torch.ones(1, 3, 5, dtype=torch.bool)
    mask[0, 1] = False
    for kwargs in ({}, {"return_weights": True}, {"chunk_size": 2}, {"score": score}, {"score": score, "chunk_size": 2}):
        out = attention(q, k, v, mask=mask, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        assert torch.all(out[0, 1] == 0)
        out.sum().backward()
        tensors = (q, k, v, score.w_a) if "score" in kwargs else (q, k, v)
        for t in tensors:
            assert t.grad is not None and torch.isfinite(t.grad).all()
            t.grad = None


def test_empty_keys_give_zeros():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 0, 4), torch.randn(2, 0, 5)
    out, w = attention(q, k, v, return_weights=True)
    assert out.shape == (2, 3, 5) and torch.all(out == 0)
    assert w.shape == (2, 3, 0)
    assert torch.all(attention(q, k, v) == 0)


def test_leading_dims_broadcast():
    torch.manual_seed(3)
    q = torch.randn(2, 4, 5, 8)  # (B, H, Tq, D)
    k = torch.randn(2, 1, 6, 8)  # shared across heads
    v = torch.randn(6, 3)  # shared across everything
    mask = torch.rand(2, 1, 1, 6) > 0.3
    out = attention(q, k, v, mask=mask)
    ref, _ = naive_attention(q, k.expand(2, 4, 6, 8), v.expand(2, 4, 6, 3), scaled_dot_scores(q, k.expand(2, 4, 6, 8)), mask)
    assert out.shape == (2, 4, 5, 3)
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attention(q, k, v, mask=mask, chunk_size=4).double(), ref, atol=1e-5, rtol=1e-5)


def test_scale_and_callable_scores():
    torch.manual_seed(4)
    q, k, v = torch.randn(2, 5, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 3)
    ref, _ = naive_attention(q, k, v, scaled_dot_scores(q, k, scale=0.7))
    torch.testing.assert_close(attention(q, k, v, scale=0.7).double(), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attention(q, k, v, score="dot", scale=0.7).double(), ref, atol=1e-5, rtol=1e-5)

    def callable_score(a, b):  # returned scores are used as they are: scale is ignored
        return a @ b.transpose(-2, -1)

    ref_dot, _ = naive_attention(q, k, v, q.double() @ k.double().transpose(-2, -1))
    torch.testing.assert_close(attention(q, k, v, score=callable_score, scale=0.1).double(), ref_dot, atol=1e-5, rtol=1e-5)


def test_dropout_zero_is_identity_and_positive_dropout_changes_output():
    torch.manual_seed(5)
    q, k, v = torch.randn(2, 5, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 3)
    torch.testing.assert_close(attention(q, k, v, dropout_p=0.0), attention(q, k, v))
    assert not torch.allclose(attention(q, k, v, dropout_p=0.5), attention(q, k, v))


def test_auto_chunking_kicks_in_for_large_callable_scores(monkeypatch):
    A = importlib.import_module("attnkit.functional.dispatch")  # where the path is chosen
    C = importlib.import_module("attnkit.functional.chunked")

    calls = []
    original = C.chunked_attention

    def spy(*args, **kwargs):
        calls.append(args[7])  # the chunk size
        return original(*args, **kwargs)

    monkeypatch.setattr(C, "chunked_attention", spy)
    monkeypatch.setattr(A, "AUTO_CHUNK_ELEMENTS", 1000)
    monkeypatch.setattr(A, "AUTO_CHUNK_TARGET", 400)
    score = AdditiveScore(4, 4, 8)
    q, k, v = torch.randn(2, 5, 4), torch.randn(2, 40, 4), torch.randn(2, 40, 3)
    out = attention(q, k, v, score=score)
    assert calls == [16]  # 2 * 5 * 40 * 8 elements > 1000: chunks of max(16, 400 // (2 * 5 * 8)) keys
    ref = attention(q, k, v, score=score, return_weights=True)[0]
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)


def test_masked_softmax_half_precision_normalised_in_float32():
    s = torch.tensor([[10.0, 10.0, -1e4]], dtype=torch.float16)
    w = masked_softmax(s, torch.tensor([[True, True, False]]))
    assert w.dtype == torch.float16
    assert w.tolist() == [[0.5, 0.5, 0.0]]
    assert masked_softmax(torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.bool)).tolist() == [[0.0, 0.0]]


def test_hand_worked_example():
    # one query, two keys with dot scores 0 and ln 3: weights 1/4 and 3/4
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[0.0, 1.0], [math.log(3), 0.0]])
    v = torch.tensor([[4.0], [8.0]])
    out, w = attention(q, k, v, score="dot", return_weights=True)
    torch.testing.assert_close(w, torch.tensor([[0.25, 0.75]]))
    torch.testing.assert_close(out, torch.tensor([[7.0]]))
