"""chunk_size=None bounds the memory of any score callable: a plain closure is probed and chunked."""

import importlib

import pytest
import torch

from attnkit.functional import AUTO_CHUNK_ELEMENTS, attention
from attnkit.functional.auto_chunk import choose_chunk, probe_bytes
from attnkit.functional.scores import additive

from .reference import naive_attention

A = importlib.import_module("attnkit.functional.dispatch")  # where the path is chosen
C = importlib.import_module("attnkit.functional.chunked")
AC = importlib.import_module("attnkit.functional.auto_chunk")


def additive_weights(dq, dk, hidden, gen, dtype=torch.float32):
    w_q = (torch.randn(hidden, dq, generator=gen) / dq**0.5).to(dtype).requires_grad_()
    w_k = (torch.randn(hidden, dk, generator=gen) / dk**0.5).to(dtype).requires_grad_()
    w_v = (torch.randn(hidden, generator=gen) / hidden**0.5).to(dtype).requires_grad_()
    return w_q, w_k, w_v


def additive_float64(q, k, w_q, w_k, w_v):
    """e_ij = w_v . tanh(W_q q_i + W_k k_j) from the formula, in float64: (..., Tq, Tk)."""
    hidden = torch.tanh((q.double() @ w_q.double().T)[..., :, None, :] + (k.double() @ w_k.double().T)[..., None, :, :])
    return hidden @ w_v.double()


@pytest.fixture
def chunk_spy(monkeypatch):
    """Records the chunk size of every call of the chunked path (None: never called)."""
    calls = []
    original = C.chunked_attention

    def spy(*args, **kwargs):
        calls.append(args[7])  # the chunk size
        return original(*args, **kwargs)

    monkeypatch.setattr(C, "chunked_attention", spy)
    return calls


def test_closure_at_the_reported_size_is_chunked_with_defaults():
    """B=8, Tq=Tk=512, A=256: the reference path would build (8, 512, 512, 256) floats, 4 GiB."""
    gen = torch.Generator().manual_seed(0)
    w_q, w_k, w_v = additive_weights(64, 48, 256, gen)
    score = lambda a, b: additive(a, b, w_q, w_k, w_v)  # noqa: E731 - the plain closure of the report
    q, k = torch.randn(8, 512, 64, generator=gen), torch.randn(8, 512, 48, generator=gen)
    fixed, per_key = probe_bytes(score, q, k)
    assert per_key >= 8 * 512 * 256 * 4  # at least the (B, Tq, 1, A) hidden layer per key
    naive = fixed + per_key * 512
    assert naive > 4 * AUTO_CHUNK_ELEMENTS  # past the documented threshold
    chunk = choose_chunk(score, q, k, torch.Size([8]), A.AUTO_CHUNK_ELEMENTS, A.AUTO_CHUNK_TARGET)
    assert chunk is not None and 16 <= chunk < 512
    assert fixed + per_key * chunk <= naive / 8  # a chunk's intermediates: under 1/8 of the whole


