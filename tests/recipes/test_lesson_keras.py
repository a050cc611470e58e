"""``attnkit lesson keras``: Keras 3's layers and attnkit's, same weights, same maps; and the definition."""

from __future__ import annotations

import pytest
import torch

from attnkit.recipes.lesson_keras import HEADS, SCALE, keras_pair, keras_panels


def test_keras_and_attnkit_agree_and_attention_is_its_definition():
    pytest.importorskip("keras")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 10, generator=g)  # T = 6 words of width D = 10
    r = keras_pair(x)
    for name in ("attention", "mha"):
        assert r[name]["weights_diff"] < 1e-5 and r[name]["output_diff"] < 1e-5
    assert tuple(r["mha"]["keras"].shape) == (HEADS, 6, 6)
    z = torch.nn.functional.layer_norm(x.double(), (10,))
    want = torch.softmax(SCALE / 10 * z @ z.T, dim=-1)  # Keras Attention: softmax(scale * q k^T)
    torch.testing.assert_close(r["attention"]["keras"].double(), want, atol=1e-5, rtol=1e-5)
    panels = keras_panels(r, list("abcdef"))
    assert len(panels) == 6 and "largest" in panels[2].title
