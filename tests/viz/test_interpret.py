"""Rollout, flow and gradient-weighted attention against naive float64 references on tiny hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnkit.viz.interpret import attention_flow, attention_rollout, gradient_weighted_attention
from tests.viz import reference as ref

B, H, T, L = 2, 3, 4, 5  # pairwise different


def _layers(seed: int = 0, b: int = B, h: int = H, t: int = T, n: int = L) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.softmax(3 * torch.randn(b, h, t, t, generator=g, dtype=torch.float64), -1) for _ in range(n))


def test_rollout_hand_case():
    # one head, two layers: token 0 attends to token 1, token 1 to itself
    a = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]], dtype=torch.float64)
    # with the residual each layer is [[.5, .5], [0, 1]]; two of them: [[.25, .75], [0, 1]]
    assert torch.allclose(attention_rollout((a, a)), torch.tensor([[[0.25, 0.75], [0.0, 1.0]]], dtype=torch.float64))
    # without it the matrix is idempotent
    assert torch.allclose(attention_rollout((a, a), residual=False), a[:, 0])


@pytest.mark.parametrize("residual", [True, False])
@pytest.mark.parametrize("how", ["mean", "max"])
def test_rollout_matches_reference(residual, how):
    layers = _layers(1)
    got = attention_rollout(layers, residual=residual, head_reduce=how)
    assert got.shape == (B, T, T) and got.dtype == torch.float64
    for b in range(B):
        want = ref.rollout([a[b].numpy() for a in layers], residual, how)
        np.testing.assert_allclose(got[b].numpy(), want, rtol=0, atol=1e-12)


def test_rollout_accepts_float32_and_lists():
    layers = [a.float().numpy() for a in _layers(2)]
    got = attention_rollout(layers)
    want = attention_rollout(_layers(2))
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)


def test_flow_matches_reference():
    layers = _layers(3)
    got = attention_flow(layers)
    assert got.shape == (B, T, T)
    for b in range(B):
        want = ref.flow([a[b].numpy() for a in layers])
        np.testing.assert_allclose(got[b].numpy(), want, rtol=0, atol=1e-6)  # capacities scaled to 2^-24


def test_flow_of_one_layer_is_the_layer():
    # a single layer: the only path i -> j is the edge itself, so flow = the residual-augmented matrix
    layers = _layers(4, n=1)
    want = ref.residual_rows(ref.heads(layers[0][1].numpy(), "mean"))
    np.testing.assert_allclose(attention_flow(layers)[1].numpy(), want, atol=1e-6)


def test_flow_refuses_long_inputs():
    layers = _layers(5, b=1, h=1, t=6, n=2)
    with pytest.raises(ValueError, match=r"at most max_tokens=5 tokens. Received: 6 tokens"):
        attention_flow(layers, max_tokens=5)


def test_gradient_weighted_matches_loops():
    layers = _layers(6)
    g = torch.Generator().manual_seed(7)
    grads = tuple(torch.randn(a.shape, generator=g, dtype=torch.float64) for a in layers)
    got = gradient_weighted_attention(layers, grads)
    assert got.shape == (L, B, T, T)
    for li in range(L):
        for b in range(B):
            for i in range(T):
                for j in range(T):
                    want = sum(max(0.0, float(layers[li][b, h, i, j] * grads[li][b, h, i, j])) for h in range(H)) / H
                    assert abs(float(got[li, b, i, j]) - want) < 1e-12


def test_gradient_weighted_with_autograd_on_a_plain_callable():
    # y = sum_ij A[i, j] * c[i, j] has dy/dA = c, so G = mean_h (A * c)^+
    a = torch.softmax(torch.randn(1, H, T, T, dtype=torch.float64), -1).requires_grad_(True)
    c = torch.randn(T, T, dtype=torch.float64)
    y = (a * c).sum()
    (grad,) = torch.autograd.grad(y, (a,))
    got = gradient_weighted_attention((a,), (grad,))[0, 0]
    want = (a.detach() * c).clamp_min(0).mean(1)[0]
    assert torch.allclose(got, want)


def test_errors_are_named():
    with pytest.raises(ValueError, match=r"Expected attentions\[1\] of shape \(B, H, T, T\). Received: \(2, 3\)"):
        attention_rollout((torch.ones(1, 1, 3, 3), torch.ones(2, 3)))
    with pytest.raises(ValueError, match="non-empty tuple"):
        attention_rollout(())
    with pytest.raises(ValueError, match=r"head_reduce in \('mean', 'max'\). Received: 'sum'"):
        attention_rollout((torch.ones(1, 1, 3, 3),), head_reduce="sum")
    with pytest.raises(ValueError, match="every layer"):
        attention_flow((torch.ones(1, 1, 3, 3), torch.ones(1, 2, 3, 3)))
