"""The answer never depends on return_weights or chunk_size, even with logits past float16's range.

The inputs are exactly representable in float32, bfloat16 and float16 (a few large entries of 512,
the rest multiples of 1/4 in [-1, 1]) and every product and partial sum of their dot products is exact
in float32, so the logits (above 65504, float16's largest number) are the same on every path and the
float64 reference sees the very numbers attnkit was given.
"""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from attnkit.functional import attention, masked_softmax

from .reference import naive_attention

DK = 16  # scaled_dot's 1 / sqrt(16) = 1/4 is exact
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 3e-3}


def huge_logit_inputs(b, tq, tk, dv, big_dims, gen):
    """query, key with ``big_dims`` entries of +-512 (logits of +-262144 per entry) and small exact rest."""
    def small(*shape):
        return torch.randint(-4, 5, shape, generator=gen).double() / 4  # multiples of 1/4 in [-1, 1]

    q, k = small(b, tq, DK), small(b, tk, DK)
    q[..., :big_dims] = 512.0
    k[..., :big_dims] = 512.0 * (torch.randint(0, 2, (b, tk, big_dims), generator=gen) * 2 - 1)  # +-512
    v = torch.randint(-16, 17, (b, tk, dv), generator=gen).double() / 8  # multiples of 1/8 in [-2, 2]
    return q, k, v


def make_mask(kind, b, tq, tk, gen):
    if kind == "none":
        return None
    mask = torch.rand(b, tq, tk, generator=gen) > 0.4
    if kind == "full_rows":
        mask[:, 0, :] = False  # a query with no allowed key
    return mask


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([torch.float32, torch.bfloat16, torch.float16]),
    st.sampled_from(["dot", "scaled_dot"]),
    st.tuples(st.integers(1, 3), st.integers(4, 7), st.integers(5, 12), st.integers(1, 3)),  # B, Tq, Tk, Dv
    st.sampled_from([1, 3]),  # entries of 512: an odd count keeps every logit's magnitude > 65504
    st.sampled_from(["none", "random", "full_rows"]),
    st.integers(1, 4),  # chunk size
    st.integers(0, 2**31 - 1),
)
def test_every_path_agrees_with_float64_under_huge_logits(dtype, score, sizes, big_dims, kind, chunk, seed):
    b, tq, tk, dv = sizes
    assume(tq != tk)
    gen = torch.Generator().manual_seed(seed)
    q, k, v = huge_logit_inputs(b, tq, tk, dv, big_dims, gen)
    mask = make_mask(kind, b, tq, tk, gen)
    logits = (q @ k.transpose(-2, -1)) * (0.25 if score == "scaled_dot" else 1.0)  # (B, Tq, Tk), float64
    assert logits.abs().min() > 65504  # past float16's range
    ref_out, ref_w = naive_attention(q, k, v, logits, mask)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)  # exact: these numbers are representable in every dtype

    fused = attention(q, k, v, score=score, mask=mask)
    out, w = attention(q, k, v, score=score, mask=mask, return_weights=True)
    chunked = attention(q, k, v, score=score, mask=mask, chunk_size=chunk)
    tol = TOLERANCE[dtype]
    for got in (fused, out, chunked, w):
        assert got.dtype == dtype
        assert not torch.isnan(got).any()
    for got in (fused, out, chunked):
        torch.testing.assert_close(got.double(), ref_out, atol=tol, rtol=tol)
    torch.testing.assert_close(w.double(), ref_w, atol=tol, rtol=tol)
    torch.testing.assert_close(out, fused, atol=2 * tol, rtol=2 * tol)  # and with each other
    torch.testing.assert_close(chunked, out, atol=2 * tol, rtol=2 * tol)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reported_case_scale_300_half(dtype):
    """The report: q, k of scale 300 in float16 made return_weights=True return NaN."""
    gen = torch.Generator().manual_seed(0)
    q, k = (torch.randn(3, 5, 8, generator=gen) * 300).to(dtype), (torch.randn(3, 7, 8, generator=gen) * 300).to(dtype)
    v = torch.randn(3, 7, 2, generator=gen).to(dtype)
    logits = q.double() @ k.double().transpose(-2, -1)  # (3, 5, 7)
    assert logits.abs().max() > 65504
    ref, _ = naive_attention(q, k, v, logits)
    for got in (attention(q, k, v, score="dot"), attention(q, k, v, score="dot", return_weights=True)[0],
                attention(q, k, v, score="dot", chunk_size=3)):
        assert not torch.isnan(got).any()
        # float32 logits of ~1e5 carry an absolute error ~1e-2: compare the half outputs loosely
        torch.testing.assert_close(got.double(), ref, atol=5e-2, rtol=5e-2)


def test_masked_softmax_keeps_its_dtype_for_half_scores():
    s = torch.tensor([[60000.0, 60000.0, -60000.0]], dtype=torch.float16)
    assert masked_softmax(s).dtype == torch.float16
    assert masked_softmax(s).tolist() == [[0.5, 0.5, 0.0]]