def test_small_closure_stays_on_the_reference_path(chunk_spy):
    gen = torch.Generator().manual_seed(1)
    w_q, w_k, w_v = additive_weights(6, 5, 7, gen)
    q, k, v = torch.randn(2, 9, 6, generator=gen), torch.randn(2, 11, 5, generator=gen), torch.randn(2, 11, 3, generator=gen)
    out = attention(q, k, v, score=lambda a, b: additive(a, b, w_q, w_k, w_v))
    assert chunk_spy == []
    ref, _ = naive_attention(q, k, v, additive_float64(q, k, w_q, w_k, w_v))
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_closure_chunked_automatically_matches_float64_with_gradients(monkeypatch, chunk_spy, causal):
    monkeypatch.setattr(A, "AUTO_CHUNK_ELEMENTS", 2**12)  # a small threshold, so small sizes chunk
    monkeypatch.setattr(A, "AUTO_CHUNK_TARGET", 2**10)
    monkeypatch.setattr(AC, "PROBE_ELEMENTS", 2**6)
    gen = torch.Generator().manual_seed(2)
    w_q, w_k, w_v = additive_weights(6, 5, 7, gen)
    q = torch.randn(3, 9, 6, generator=gen, requires_grad=True)
    k = torch.randn(3, 37, 5, generator=gen, requires_grad=True)
    v = torch.randn(3, 37, 4, generator=gen, requires_grad=True)
    mask = torch.rand(3, 1, 37, generator=gen) > 0.3
    out = attention(q, k, v, score=lambda a, b: additive(a, b, w_q, w_k, w_v), mask=mask, causal=causal)
    assert len(chunk_spy) == 1 and 16 <= chunk_spy[0] < 37  # no attribute on the closure: probed, then chunked

    full = mask & torch.ones(9, 37, dtype=torch.bool).tril() if causal else mask
    tensors = (q, k, v, w_q, w_k, w_v)
    ref, _ = naive_attention(q, k, v, additive_float64(q, k, w_q, w_k, w_v), full)
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad((out * torch.arange(4.0)).sum(), tensors)  # gradients reach the closure's weights
    ref_grads = torch.autograd.grad((ref * torch.arange(4.0).double()).sum(), tensors)
    for got, expected in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got.double(), expected.double(), atol=1e-5, rtol=1e-4)


def test_closure_that_cannot_score_a_key_slice_runs_whole(monkeypatch, chunk_spy):
    monkeypatch.setattr(A, "AUTO_CHUNK_ELEMENTS", 2**8)
    monkeypatch.setattr(AC, "PROBE_ELEMENTS", 2**6)
    gen = torch.Generator().manual_seed(3)
    q, k, v = torch.randn(2, 9, 4, generator=gen), torch.randn(2, 33, 4, generator=gen), torch.randn(2, 33, 3, generator=gen)
    pair_bias = torch.randn(9, 33, generator=gen)  # (Tq, Tk): only the whole key axis fits it
    out = attention(q, k, v, score=lambda a, b: a @ b.transpose(-2, -1) + pair_bias)
    assert chunk_spy == []
    ref, _ = naive_attention(q, k, v, q.double() @ k.double().transpose(-2, -1) + pair_bias.double())
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)


def test_non_chunkable_callable_is_never_probed_nor_chunked(monkeypatch, chunk_spy):
    monkeypatch.setattr(A, "AUTO_CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(AC, "PROBE_ELEMENTS", 1)
    gen = torch.Generator().manual_seed(4)
    w_a = torch.randn(40, 4, generator=gen)
    calls = []

    def by_position(a, b):  # scores of absolute key positions, as LocationScore
        calls.append(b.shape[-2])
        return (a @ w_a[: b.shape[-2]].T).expand(*a.shape[:-2], a.shape[-2], b.shape[-2])

    by_position.chunkable = False
    q, k, v = torch.randn(2, 5, 4, generator=gen), torch.randn(2, 33, 6, generator=gen), torch.randn(2, 33, 3, generator=gen)
    out = attention(q, k, v, score=by_position)
    assert chunk_spy == [] and calls == [33]
    ref, _ = naive_attention(q, k, v, (q.double() @ w_a[:33].double().T).expand(2, 5, 33))
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="depends on key positions and cannot run chunked"):
        attention(q, k, v, score=by_position, chunk_size=8)


def test_probe_counts_new_storages_only():
    q, k = torch.randn(2, 8, 4), torch.randn(2, 32, 4)
    # a view and an in-place op create no storage: only the (2, 8, n) product is counted
    fixed, per_key = probe_bytes(lambda a, b: (a @ b.transpose(-2, -1)).mul_(2.0).view(2, 8, -1), q, k)
    assert (fixed, per_key) == (0, 2 * 8 * 4)
