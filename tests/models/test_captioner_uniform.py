"""The captioner's uniform attention mode: no attention, the context is the plain mean of the regions."""

from __future__ import annotations

import torch

from attnkit.models.captioner import ATTENTION_MODES, Captioner, CaptionerConfig


def _model(mode: str) -> Captioner:
    torch.manual_seed(0)
    cfg = CaptionerConfig(vocab_size=11, encoder="small-cnn", image_size=32, grid=3, cnn_channels=5,
                          annotation_dim=6, embed_dim=4, hidden_dim=7, attention_dim=9, attention_mode=mode)
    return Captioner(cfg).eval()


def test_uniform_weights_are_one_over_the_regions_and_the_scores_do_not_matter():
    assert "uniform" in ATTENTION_MODES
    model = _model("uniform")
    feats = model.frozen_features(torch.rand(2, 3, 32, 32))
    tgt = torch.tensor([[1, 4, 5, 6], [1, 7, 8, 0]])
    out = model(feats, tgt)
    assert out.alignments.shape == (2, 4, 9)
    torch.testing.assert_close(out.alignments, torch.full((2, 4, 9), 1 / 9))
    with torch.no_grad():  # scrambling the attention's own weights changes nothing
        for p in model.attn.parameters():
            p.add_(torch.randn_like(p) * 3)
    torch.testing.assert_close(model(feats, tgt).logits, out.logits)


def test_uniform_context_is_the_mean_annotation_in_float64():
    model = _model("uniform").double()
    feats = model.frozen_features(torch.rand(1, 3, 32, 32, dtype=torch.float64))
    state = model.encode(feats)
    a = state["a"][0]  # (L, Da)
    mean = a.sum(0) / a.shape[0]  # the plain mean, written out
    beta = torch.sigmoid(model.f_beta(state["h"]))  # (1, 1)
    emb = model.embed(torch.tensor([1]))
    h, _ = model.lstm(torch.cat([emb, beta * mean[None]], -1), (state["h"], state["c"]))
    want = model.out(emb + model.out_h(h) + model.out_z(beta * mean[None]))
    logits, *_ = model.advance(torch.tensor([1]), state)
    torch.testing.assert_close(logits, want)
