"""Keras-compatible ``Attention`` and ``AdditiveAttention``: parity with Keras 3 (torch backend), hand-worked cases.

Only the tests that take the ``keras`` fixture (tests/layers/conftest.py) need Keras; they skip one by
one when it is missing, the others always run.
"""

from __future__ import annotations

import pytest
import torch

from attnkit.layers.additive import AdditiveAttention
from attnkit.layers.attention import Attention

ATOL = 1e-5


def _inputs(b=2, tq=4, tv=6, d=5, dv=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, tq, d, generator=g)
    v = torch.randn(b, tv, dv, generator=g)
    k = torch.randn(b, tv, d, generator=g)
    vm = torch.ones(b, tv, dtype=torch.bool)
    vm[0, 4:] = False  # padding in the first sequence; no query row is fully masked
    qm = torch.ones(b, tq, dtype=torch.bool)
    qm[1, 3:] = False
    return q, v, k, qm, vm


def _keras(keras, layer, q, v, k, qm, vm, causal):
    out, w = layer([q, v, k], mask=[qm, vm], return_attention_scores=True, use_causal_mask=causal)
    return torch.as_tensor(keras.ops.convert_to_numpy(out)), torch.as_tensor(keras.ops.convert_to_numpy(w))


@pytest.mark.parametrize("score_mode", ["dot", "concat"])
@pytest.mark.parametrize("use_scale", [False, True])
@pytest.mark.parametrize("masks", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_keras(keras, score_mode, use_scale, masks, causal):
    q, v, k, qm, vm = _inputs()
    qm, vm = (qm, vm) if masks else (None, None)
    ref_layer = keras.layers.Attention(use_scale=use_scale, score_mode=score_mode)
    ref_layer([q, v, k])  # build
    if use_scale:
        ref_layer.scale.assign(0.7)
    if score_mode == "concat":
        ref_layer.concat_score_weight.assign(1.3)
    ref_out, ref_w = _keras(keras, ref_layer, q, v, k, qm, vm, causal)
    layer = Attention.from_keras(ref_layer)
    out, w = layer(q, v, k, query_mask=qm, value_mask=vm, use_causal_mask=causal, return_attention_scores=True)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(w, ref_w, atol=ATOL, rtol=0)
    fast = layer(q, v, k, query_mask=qm, value_mask=vm, use_causal_mask=causal)
    torch.testing.assert_close(fast, out, atol=1e-6, rtol=0)


@pytest.mark.parametrize("use_scale", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_additive_matches_keras(keras, use_scale, causal):
    q, v, k, qm, vm = _inputs(seed=1)
    ref_layer = keras.layers.AdditiveAttention(use_scale=use_scale)
    ref_layer([q, v, k])
    ref_out, ref_w = _keras(keras, ref_layer, q, v, k, qm, vm, causal)
    layer = AdditiveAttention.from_keras(ref_layer)
    out, w = layer(q, v, k, query_mask=qm, value_mask=vm, use_causal_mask=causal, return_attention_scores=True)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(w, ref_w, atol=ATOL, rtol=0)
    fast = layer(q, v, k, query_mask=qm, value_mask=vm, use_causal_mask=causal)
    torch.testing.assert_close(fast, out, atol=1e-6, rtol=0)


def test_key_defaults_to_value_and_hand_worked_dot():
    # B=1, Tq=2, Tv=3, D=4 (pairwise different). keys = values = the first three unit vectors:
    # q_0 = e_0 scores (1, 0, 0), weights (e, 1, 1)/(e+2); q_1 = 2 e_2 scores (0, 0, 2), weights (1, 1, e^2)/(e^2+2).
    q = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]]])
    v = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]])
    out, w = Attention()(q, v, return_attention_scores=True)
    e = torch.e
    w0, w1 = [e / (e + 2), 1 / (e + 2), 1 / (e + 2)], [1 / (e**2 + 2), 1 / (e**2 + 2), e**2 / (e**2 + 2)]
    torch.testing.assert_close(w, torch.tensor([[w0, w1]]))
    torch.testing.assert_close(out, torch.tensor([[[*w0, 0.0], [*w1, 0.0]]]))


@pytest.mark.parametrize("layer", [Attention(), Attention(score_mode="concat"), AdditiveAttention()])
def test_fully_masked_rows_give_zeros_without_nan(layer):
    q, v, k, _, vm = _inputs()
    vm[1] = False  # every key of sequence 1 masked
    q = q.clone().requires_grad_(True)
    out, w = layer(q, v, k, value_mask=vm, return_attention_scores=True)
    assert torch.all(out[1] == 0) and torch.all(w[1] == 0)
    out.sum().backward()
    assert torch.isfinite(q.grad).all()


def test_dropout_only_in_training_mode():
    q, v, k, _, _ = _inputs()
    layer = Attention(dropout=0.5).eval()
    torch.testing.assert_close(layer(q, v, k), Attention()(q, v, k))
    layer.train()
    torch.manual_seed(0)
    assert not torch.allclose(layer(q, v, k), Attention()(q, v, k))


def test_additive_builds_lazily_and_checks_width():
    layer = AdditiveAttention()
    assert layer.dim is None and isinstance(layer.scale, torch.nn.parameter.UninitializedParameter)  # torch's lazy contract
    layer(torch.randn(1, 2, 4), torch.randn(1, 3, 4))
    assert layer.scale.shape == (4,)
    with pytest.raises(ValueError, match=r"Expected `query` with last dimension 4.*Received: query.shape=\(1, 2, 6\)"):
        layer(torch.randn(1, 2, 6), torch.randn(1, 3, 6))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"Expected `score_mode` in .*Received: score_mode='tanh'"):
        Attention(score_mode="tanh")
    q, v, k, _, _ = _inputs()
    with pytest.raises(ValueError, match=r"Expected `value_mask` of shape \(2, 6\). Received: value_mask.shape=\(2, 5\)"):
        Attention()(q, v, k, value_mask=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"Expected `query_mask` of shape \(2, 4\). Received: query_mask.shape=\(4, 2\)"):
        Attention()(q, v, k, query_mask=torch.ones(4, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"Expected `value_mask` of dtype torch.bool or of 0/1 values"):
        Attention()(q, v, k, value_mask=torch.full((2, 6), float("-inf")))  # 0/1 masks are cast, as in Keras
    with pytest.raises(ValueError, match=r"Expected `query` of rank 3. Received: query.shape=\(4, 5\)"):
        Attention()(q[0], v, k)
    with pytest.raises(ValueError, match=r"Expected key with the query's last dimension 5"):
        Attention()(q, v, v)


def test_from_keras_refuses_the_wrong_or_an_unbuilt_layer(keras):
    with pytest.raises(TypeError, match=r"Expected a keras.layers.Attention"):
        Attention.from_keras(keras.layers.AdditiveAttention())
    with pytest.raises(ValueError, match=r"Expected a built Keras layer"):
        AdditiveAttention.from_keras(keras.layers.AdditiveAttention())
