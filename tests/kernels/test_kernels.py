"""attnkit.kernels against float64 references and against their plain-torch twins (the fast paths
switched off): the dropout that draws its mask from U[0, 1), the block-by-block causal attention with
dropout (checked with the very masks it drew, recorded, and against torch's SDPA without dropout), the
oneDNN linear layer, the in-place weights path and the fused next-token loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attnkit import kernels
from attnkit.functional import attention, causal_dropout
from attnkit.functional.causal_dropout import causal_dropout_attention
from attnkit.functional.weights_inplace import attention_with_weights
from attnkit.kernels import (
    Dropout,
    Linear,
    decoding_weights,
    dropout,
    dropout_mask,
    fast_paths,
    linear,
    next_token_loss,
    onednn_linear,
)
from attnkit.kernels.packed_heads import packed_heads
from attnkit.layers import MultiHeadAttention


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


def reference_attention(q, k, v, keep):
    """Naive float64 causal attention with the full (N, T, T) scaled keep mask ``keep``; q, k, v (B, H, T, D)."""
    B, H, T, D = q.shape
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)  # (B, H, T, T)
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1) * keep.view(B, H, T, T)
    return weights @ v  # (B, H, T, D)


def qkv_of(B, T, H, D, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, T, D, dtype=torch.float64, generator=g, requires_grad=True) for _ in range(3)]


def record_masks(monkeypatch):
    """Record every keep mask the causal attention kernel draws."""
    drawn = []
    original = causal_dropout.keep_mask

    def recording(like, p):
        mask = original(like, p)
        drawn.append(mask.clone())
        return mask

    monkeypatch.setattr(causal_dropout, "keep_mask", recording)
    return drawn


def full_mask(drawn, N, T, block_size):
    """Assemble the per-block masks ``(N, b, e)`` into one ``(N, T, T)`` (1 where never drawn:
    those weights are causally hidden)."""
    keep = torch.ones(N, T, T, dtype=torch.float64)
    for i, s in enumerate(range(0, T, block_size)):
        e = min(s + block_size, T)
        keep[:, s:e, :e] = drawn[i]
    return keep


@pytest.mark.parametrize("T,block_size", [(10, 4), (12, 4), (7, 8), (16, 16)])
def test_causal_attention_dropout_matches_float64_reference(monkeypatch, T, block_size):
    torch.manual_seed(4)
    B, H, D, p = 2, 3, 5, 0.3  # T differs from each; the kernel takes q, k, v of one shape (Dk = Dv)
    q, k, v = qkv_of(B, T, H, D, seed=T)
    drawn = record_masks(monkeypatch)
    out = causal_dropout_attention(q, k, v, p, block_size=block_size)
    assert len(drawn) == math.ceil(T / block_size)
    keep = full_mask(drawn, B * H, T, block_size)
    ref = reference_attention(q, k, v, keep)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    g = torch.randn_like(out)
    for a, e in zip(torch.autograd.grad(out, (q, k, v), g), torch.autograd.grad(ref, (q, k, v), g), strict=True):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)


def test_causal_attention_without_dropout_equals_sdpa():
    torch.manual_seed(5)
    B, T, H, D = 2, 9, 3, 8
    q, k, v = qkv_of(B, T, H, D, seed=5)
    out = causal_dropout_attention(q, k, v, 0.0, block_size=4)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    g = torch.randn_like(out)
    for a, e in zip(torch.autograd.grad(out, (q, k, v), g), torch.autograd.grad(ref, (q, k, v), g), strict=True):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)
    assert out.transpose(1, 2).is_contiguous()  # ready for the output projection


def test_causal_attention_dropout_masks_only_visible_weights(monkeypatch):
    """Dropped weights are renormalised by 1 / (1 - p) and hidden (future) keys never contribute."""
    torch.manual_seed(6)
    q, k, v = (x.detach() for x in qkv_of(2, 8, 3, 4, seed=6))  # B=2, T=8, H=3, D=4
    drawn = record_masks(monkeypatch)
    out = causal_dropout_attention(q, k, v, 0.5, block_size=8)
    # the first position sees only itself: its output is v_0 / (1 - p) or 0
    first = out[0, 0, 0]
    assert torch.allclose(first, 2 * v[0, 0, 0]) or torch.equal(first, torch.zeros_like(first))
    assert torch.allclose(first, drawn[0][0, 0, 0] * v[0, 0, 0])


def test_causal_attention_dropout_bad_arguments():
    x = torch.randn(2, 3, 5, 4)
    with pytest.raises(ValueError, match=r"Expected q, k, v of one shape \(B, H, T, Dh\). "
                                         r"Received: \(2, 3, 5, 4\), \(2, 3, 6, 4\), \(2, 3, 5, 4\)"):
        causal_dropout_attention(x, torch.randn(2, 3, 6, 4), x, 0.1)
    with pytest.raises(ValueError, match=r"Expected dropout_p in \[0, 1\). Received: 1.0"):
        causal_dropout_attention(x, x, x, 1.0)


def test_attention_training_path_matches_eval_path(monkeypatch):
    """With the keep mask forced to all ones, the training fast path of the one attention module
    (block-causal with dropout) computes what the evaluation path (torch SDPA) does."""
    torch.manual_seed(7)
    attn = MultiHeadAttention(4, 5, dropout=0.2, query_dim=16).double()
    x = torch.randn(3, 11, 16, dtype=torch.float64, requires_grad=True)
    attn.eval()
    expected = attn(x, x, use_causal_mask=True)
    monkeypatch.setattr(causal_dropout, "keep_mask", lambda like, p: torch.ones_like(like))
    attn.train()
    got = attn(x, x, use_causal_mask=True)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------- linear


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("fast", [True, False])
def test_linear_matches_float64_reference(bias, fast):
    """Forward and all three gradients, 3-D input, a non-contiguous input, fast path on or off."""
    with fast_paths(fast):
        _check_linear(bias)


def _check_linear(bias):
    torch.manual_seed(8)
    x = torch.randn(3, 7, 10).transpose(0, 1).requires_grad_()  # (7, 3, 10), non-contiguous
    w = torch.randn(6, 10, requires_grad=True)
    b = torch.randn(6, requires_grad=True) if bias else None
    y = linear(x, w, b)
    ref = x.double() @ w.double().T + (b.double() if bias else 0.0)
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)
    g = torch.randn(7, 3, 6)
    got = torch.autograd.grad(y, [x, w] + ([b] if bias else []), g)
    x64, w64 = x.detach().double(), w.detach().double()
    g64 = g.double()
    expected = [g64 @ w64, g64.reshape(-1, 6).T @ x64.reshape(-1, 10)] + ([g64.sum((0, 1))] if bias else [])
    for a, e in zip(got, expected, strict=True):
        torch.testing.assert_close(a.double(), e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("d_in, d_out", [(5, 23), (23, 5), (9, 11)])  # each weight-gradient layout
def test_linear_onednn_path_gradients_match_float64(d_in, d_out):
    """Enough rows for oneDNN (>= MIN_ROWS): forward, dx, dW (whichever operand's transpose is copied) and db
    against float64, on a non-contiguous (rows 10 x 7, in) input."""
    torch.manual_seed(11)
    x = torch.randn(7, 10, d_in).transpose(0, 1).requires_grad_()  # (10, 7, in): 70 rows
    w = torch.randn(d_out, d_in, requires_grad=True)
    b = torch.randn(d_out, requires_grad=True)
    assert x.numel() // d_in >= onednn_linear.MIN_ROWS
    y = linear(x, w, b)
    x64, w64, b64 = x.detach().double(), w.detach().double(), b.detach().double()
    torch.testing.assert_close(y.double(), x64 @ w64.T + b64, rtol=1e-5, atol=1e-5)
    g = torch.randn(10, 7, d_out)
    got = torch.autograd.grad(y, [x, w, b], g)
    g64 = g.double()
    expected = [g64 @ w64, g64.reshape(-1, d_out).T @ x64.reshape(-1, d_in), g64.sum((0, 1))]
    for a, e in zip(got, expected, strict=True):
        assert a.shape == e.shape
        torch.testing.assert_close(a.double(), e, rtol=1e-5, atol=1e-5)


def test_linear_module_is_an_nn_linear_with_the_same_result():
    torch.manual_seed(9)
    m = Linear(4, 3)
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

    for a, e in zip(second(linear), second(F.linear), strict=True):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


def test_linear_respects_cpu_autocast():
    m = Linear(4, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert m(torch.randn(2, 4)).dtype == torch.bfloat16


# ----------------------------------------------------------------------------- weights, loss, the switch


@pytest.mark.parametrize("causal", [False, True])
def test_attention_with_weights_equals_functional_twin(causal):
    g = torch.Generator().manual_seed(11)
    B, H, Tq, Tk, D, Dv = 2, 3, 5, 7, 4, 6
    q, k, v = torch.randn(B, H, Tq, D, generator=g), torch.randn(B, H, Tk, D, generator=g), torch.randn(B, H, Tk, Dv, generator=g)
    mask = torch.rand(B, 1, Tq, Tk, generator=g) > 0.3
    mask[0, 0, 1] = False  # one query with no allowed key: zeros, not NaN
    with torch.no_grad():
        out, w = attention_with_weights(q, k, v, D**-0.5, mask, causal)
        ref, ref_w = attention(q.double(), k.double(), v.double(), mask=mask, causal=causal, return_weights=True)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w.double(), ref_w, rtol=1e-5, atol=1e-5)
    assert torch.equal(w[0, :, 1], torch.zeros_like(w[0, :, 1]))


def test_next_token_loss_fast_and_plain_agree():
    g = torch.Generator().manual_seed(12)
    logits = torch.randn(3, 5, 11, dtype=torch.float64, generator=g, requires_grad=True)
    labels = torch.randint(11, (3, 5), generator=g)
    labels[1, 2] = -100
    grads = []
    for fast in (True, False):
        with fast_paths(fast):
            loss = next_token_loss(logits, labels)
            grads.append((loss.detach(), torch.autograd.grad(loss, logits)[0]))
    ref = F.cross_entropy(logits.detach()[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1))
    torch.testing.assert_close(grads[0][0], ref)
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_switch_turns_every_fast_path_off(monkeypatch):
    """With the fast paths off no kernel runs: the keep mask is never drawn by attnkit and the weights
    path is the functional one."""
    calls = []
    for module in (dropout_mask, causal_dropout):
        monkeypatch.setattr(module, "keep_mask", lambda like, p: calls.append(p) or torch.ones_like(like))
    x = torch.randn(2, 3, 6, 4)
    w = torch.randn(12, 4, requires_grad=True)
    with fast_paths(False):
        assert not kernels.fast_paths_enabled()
        dropout(x, 0.5)
        causal_dropout_attention(x, x, x, 0.5)
        q, _, _ = packed_heads(x[0], w, None, heads=2)
        assert q.grad_fn.name() != "_PackedHeadsBackward"  # autograd through the plain twin
    assert calls == [] and kernels.fast_paths_enabled()
    with pytest.raises(TypeError, match="Expected enabled to be a bool"):
        kernels.set_fast_paths("no")


# ----------------------------------------------------------------------------- decoding weights


def test_transposed_weights_products_match_float64():
    """Few-row products inside the block use transposed copies and equal the float64 product; a view of a
    weight gets its own copy, an in-place change of a weight is seen, bias and 3-D inputs work."""
    torch.manual_seed(12)
    w, b = torch.randn(13, 6), torch.randn(13)
    x = torch.randn(2, 3, 6)  # 6 rows < MIN_ROWS
    ref = x.double() @ w.double().T + b.double()
    with torch.inference_mode(), decoding_weights.transposed_weights():
        y = linear(x, w, b)
        assert decoding_weights.transposed_copy(x, w) is decoding_weights.transposed_copy(x, w)  # made once
        half = linear(x[..., :4], w[:, :4])  # a view: its own (4, 13) copy
        w.mul_(2.0)  # the next call sees the new weights
        y2 = linear(x, w, b)
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(half.double(), x[..., :4].double() @ (w[:, :4].double() / 2).T, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y2.double(), x.double() @ w.double().T + b.double(), rtol=1e-5, atol=1e-5)


def test_transposed_weights_only_where_they_apply(monkeypatch):
    """No copy outside the block, under autograd, with the fast paths off, or past the memory budget."""
    w = torch.randn(5, 3, requires_grad=True)
    x = torch.randn(1, 3)
    assert decoding_weights.transposed_copy(x, w) is None
    with decoding_weights.transposed_weights():
        assert decoding_weights.transposed_copy(x, w) is None  # grad mode and a weight that requires grad
        with torch.no_grad():
            with fast_paths(False):
                assert decoding_weights.transposed_copy(x, w) is None
            monkeypatch.setattr(decoding_weights, "MAX_BYTES", 4 * 14)
            assert decoding_weights.transposed_copy(x, w) is None  # 15 floats > 14
            monkeypatch.setattr(decoding_weights, "MAX_BYTES", 4 * 15)
            assert decoding_weights.transposed_copy(x, w).shape == (3, 5)


# ----------------------------------------------------------------------------- packed heads


@pytest.mark.parametrize("used", ["qkv", "q", "kv"])
def test_packed_heads_gradients_match_float64(used):
    """Forward and every gradient of the packed projection against float64 (B 3, T 70, D 10, H 2, Dh 4: pairwise
    different; 210 rows so the oneDNN product runs), also when some of q, k, v are unused (None gradients)."""
    torch.manual_seed(13)
    B, T, D, H, Dh = 3, 70, 10, 2, 4
    x = torch.randn(B, T, D, requires_grad=True)
    w = torch.randn(3 * H * Dh, D, requires_grad=True)
    b = torch.randn(3 * H * Dh, requires_grad=True)
    q, k, v = packed_heads(x, w, b, heads=H)
    assert q.shape == k.shape == v.shape == (B, H, T, Dh)
    x64, w64, b64 = x.detach().double().requires_grad_(), w.detach().double().requires_grad_(), b.detach().double().requires_grad_()
    ref = (x64 @ w64.T + b64).view(B, T, 3, H, Dh).permute(2, 0, 3, 1, 4)  # (3, B, H, T, Dh)
    torch.testing.assert_close(torch.stack([q, k, v]).double(), ref, rtol=1e-5, atol=1e-5)
    g = torch.randn(3, B, H, T, Dh)
    picks = {"qkv": [0, 1, 2], "q": [0], "kv": [1, 2]}[used]
    loss = sum(((q, k, v)[i] * g[i]).sum() for i in picks)
    loss64 = sum((ref[i] * g[i].double()).sum() for i in picks)
    got = torch.autograd.grad(loss, [x, w, b])
    expected = torch.autograd.grad(loss64, [x64, w64, b64])
    for a, e in zip(got, expected, strict=True):
        torch.testing.assert_close(a.double(), e, rtol=1e-5, atol=1e-5)


def test_packed_heads_second_derivatives_match_the_plain_twin():
    torch.manual_seed(14)
    x = torch.randn(2, 33, 6, requires_grad=True)
    w = torch.randn(3 * 3 * 2, 6, requires_grad=True)

    def second(fn):
        q, k, v = fn(x, w)
        (gx,) = torch.autograd.grad((q * k).sum() + v.pow(2).sum(), x, create_graph=True)
        return torch.autograd.grad(gx.pow(2).sum(), w)

    plain = lambda x, w: F.linear(x, w).view(2, 33, 3, 3, 2).permute(2, 0, 3, 1, 4).unbind(0)  # noqa: E731
    torch.testing.assert_close(second(lambda x, w: packed_heads(x, w, None, 3)), second(plain), rtol=1e-4, atol=1e-4)


def test_packed_heads_under_cpu_autocast_trains_like_the_plain_twin():
    """Under bfloat16 autocast the products run in bfloat16 and the gradients come back in the parameters' dtype."""
    torch.manual_seed(15)
    x = torch.randn(2, 40, 8, requires_grad=True)
    w = torch.randn(3 * 2 * 4, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q, k, v = packed_heads(x, w, None, heads=2)
        loss = (q * k).sum() + v.sum()
    assert q.dtype == torch.bfloat16
    gx, gw = torch.autograd.grad(loss.float(), [x, w])
    assert gx.dtype == gw.dtype == torch.float32 and torch.isfinite(gw).all()
