"""``MultiHeadAttention``: parity with Keras 3 (torch backend) and ``torch.nn.MultiheadAttention``."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from attnkit.layers.multi_head import MultiHeadAttention

# Keras parity tests take the ``keras`` fixture (tests/layers/conftest.py): without Keras only they skip.

ATOL = 1e-5


def _keras():
    os.environ["KERAS_BACKEND"] = "torch"
    import keras

    return keras


def _np(x):
    return torch.as_tensor(_keras().ops.convert_to_numpy(x))


def _randomize(layer, seed=0):
    """Random kernels *and* biases, so that copying biases is checked too."""
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.standard_normal(tuple(w.shape)).astype("float32") * 0.3)


def _keras_mha(q, v, k=None, **kwargs):
    layer = _keras().layers.MultiHeadAttention(**kwargs)
    layer(q, v, k)
    _randomize(layer)
    return layer


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("output_shape", [None, (8, 11)])
def test_matches_keras_value_dim_and_output_shape(keras, output_shape):
    # B=2, Tq=5, Tk=7, query/value/key widths 12/10/6, H=3, Dk=4, Dv=9: pairwise different
    q, v, k = _rand(2, 5, 12), _rand(2, 7, 10, seed=1), _rand(2, 7, 6, seed=2)
    ref = _keras_mha(q, v, k, num_heads=3, key_dim=4, value_dim=9, output_shape=output_shape)
    ref_out, ref_w = ref(q, v, k, return_attention_scores=True)
    layer = MultiHeadAttention.from_keras(ref)
    out, w = layer(q, v, k, return_attention_scores=True)
    torch.testing.assert_close(out, _np(ref_out), atol=ATOL, rtol=0)
    torch.testing.assert_close(w, _np(ref_w), atol=ATOL, rtol=0)
    assert out.shape == (2, 5, *(output_shape or (12,)))
    torch.testing.assert_close(layer(q, v, k), out, atol=1e-6, rtol=0)


@pytest.mark.parametrize("causal", [False, True])
def test_matches_keras_masks_and_causal(keras, causal):
    x = _rand(3, 6, 8)  # B=3, T=6 (self-attention: Tq = Tk), E=8, H=2, Dk=4, Dv=5
    ref = _keras_mha(x, x, num_heads=2, key_dim=4, value_dim=5)
    vm = torch.ones(3, 6, dtype=torch.bool)
    vm[1, 4:] = False
    am = _rand(3, 6, 6, seed=3) > -0.8
    am[:, :, 0] = True  # every query keeps key 0, so no row is fully masked
    ref_out, ref_w = ref(x, x, value_mask=vm, attention_mask=am, use_causal_mask=causal, return_attention_scores=True)
    layer = MultiHeadAttention.from_keras(ref)
    out, w = layer(x, x, value_mask=vm, attention_mask=am, use_causal_mask=causal, return_attention_scores=True)
    torch.testing.assert_close(out, _np(ref_out), atol=ATOL, rtol=0)
    torch.testing.assert_close(w, _np(ref_w), atol=ATOL, rtol=0)
    fast = layer(x, x, value_mask=vm, attention_mask=am, use_causal_mask=causal)
    torch.testing.assert_close(fast, out, atol=1e-6, rtol=0)
    # causal only: the fused causal kernel
    ref_c = _np(ref(x, x, use_causal_mask=causal))
    torch.testing.assert_close(layer(x, x, use_causal_mask=causal), ref_c, atol=ATOL, rtol=0)


def test_query_mask_keeps_real_rows_and_zeros_padded_weights(keras):
    x = _rand(3, 5, 8)  # B=3, T=5 (self-attention), E=8, H=2, Dk=4, Dv=6
    ref = _keras_mha(x, x, num_heads=2, key_dim=4, value_dim=6)
    layer = MultiHeadAttention.from_keras(ref)
    qm = torch.tensor([[True] * 5, [True, True, True, False, False], [True] * 5])
    out, w = layer(x, x, query_mask=qm, return_attention_scores=True)
    ref_out = _np(ref(x, x))
    torch.testing.assert_close(out[qm], ref_out[qm], atol=ATOL, rtol=0)
    assert torch.all(w[1, :, 3:] == 0)
    # a padded query row outputs just the output bias
    torch.testing.assert_close(out[1, 3], layer.output_dense.bias.expand(8), atol=1e-6, rtol=0)


@pytest.mark.parametrize("axes", [(1, 2), (2,), (-3,), (-2, -3)])
def test_matches_keras_attention_axes(keras, axes):
    # B=2, axes of 3 and 4 (the value's second axis 5 with axes=(2,)), E=6, Ev=10, H=7, Dk=8, Dv=9
    q, v = _rand(2, 3, 4, 6), _rand(2, 3, 5, 10, seed=1) if axes == (2,) else _rand(2, 3, 4, 10, seed=1)
    ref = _keras_mha(q, v, num_heads=7, key_dim=8, value_dim=9, attention_axes=axes)
    ref_out, ref_w = ref(q, v, return_attention_scores=True)
    layer = MultiHeadAttention.from_keras(ref)
    out, w = layer(q, v, return_attention_scores=True)
    torch.testing.assert_close(out, _np(ref_out), atol=ATOL, rtol=0)
    torch.testing.assert_close(w, _np(ref_w), atol=ATOL, rtol=0)
    torch.testing.assert_close(layer(q, v), out, atol=1e-6, rtol=0)


def test_matches_keras_attention_mask_over_two_axes(keras):
    x = _rand(2, 3, 4, 6)  # B=2, axes of 3 and 4, E=6, H=5, Dk=7, Dv=8 (self-attention: query axes = key axes)
    ref = _keras_mha(x, x, num_heads=5, key_dim=7, value_dim=8, attention_axes=(1, 2))
    am = _rand(2, 3, 4, 3, 4, seed=5) > -0.5
    am[..., 0, 0] = True
    ref_out = _np(ref(x, x, attention_mask=am))
    layer = MultiHeadAttention.from_keras(ref)
    torch.testing.assert_close(layer(x, x, attention_mask=am), ref_out, atol=ATOL, rtol=0)


def test_matches_keras_grouped_query_attention(keras):
    # B=3, Tq=5, Tk=6, query width 8, context width 9, H=4, Hkv=2, Dh=7 (Keras's GQA has one head_dim for k and v)
    x, ctx = _rand(3, 5, 8), _rand(3, 6, 9, seed=1)
    ref = keras.layers.GroupQueryAttention(head_dim=7, num_query_heads=4, num_key_value_heads=2)
    ref(x, ctx)
    _randomize(ref)
    ref_out, ref_w = ref(x, ctx, return_attention_scores=True)
    layer = MultiHeadAttention.from_keras(ref)
    assert layer.num_key_value_heads == 2
    out, w = layer(x, ctx, return_attention_scores=True)
    torch.testing.assert_close(out, _np(ref_out), atol=ATOL, rtol=0)
    torch.testing.assert_close(w, _np(ref_w), atol=ATOL, rtol=0)
    torch.testing.assert_close(layer(x, ctx), out, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("kdim", "vdim"), [(None, None), (10, 11)])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_multihead_attention(kdim, vdim, bias):
    # B=3, Tq=5, Tk=7, E=24, H=4, key/value input widths 10/11 (or E); torch fixes the head width at E/H = 6
    torch.manual_seed(0)
    e, h = 24, 4
    ref = nn.MultiheadAttention(e, h, batch_first=True, kdim=kdim, vdim=vdim, bias=bias).eval()
    if bias:
        with torch.no_grad():
            ref.in_proj_bias.normal_() if ref.in_proj_bias is not None else None
            ref.out_proj.bias.normal_()
    q, v = _rand(3, 5, e), _rand(3, 7, vdim or e, seed=1)
    k = v if kdim is None else _rand(3, 7, kdim, seed=4)  # without kdim: one tensor as key and value
    pad = torch.zeros(3, 7, dtype=torch.bool)  # torch: True = ignore
    pad[0, 5:] = True
    blocked = _rand(5, 7, seed=2) > 0.7  # torch: True = not allowed
    blocked[:, 0] = False
    with torch.no_grad():
        ref_out, ref_w = ref(q, k, v, key_padding_mask=pad, attn_mask=blocked, average_attn_weights=False)
    layer = MultiHeadAttention.from_torch(ref)
    out, w = layer(q, v, k, value_mask=~pad, attention_mask=~blocked, return_attention_scores=True)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(w, ref_w, atol=ATOL, rtol=0)
    torch.testing.assert_close(layer(q, v, k, value_mask=~pad, attention_mask=~blocked), out, atol=1e-6, rtol=0)


def test_matches_torch_per_head_attn_mask_and_gradients():
    torch.manual_seed(1)
    ref = nn.MultiheadAttention(15, 3, batch_first=True)  # E=15, H=3, head width 5
    x = _rand(2, 4, 15).requires_grad_(True)  # B=2, T=4 (self-attention: Tq = Tk)
    blocked = _rand(2 * 3, 4, 4, seed=3) > 0.5  # (N = B*H, Tq, Tk)
    blocked[..., 0] = False
    out_ref, _ = ref(x, x, x, attn_mask=blocked, need_weights=False)
    (g_ref,) = torch.autograd.grad(out_ref.square().sum(), x)
    layer = MultiHeadAttention.from_torch(ref)
    out = layer(x, x, attention_mask=~blocked.view(2, 3, 4, 4))  # (B, H, Tq, Tk)
    (g,) = torch.autograd.grad(out.square().sum(), x)
    torch.testing.assert_close(out, out_ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(g, g_ref, atol=1e-4, rtol=0)


def test_against_naive_float64_gqa():
    # B=6, T=5 (self-attention: Tq = Tk), E=8, H=4, Hkv=2, Dk=3, Dv=7
    layer = MultiHeadAttention(num_heads=4, key_dim=3, value_dim=7, num_key_value_heads=2, query_dim=8).double()
    x = _rand(6, 5, 8).double()
    out, w = layer(x, x, return_attention_scores=True)
    q = layer.query_dense(x).view(6, 5, 4, 3)  # (B, T, H, Dk)
    k = layer.key_dense(x).view(6, 5, 2, 3)  # (B, T, Hkv, Dk)
    v = layer.value_dense(x).view(6, 5, 2, 7)  # (B, T, Hkv, Dv)
    heads = []
    for hd in range(4):
        g = hd // 2  # query heads 0,1 share kv head 0; 2,3 share kv head 1
        s = q[:, :, hd] @ k[:, :, g].transpose(1, 2) / math.sqrt(3)
        a = torch.softmax(s, -1)
        torch.testing.assert_close(w[:, hd], a)
        heads.append(a @ v[:, :, g])
    expected = layer.output_dense(torch.cat(heads, -1))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(layer(x, x), out)


@pytest.mark.filterwarnings("ignore:value_mask leaves batch row")  # the row with no key is the point here
def test_fully_masked_rows_no_nan_in_outputs_or_gradients():
    layer = MultiHeadAttention(2, 4, value_dim=6, query_dim=8)  # B=3, T=5, H=2, Dk=4, Dv=6, E=8
    x = _rand(3, 5, 8).requires_grad_(True)
    vm = torch.ones(3, 5, dtype=torch.bool)
    vm[1] = False
    for weights in (False, True):
        res = layer(x, x, value_mask=vm, return_attention_scores=weights)
        out = res[0] if weights else res
        if weights:
            assert torch.all(res[1][1] == 0)
        torch.testing.assert_close(out[1], layer.output_dense.bias.expand(5, 8))
        (g,) = torch.autograd.grad(out.sum(), x)
        assert torch.isfinite(g).all()


def test_builds_lazily_on_first_call_and_checks_sizes():
    layer = MultiHeadAttention(2, 4)  # B=1, Tq=3, Tk=5, query width 6, value width 10, H=2, Dk=4
    assert not layer.built and all(isinstance(p, nn.parameter.UninitializedParameter) for p in layer.parameters())
    layer(_rand(1, 3, 6), _rand(1, 5, 10))
    assert layer.query_dense.in_features == 6 and layer.value_dense.in_features == 10
    with pytest.raises(ValueError, match=r"Expected `query` with last dimension 6 .*Received: query.shape=\(1, 3, 7\)"):
        layer(_rand(1, 3, 7), _rand(1, 5, 10))


def test_bad_input_messages(keras):
    with pytest.raises(ValueError, match=r"divisible by `num_key_value_heads`. Received: num_heads=4, num_key_value_heads=3"):
        MultiHeadAttention(4, 2, num_key_value_heads=3)
    with pytest.raises(ValueError, match=r"Expected `num_heads` to be a positive integer. Received: num_heads=0"):
        MultiHeadAttention(0, 2)
    layer = MultiHeadAttention(2, 4, attention_axes=(3,))
    with pytest.raises(ValueError, match=r"Expected `attention_axes` .*\[1, 2\].*Received: attention_axes=\(3,\)"):
        layer(_rand(1, 3, 5, 6), _rand(1, 3, 5, 6))
    x = _rand(3, 5, 8)  # B=3, T=5, E=8 for H=2, Dk=4
    layer = MultiHeadAttention(2, 4)
    with pytest.raises(ValueError, match=r"Expected `value_mask` of shape \(3, 5\). Received: value_mask.shape=\(3, 7\)"):
        layer(x, x, value_mask=torch.ones(3, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"Expected `attention_mask` of shape \(3, 2, 5, 5\). Received: attention_mask.shape=\(3, 7, 5, 5\)"):
        layer(x, x, attention_mask=torch.ones(3, 7, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"Expected `attention_mask` of shape \(5, 5\). Received: attention_mask.shape=\(5, 4\)"):
        layer(x, x, attention_mask=torch.ones(5, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"Expected `query` of rank >= 3"):
        layer(x[0], x[0])
    with pytest.raises(TypeError, match=r"Expected a torch.nn.MultiheadAttention. Received: Linear"):
        MultiHeadAttention.from_torch(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"add_bias_kv=False. Received: add_bias_kv=True"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(ValueError, match=r"add_zero_attn=False. Received: add_zero_attn=True"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_zero_attn=True))
    with pytest.raises(ValueError, match=r"Expected a built Keras layer"):
        MultiHeadAttention.from_keras(keras.layers.MultiHeadAttention(2, 4))
    gated = keras.layers.MultiHeadAttention(2, 4, use_gate=True)
    gated(x, x)
    with pytest.raises(ValueError, match=r"use_gate=False .*Received: use_gate=True"):
        MultiHeadAttention.from_keras(gated)
    with pytest.raises(TypeError, match=r"Expected a keras.layers.MultiHeadAttention or GroupQueryAttention"):
        MultiHeadAttention.from_keras(keras.layers.Attention())


def test_dropout_only_in_training_mode():
    layer = MultiHeadAttention(2, 4, value_dim=6, dropout=0.5, query_dim=8)
    x = _rand(3, 5, 8)
    layer.eval()
    a = layer(x, x)
    torch.testing.assert_close(layer(x, x), a)
    layer.train()
    assert not torch.allclose(layer(x, x), a)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.filterwarnings("ignore:value_mask leaves batch row")  # the fully masked sequence is on purpose
def test_inference_weights_path_agrees_with_autograd_path(causal):
    # Under no_grad the weights come from an in-place softmax; with autograd from attnkit.functional.
    layer = MultiHeadAttention(2, 4, value_dim=6, query_dim=8)  # B=3, T=5, H=2, Dk=4, Dv=6, E=8
    x = _rand(3, 5, 8)
    vm = torch.ones(3, 5, dtype=torch.bool)
    vm[1, 2:] = False
    vm[2] = False  # a fully masked sequence
    out_g, w_g = layer(x, x, value_mask=vm, use_causal_mask=causal, return_attention_scores=True)
    with torch.no_grad():
        out_n, w_n = layer(x, x, value_mask=vm, use_causal_mask=causal, return_attention_scores=True)
        fast = layer(x, x, value_mask=vm, use_causal_mask=causal)
    assert w_g.requires_grad and not w_n.requires_grad
    torch.testing.assert_close(w_n, w_g, atol=1e-6, rtol=0)
    torch.testing.assert_close(out_n, out_g, atol=1e-6, rtol=0)
    torch.testing.assert_close(fast, out_n, atol=1e-6, rtol=0)
    assert torch.all(w_n[2] == 0)


def test_multi_axis_errors_name_the_problem():
    layer = MultiHeadAttention(2, 4, attention_axes=(1, 2))
    x = _rand(1, 3, 5, 6)  # B=1, axes of 3 and 5, E=6, H=2, Dk=4
    with pytest.raises(ValueError, match=r"Expected a single attention axis with `use_causal_mask=True`. Received: attention_axes=\(1, 2\)"):
        layer(x, x, use_causal_mask=True)
    from attnkit.layers.kv_cache import KVCache

    with pytest.raises(ValueError, match=r"Expected no `cache` with multi-axis attention"):
        layer(x, x, cache=KVCache())
    with pytest.raises(ValueError, match=r"Expected `attention_mask` of shape \(1, 2, 3, 5, 3, 5\)"):  # (B, H, *q axes, *k axes)
        layer(x, x, attention_mask=torch.ones(1, 3, 5, 5, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"Expected query and value to agree on the non-attention axes \(0, 1\)"):
        MultiHeadAttention(2, 4, attention_axes=(2,))(x, _rand(1, 7, 5, 6))


def test_keras_batch_pair_mask_with_batch_unlike_heads():
    """A (B, Tq, Tk) attention_mask is Keras's standard pair mask: it must work when B != H (it was once
    checked against (H, Tq, Tk)), and equal a naive float64 computation with per-example masks."""
    torch.manual_seed(0)
    B, H, Tq, Tk, E, Dh, Dv = 3, 4, 5, 6, 7, 2, 8
    mha = MultiHeadAttention(num_heads=H, key_dim=Dh, value_dim=Dv, query_dim=E).double()
    q, v = torch.randn(B, Tq, E, dtype=torch.float64), torch.randn(B, Tk, E, dtype=torch.float64)
    mask = torch.rand(B, Tq, Tk) > 0.4
    mask[:, :, 0] = True
    out, w = mha(q, v, attention_mask=mask, return_attention_scores=True)
    assert w.shape == (B, H, Tq, Tk)
    with torch.no_grad():
        wq, bq = mha.query_dense.weight, mha.query_dense.bias
        wk, bk = mha.key_dense.weight, mha.key_dense.bias
        wv, bv = mha.value_dense.weight, mha.value_dense.bias
        Q = (q @ wq.T + bq).view(B, Tq, H, Dh).transpose(1, 2)
        K = (v @ wk.T + bk).view(B, Tk, H, Dh).transpose(1, 2)
        V = (v @ wv.T + bv).view(B, Tk, H, Dv).transpose(1, 2)
        p = (Q @ K.transpose(-1, -2) / Dh**0.5).masked_fill(~mask[:, None], float("-inf")).softmax(-1)
        ref = (p @ V).transpose(1, 2).reshape(B, Tq, H * Dv) @ mha.output_dense.weight.T + mha.output_dense.bias
    torch.testing.assert_close(w, p)
    torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match=r"Expected `attention_mask` of shape \(3, 5, 6\)"):
        mha(q, v, attention_mask=torch.ones(H, Tq, Tk, dtype=torch.bool))
