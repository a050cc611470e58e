"""Keras' ``training=`` call argument on the Keras-compatible layers, against Keras 3 (torch backend).

Keras drops out the attention weights only when a call says ``training=True``; attnkit does the same for
that call, and without the argument follows the module's ``.train()`` / ``.eval()`` mode.

Sizes are pairwise different: B=2, Tq=3, Tv=5, D=4, Dv=6; MultiHeadAttention H=7 heads of width 8.
"""

from __future__ import annotations

import pytest
import torch

from attnkit.layers import AdditiveAttention, Attention, MultiHeadAttention

B, TQ, TV, D, DV = 2, 3, 5, 4, 6
H, DK = 7, 8
CLASSES = {"Attention": Attention, "AdditiveAttention": AdditiveAttention, "MultiHeadAttention": MultiHeadAttention}


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(B, TQ, D, generator=g), torch.randn(B, TV, DV, generator=g), torch.randn(B, TV, D, generator=g)


def _np(keras, x):
    return torch.as_tensor(keras.ops.convert_to_numpy(x))


def _pair(keras, name, rate=0.5):
    """A Keras layer with dropout ``rate``, called once to build it, and attnkit's port of it."""
    q, v, k = _inputs()
    if name == "MultiHeadAttention":
        ref = keras.layers.MultiHeadAttention(num_heads=H, key_dim=DK, dropout=rate)
    else:
        ref = getattr(keras.layers, name)(dropout=rate)
    ref(q, v, k) if name == "MultiHeadAttention" else ref([q, v, k])
    return ref, CLASSES[name].from_keras(ref)


def _call(layer, training):
    """One call with ``training=``: Keras' list style for Attention/AdditiveAttention, (q, v, k) for MHA."""
    q, v, k = _inputs()
    if type(layer).__name__ == "MultiHeadAttention":
        return layer(q, v, k, training=training)
    return layer([q, v, k], training=training)


@pytest.mark.parametrize("name", list(CLASSES))
def test_training_false_matches_keras_and_training_true_drops_out_as_keras(keras, name):
    ref, ours = _pair(keras, name)
    ours.train()                                           # the argument wins over the module's mode
    keras_eval = _np(keras, _call(ref, False))
    torch.testing.assert_close(_call(ours, False), keras_eval, rtol=1e-5, atol=1e-5)
    keras_drop = _np(keras, _call(ref, True))
    assert not torch.allclose(keras_drop, keras_eval)      # Keras drops out with training=True ...
    ours.eval()
    assert not torch.allclose(_call(ours, True), keras_eval)  # ... and so does attnkit, even in eval mode
    torch.testing.assert_close(_call(ours, None), keras_eval, rtol=1e-5, atol=1e-5)  # None: eval mode


@pytest.mark.parametrize("name", list(CLASSES))
def test_training_true_is_the_train_mode_call_and_unbiased(name):
    layer = CLASSES[name](num_heads=H, key_dim=DK, dropout=0.5) if name == "MultiHeadAttention" \
        else CLASSES[name](dropout=0.5)
    q, v, k = _inputs()
    layer(q, v, k)                                         # build a lazy layer before drawing the masks
    torch.manual_seed(3)
    forced = layer.eval()(q, v, k, training=True)
    torch.manual_seed(3)
    torch.testing.assert_close(forced, layer.train()(q, v, k))  # same draws: training=True is train mode
    # Inverted dropout keeps the expectation: the mean over many dropped-out calls is the eval output.
    n = 4000
    qs, vs, ks = (x.repeat(n, 1, 1) for x in (q, v, k))   # (n*B, T, D)
    mean = layer(qs, vs, ks, training=True).view(n, B, TQ, -1).mean(0)
    expected = layer(q, v, k, training=False)
    torch.testing.assert_close(mean, expected, rtol=0, atol=0.06)


def test_training_must_be_a_bool_or_none():
    q, v, k = _inputs()
    with pytest.raises(TypeError, match=r"Expected training=True, False or None. Received: training='yes'"):
        Attention(dropout=0.1)(q, v, k, training="yes")  # type: ignore[arg-type]
