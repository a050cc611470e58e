"""The training fast paths of attnkit.models.blocks against float64 references: the dropout that draws
its mask from U[0, 1), and the block-by-block causal attention with dropout (checked with the very
masks it drew, recorded, and against torch's SDPA without dropout)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attnkit.functional import onednn
from attnkit.models import blocks
from attnkit.models.blocks import Dropout, SelfAttention, causal_attention_dropout, dropout


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small ops on a shared machine: one thread avoids OpenMP oversubscription stalls."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_is_inverted_bernoulli(p):
    torch.manual_seed(0)
    n = 400_000
    y = dropout(torch.ones(n, dtype=torch.float64), p)
    kept = y != 0
    # every element is either dropped or scaled by 1 / (1 - p)
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    # the kept fraction is 1 - p within 5 standard deviations of a Bernoulli(1 - p) mean
    frac = kept.double().mean().item()
    assert abs(frac - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)


def test_dropout_masks_are_independent_of_position():
    """Neighbouring elements are not correlated (a broken mask, e.g. one draw reused along a row,
    would show a correlation close to 1)."""
    torch.manual_seed(1)
    keep = (dropout(torch.ones(2000, 200), 0.3) != 0).double()
    a, b = keep[:, :-1].reshape(-1), keep[:, 1:].reshape(-1)
    corr = ((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std())
    assert abs(corr.item()) < 0.02


def test_dropout_gradient_is_the_same_mask():
    torch.manual_seed(2)
    x = torch.randn(50, 40, dtype=torch.float64, requires_grad=True)
    y = dropout(x, 0.25)
    g = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, x, g)
    mask = (y / x).detach()  # 0 or 1 / (1 - p) wherever x != 0
    torch.testing.assert_close(dx, g * mask)


def test_dropout_identity_cases_and_bad_p():
    x = torch.randn(5, 3)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"Expected dropout probability p in \[0, 1\]. Received: 1.5"):
        dropout(x, 1.5)


def test_dropout_module_follows_training_mode():
    torch.manual_seed(3)
    m = Dropout(0.5)
    assert isinstance(m, torch.nn.Dropout)
    x = torch.ones(1000)
    assert (m(x) == 0).any()
    m.eval()
    assert torch.equal(m(x), x)


# ----------------------------------------------------------------------------- causal attention


def reference_attention(qkv, n_head, keep):
    """Naive float64 causal attention with the full (N, T, T) scaled keep mask ``keep``."""
    B, T, E3 = qkv.shape
    E, H = E3 // 3, n_head
    D = E // H
    q, k, v = qkv.view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, D)
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)  # (B, H, T, T)
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1) * keep.view(B, H, T, T)
    return (weights @ v).transpose(1, 2).reshape(B, T, E)  # (B, T, E)


def record_masks(monkeypatch):
    """Record every keep mask the blocks module draws."""
    drawn = []
    original = blocks._keep_mask

    def recording(like, p):
        mask = original(like, p)
        drawn.append(mask.clone())
        return mask

    monkeypatch.setattr(blocks, "_keep_mask", recording)
    return drawn


def full_mask(drawn, N, T, block_size):
    """Assemble the per-block masks ``(N, b, e)`` into one ``(N, T, T)`` (1 where never drawn:
    those weights are causally hidden)."""
    keep = torch.ones(N, T, T, dtype=torch.float64)
    for i, s in enumerate(range(0, T, block_size)):
        e = min(s + block_size, T)
        keep[:, s:e, :e] = drawn[i]
    return keep


@pytest.mark.parametrize("T,block_size", [(10, 4), (12, 4), (3, 8), (16, 16)])
def test_causal_attention_dropout_matches_float64_reference(monkeypatch, T, block_size):
    torch.manual_seed(4)
    B, H, D, p = 2, 3, 4, 0.3
    qkv = torch.randn(B, T, 3 * H * D, dtype=torch.float64, requires_grad=True)
    drawn = record_masks(monkeypatch)
    out = causal_attention_dropout(qkv, H, p, block_size=block_size)
    assert len(drawn) == math.ceil(T / block_size)
    keep = full_mask(drawn, B * H, T, block_size)
    ref = reference_attention(qkv, H, keep)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    g = torch.randn_like(out)
    (d_ours,) = torch.autograd.grad(out, qkv, g)
    (d_ref,) = torch.autograd.grad(ref, qkv, g)
    torch.testing.assert_close(d_ours, d_ref, rtol=1e-10, atol=1e-10)


def test_causal_attention_without_dropout_equals_sdpa():
    torch.manual_seed(5)
    B, T, H, D = 2, 9, 2, 8
    qkv = torch.randn(B, T, 3 * H * D, dtype=torch.float64, requires_grad=True)
    out = causal_attention_dropout(qkv, H, 0.0, block_size=4)
    q, k, v = qkv.view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, H * D)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    g = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, qkv, g)[0], torch.autograd.grad(ref, qkv, g)[0],
                               rtol=1e-10, atol=1e-10)


def test_causal_attention_dropout_masks_only_visible_weights(monkeypatch):
    """Dropped weights are renormalised by 1 / (1 - p) and hidden (future) keys never contribute."""
    torch.manual_seed(6)
    B, T, H, D = 1, 8, 1, 4
    qkv = torch.randn(B, T, 3 * H * D, dtype=torch.float64)
    v = qkv[..., 2 * H * D:]  # (B, T, D)
    drawn = record_masks(monkeypatch)
    out = causal_attention_dropout(qkv, H, 0.5, block_size=8)
    # the first position sees only itself: its output is v_0 / (1 - p) or 0
    first = out[0, 0]
    assert torch.allclose(first, 2 * v[0, 0]) or torch.equal(first, torch.zeros_like(first))
    assert torch.allclose(first, drawn[0][0, 0, 0] * v[0, 0])


def test_causal_attention_dropout_bad_arguments():
    with pytest.raises(ValueError, match=r"Expected qkv of shape \(B, T, 3 \* E\) with E divisible by n_head=2. "
                                         r"Received: \(2, 5, 9\)"):
        causal_attention_dropout(torch.randn(2, 5, 9), 2, 0.1)
    with pytest.raises(ValueError, match=r"Expected dropout_p in \[0, 1\). Received: 1.0"):
        causal_attention_dropout(torch.randn(2, 5, 12), 2, 1.0)


def test_self_attention_training_path_matches_eval_path(monkeypatch):
    """With the keep mask forced to all ones, the training fast path (block-causal) computes what the
    evaluation path (torch SDPA) does."""
    torch.manual_seed(7)
    attn = SelfAttention(16, 4, attn_dropout=0.2, resid_dropout=0.0).double()
    x = torch.randn(3, 11, 16, dtype=torch.float64)
    attn.eval()
    expected, _ = attn(x, causal=True)
    monkeypatch.setattr(blocks, "_keep_mask", lambda like, p: torch.ones_like(like))
    attn.train()
    got, _ = attn(x, causal=True)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------- linear


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("use_onednn", [True, False])
def test_linear_matches_float64_reference(monkeypatch, bias, use_onednn):
    """Forward and all three gradients, 3-D input, a non-contiguous input, either backend."""
    monkeypatch.setattr(onednn, "USE_ONEDNN", use_onednn)
    torch.manual_seed(8)
    x = torch.randn(3, 7, 10).transpose(0, 1).requires_grad_()  # (7, 3, 10), non-contiguous
    w = torch.randn(6, 10, requires_grad=True)
    b = torch.randn(6, requires_grad=True) if bias else None
    y = blocks.linear(x, w, b)
    ref = x.double() @ w.double().T + (b.double() if bias else 0.0)
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)
    g = torch.randn(7, 3, 6)
    got = torch.autograd.grad(y, [x, w] + ([b] if bias else []), g)
    x64, w64 = x.detach().double(), w.detach().double()
    g64 = g.double()
    expected = [g64 @ w64, g64.reshape(-1, 6).T @ x64.reshape(-1, 10)] + ([g64.sum((0, 1))] if bias else [])
    for a, e in zip(got, expected, strict=True):
        torch.testing.assert_close(a.double(), e, rtol=1e-5, atol=1e-5)


def test_linear_module_is_an_nn_linear_with_the_same_result():
    torch.manual_seed(9)
    m = blocks.Linear(4, 3)
    ref = torch.nn.Linear(4, 3)
    ref.load_state_dict(m.state_dict())
    assert isinstance(m, torch.nn.Linear) and list(dict(m.named_parameters())) == ["weight", "bias"]
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(m(x), ref(x), rtol=1e-6, atol=1e-6)
    with torch.inference_mode():
        torch.testing.assert_close(m(x), ref(x), rtol=1e-6, atol=1e-6)
    # float64 and empty inputs take torch's own path
    assert m.double()(torch.randn(2, 4, dtype=torch.float64)).dtype == torch.float64
    assert m(torch.randn(0, 4, dtype=torch.float64)).shape == (0, 3)


def test_linear_second_derivatives_match_torch():
    """Double backward (create_graph=True) through the oneDNN path equals it through F.linear."""
    torch.manual_seed(10)
    x = torch.randn(5, 4, requires_grad=True)
    w = torch.randn(3, 4, requires_grad=True)
    b = torch.randn(3, requires_grad=True)

    def second(fn):
        y = fn(x, w, b)
        (gx,) = torch.autograd.grad(y.pow(2).sum(), x, create_graph=True)
        return torch.autograd.grad(gx.pow(2).sum(), [w, b])

    for a, e in zip(second(blocks.linear), second(F.linear), strict=True):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


def test_linear_respects_cpu_autocast():
    m = blocks.Linear(4, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert m(torch.randn(2, 4)).dtype == torch.bfloat16
