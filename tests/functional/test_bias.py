"""attention(bias=...): an additive float bias on the scores, on every path, against a float64 reference."""

import pytest
import torch
from torch.autograd import gradcheck

from attnkit.functional import attention, hard_attention
from attnkit.layers import AdditiveScore

from .reference import naive_attention, scaled_dot_scores


def alibi_like(h, tq, tk):
    slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625][:h])
    dist = (torch.arange(tq)[:, None] - torch.arange(tk)[None, :]).abs().float()
    return -slopes[:, None, None] * dist  # (H, Tq, Tk)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_bias_on_every_path_matches_reference(causal, masked):
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(2, 4, 6, 8, generator=g), torch.randn(2, 4, 6, 8, generator=g), torch.randn(2, 4, 6, 3, generator=g)
    bias = alibi_like(4, 6, 6)
    mask = (torch.rand(2, 1, 6, 6, generator=g) > 0.3) if masked else None
    if masked:
        mask[0, 0, 2] = False  # a fully masked row
    allowed = mask
    if causal:
        tril = torch.ones(6, 6, dtype=torch.bool).tril()
        allowed = tril if mask is None else mask & tril
    ref, ref_w = naive_attention(q, k, v, scaled_dot_scores(q, k) + bias.double(), allowed)
    for kwargs in ({}, {"return_weights": True}, {"chunk_size": 4}):
        out = attention(q, k, v, mask=mask, causal=causal, bias=bias, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        assert not torch.isnan(out).any()
        torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)


def test_bias_gradients_on_every_path():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(1, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 5, 2, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    score = AdditiveScore(4, 4, 3).double()
    for kwargs in ({}, {"chunk_size": 2}, {"score": score, "chunk_size": 2}, {"score": lambda a, b: a @ b.transpose(-2, -1), "chunk_size": 2}):
        assert gradcheck(lambda q, k, v, b, kw=kwargs: attention(q, k, v, bias=b, **kw), (q, k, v, bias))


def test_bias_errors_and_hard_attention():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 2)
    with pytest.raises(TypeError, match="bias must be a floating-point tensor added to the scores. Received: dtype torch.bool"):
        attention(q, k, v, bias=torch.ones(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"bias of shape \(3, 4\) does not broadcast to \(\.\.\., Tq, Tk\) = \(2, 3, 5\)"):
        attention(q, k, v, bias=torch.zeros(3, 4))
    # a huge bias on one key makes hard attention pick it
    bias = torch.zeros(3, 5)
    bias[:, 3] = 1e4
    assert torch.all(hard_attention(q, k, v, bias=bias).index == 3)
