"""When ``MultiHeadAttention`` (and ``AdditiveAttention``) create their weights: at once when the input widths
are given (constructor or Keras-style ``build(query_shape, value_shape)``), else lazily under torch's
lazy-module contract: ``UninitializedParameter`` placeholders materialised in place, so an optimiser created
before the first call trains them, ``load_state_dict`` into a fresh layer builds it, and using an unbuilt
parameter raises naming what to pass.

Sizes are pairwise different: B=3, Tq=5, Tk=7, query width 6, value width 10, H=2, Dk=4.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

from attnkit.layers import AdditiveAttention, MultiHeadAttention

B, TQ, TK, EQ, EV, H, DK = 3, 5, 7, 6, 10, 2, 4


def _data(eq=EQ, ev=EV, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, TQ, eq, generator=g), torch.randn(B, TK, ev, generator=g)


def _train(layer, opt, q, v, steps=3):
    for _ in range(steps):
        opt.zero_grad()
        layer(q, v).pow(2).mean().backward()
        opt.step()


@pytest.mark.parametrize("widths", [(EQ, EV), (EQ, EQ)], ids=["cross", "self-width"])
def test_optimizer_created_before_the_first_call_trains_every_weight(widths):
    """Reference: the same start trained by a layer built up front, with its own optimiser."""
    q, v = _data(*widths)
    torch.manual_seed(0)
    lazy = MultiHeadAttention(H, DK)
    opt = torch.optim.SGD(lazy.parameters(), lr=0.5)  # before any call: placeholders
    with torch.no_grad():
        lazy(q, v)  # builds
    eager = MultiHeadAttention(H, DK, query_dim=widths[0], value_dim_in=widths[1])
    eager.load_state_dict(lazy.state_dict())
    start = {k: t.clone() for k, t in lazy.state_dict().items()}
    _train(lazy, opt, q, v)
    _train(eager, torch.optim.SGD(eager.parameters(), lr=0.5), q, v)
    for name, p in lazy.named_parameters():
        assert not torch.equal(p, start[name]), f"{name} was not trained"
        torch.testing.assert_close(p, dict(eager.named_parameters())[name])


def test_widths_given_build_at_once_also_as_keras_shapes(keras):
    assert MultiHeadAttention(H, DK, query_dim=EQ, value_dim_in=EV).built
    layer = MultiHeadAttention(H, DK)
    layer.build((None, TQ, EQ), (None, TK, EV))  # Keras' build(query_shape, value_shape)
    ref = keras.layers.MultiHeadAttention(H, DK)
    ref.build((None, TQ, EQ), (None, TK, EV))
    assert layer.built and not any(isinstance(p, UninitializedParameter) for p in layer.parameters())
    ours = {n: p.numel() for n, p in layer.named_parameters()}
    assert sum(ours.values()) == sum(int(w.numpy().size) for w in ref.weights)  # same parameter count as Keras
    assert layer.query_dense.weight.shape == (H * DK, EQ) and layer.value_dense.weight.shape == (H * DK, EV)
    assert layer.output_dense.weight.shape == (EQ, H * DK)


@pytest.mark.parametrize("widths", [(EQ, EV), (EQ, EQ)], ids=["separate-kernels", "packed"])
def test_load_state_dict_into_a_fresh_layer_builds_it(widths):
    q, v = _data(*widths)
    source = MultiHeadAttention(H, DK, query_dim=widths[0], value_dim_in=widths[1])
    fresh = MultiHeadAttention(H, DK)
    result = fresh.load_state_dict(source.state_dict())
    assert not result.missing_keys and not result.unexpected_keys and fresh.built
    torch.testing.assert_close(fresh(q, v), source(q, v))


def test_unbuilt_parameters_fail_loudly_saying_what_to_pass():
    layer = MultiHeadAttention(H, DK)
    assert all(isinstance(p, UninitializedParameter) for p in layer.parameters())  # torch's lazy contract
    with pytest.raises(ValueError, match=r"Expected a built layer .*pass query_dim="):
        sum(p.numel() for p in layer.parameters())
    with pytest.raises(RuntimeError, match=r"Expected a built layer .*pass query_dim="):
        _ = layer.output_dense.weight.shape
    with pytest.raises(ValueError, match=r"Expected a built layer .*pass query_dim="):
        nn.init.normal_(layer.in_proj_weight)
    # a state dict without the layer's tensors leaves it unbuilt, reported as missing keys
    with pytest.raises(RuntimeError, match=r"Missing key\(s\)"):
        layer.load_state_dict({})


def test_additive_attention_follows_the_same_contract():
    q, v = _data(EQ, EQ)
    torch.manual_seed(0)
    lazy = AdditiveAttention()
    opt = torch.optim.SGD(lazy.parameters(), lr=0.5)
    with pytest.raises(ValueError, match=r"pass dim= to AdditiveAttention"):
        lazy.scale.numel()
    with torch.no_grad():
        lazy(q, v)
    eager = AdditiveAttention(dim=EQ)
    eager.load_state_dict(lazy.state_dict())
    start = lazy.scale.detach().clone()
    _train(lazy, opt, q, v)
    _train(eager, torch.optim.SGD(eager.parameters(), lr=0.5), q, v)
    assert not torch.equal(lazy.scale, start)
    torch.testing.assert_close(lazy.scale, eager.scale)
    fresh = AdditiveAttention()
    fresh.load_state_dict(eager.state_dict())
    torch.testing.assert_close(fresh(q, v), eager(q, v))
