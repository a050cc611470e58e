"""Seq2Seq against a hand-written float64 reference of the equations, padding invariance, save/load, translate."""

from __future__ import annotations

import math

import pytest
import torch

import attnkit.io
from attnkit.data import Tokenizer
from attnkit.models.seq2seq import ATTENTIONS, Seq2Seq, Seq2SeqConfig

torch.set_num_threads(1)


def small(attention: str, cell: str = "gru", **kw) -> Seq2Seq:
    # E=5, hidden 12 (6 per encoder direction), A=7; with BATCH_SRC/BATCH_TGT's B=3, S=8, T=4 all differ.
    # The annotations and the decoder state share the width 12 by design (Dq = Dk).
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab_size=11, tgt_vocab_size=9, attention=attention, cell=cell, embed_dim=5,
                        hidden_dim=12, attention_dim=7, local_window=2, **kw)
    return Seq2Seq(cfg).double().eval()


# ---- a float64 reference written from the equations (PyTorch's GRU gate layout: r, z, n) ----------------


def gru_ref(x, h, w_ih, w_hh, b_ih, b_hh):
    gi, gh = w_ih @ x + b_ih, w_hh @ h + b_hh
    H = h.numel()
    r = torch.sigmoid(gi[:H] + gh[:H])
    z = torch.sigmoid(gi[H:2 * H] + gh[H:2 * H])
    n = torch.tanh(gi[2 * H:] + r * gh[2 * H:])
    return (1 - z) * n + z * h


def encoder_ref(model: Seq2Seq, src: list[int]):
    """Annotations h_j = [fwd h_j; bwd h_j] (L, H) and s_0 for one unpadded source."""
    e = model.encoder
    x = model.src_embed.weight[src]  # (L, E)
    half = model.config.hidden_dim // 2
    fwd, bwd = [], [None] * len(src)
    h = torch.zeros(half, dtype=torch.float64)
    for t in range(len(src)):
        h = gru_ref(x[t], h, e.weight_ih_l0, e.weight_hh_l0, e.bias_ih_l0, e.bias_hh_l0)
        fwd.append(h)
    h = torch.zeros(half, dtype=torch.float64)
    for t in reversed(range(len(src))):
        h = gru_ref(x[t], h, e.weight_ih_l0_reverse, e.weight_hh_l0_reverse, e.bias_ih_l0_reverse,
                    e.bias_hh_l0_reverse)
        bwd[t] = h
    ann = torch.stack([torch.cat([f, b]) for f, b in zip(fwd, bwd, strict=True)])
    summary = torch.cat([fwd[-1], bwd[0]])
    s0 = torch.tanh(model.init_state.weight @ summary + model.init_state.bias)
    return ann, summary, s0


def decoder_ref(model: Seq2Seq, src: list[int], tgt_in: list[int]):
    """Log-probabilities (T, V) and alignments (T, L) by the equations in the module docstring."""
    a = model.config.attention
    ann, summary, s = encoder_ref(model, src)
    d = model.decoder
    feed = torch.zeros_like(s)
    logps, aligns = [], []
    for step, y in enumerate(tgt_in):
        emb = model.tgt_embed.weight[y]
        if a in ("none", "bahdanau"):
            if a == "none":
                c = summary
            else:
                sc = model.attn.score
                e = torch.stack([sc.w_v @ torch.tanh(sc.w_q.weight @ s + (0 if sc.w_q.bias is None else sc.w_q.bias) + sc.w_k.weight @ h)
                                 for h in ann])
                w = torch.softmax(e, 0)
                aligns.append(w)
                c = w @ ann
            s = gru_ref(torch.cat([emb, c]), s, d.weight_ih, d.weight_hh, d.bias_ih, d.bias_hh)
            o = torch.tanh(model.readout.weight @ torch.cat([s, c, emb]) + model.readout.bias)
        else:
            x = torch.cat([emb, feed]) if model.config.input_feeding else emb  # input feeding or E y_{i-1} only
            s = gru_ref(x, s, d.weight_ih, d.weight_hh, d.bias_ih, d.bias_hh)
            sc = model.attn.score
            if a == "luong-dot":
                e = ann @ s
            elif a == "luong-concat":  # v_a^T tanh(W_a [h_t; h_s])
                e = torch.stack([sc.v_a @ torch.tanh(sc.w_a @ torch.cat([s, h])) for h in ann])
            else:  # luong-general, luong-local-m and luong-local-p: h_t^T W_a h_s
                e = ann @ (sc.w_a.T @ s)
            if a == "luong-local-p":  # p_t = S sigmoid(v_p^T tanh(W_p h_t)); softmax over |j - p_t| <= W, Gaussian
                win = model.attn.window
                p_t = len(src) * torch.sigmoid(win.v_p.weight[0] @ torch.tanh(win.w_p.weight @ s))
                j = torch.arange(len(src), dtype=torch.float64)
                W = model.config.local_window
                w = torch.softmax(e.masked_fill((j - p_t).abs() > W, -torch.inf), 0)
                w = w * torch.exp(-((j - p_t) ** 2) / (2 * (W / 2) ** 2))
            elif a == "luong-local-m":  # p_t = t (0-based step): softmax over |j - t| <= W, exactly 0 elsewhere
                W = model.config.local_window
                inside = [j for j in range(len(src)) if abs(j - step) <= W]
                w = torch.zeros(len(src), dtype=torch.float64)
                if inside:
                    top = max(float(e[k].detach()) for k in inside)
                    ex = [math.exp(float(e[j].detach()) - top) for j in inside]
                    w[inside] = torch.tensor(ex, dtype=torch.float64) / sum(ex)
            else:
                w = torch.softmax(e, 0)
            aligns.append(w)
            c = w @ ann
            o = torch.tanh(model.combine.weight @ torch.cat([c, s]))
            feed = o
        logps.append(torch.log_softmax(model.out.weight @ o + model.out.bias, 0))
    return torch.stack(logps), (torch.stack(aligns) if aligns else None)


BATCH_SRC = [[1, 5, 6, 7, 2], [1, 8, 2], [1, 9, 10, 4, 5, 6, 7, 2]]
BATCH_TGT = [[1, 4, 5, 6], [1, 7, 0, 0], [1, 8, 3, 0]]


def padded(rows):
    L = max(map(len, rows))
    return torch.tensor([r + [0] * (L - len(r)) for r in rows]), torch.tensor([len(r) for r in rows])


@pytest.mark.parametrize(("attention", "feeding"), [(a, True) for a in ATTENTIONS] + [
    (a, False) for a in ("luong-general", "luong-local-m", "luong-concat")])  # no feeding: s_i = f(s_{i-1}, E y_{i-1})
def test_teacher_forced_forward_matches_the_float64_equations(attention, feeding):
    model = small(attention, input_feeding=feeding)
    src, lengths = padded(BATCH_SRC)
    out = model(src, lengths, torch.tensor(BATCH_TGT))
    logp = torch.log_softmax(out.logits, -1)
    for b, (s, t) in enumerate(zip(BATCH_SRC, BATCH_TGT, strict=True)):
        ref_lp, ref_al = decoder_ref(model, s, t)
        torch.testing.assert_close(logp[b], ref_lp, atol=1e-10, rtol=0)
        if ref_al is None:
            assert out.alignments is None
        else:
            L = len(s)
            torch.testing.assert_close(out.alignments[b, :, :L], ref_al, atol=1e-10, rtol=0)
            assert out.alignments[b, :, L:].abs().sum() == 0  # padding gets no weight


def test_annotations_are_forward_and_backward_states():
    model = small("bahdanau")
    src, lengths = padded(BATCH_SRC)
    state = model.encode(src, lengths)
    for b, s in enumerate(BATCH_SRC):
        ann, _, s0 = encoder_ref(model, s)
        torch.testing.assert_close(state["keys"][b, : len(s)], ann, atol=1e-12, rtol=0)
        torch.testing.assert_close(state["h"][b], s0, atol=1e-12, rtol=0)
        assert state["mask"][b].tolist() == [True] * len(s) + [False] * (src.size(1) - len(s))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_outputs_do_not_depend_on_how_much_padding_the_batch_has(attention, cell):
    model = small(attention, cell)
    s, t = [1, 5, 6, 2], [1, 4, 5]
    alone = model(torch.tensor([s]), torch.tensor([4]), torch.tensor([t]))
    for extra in (1, 7):
        longer = [1] + [9] * (3 + extra) + [2]
        src, lengths = padded([s, longer])
        batched = model(src, lengths, torch.tensor([t, t]))
        torch.testing.assert_close(batched.logits[0], alone.logits[0], atol=1e-12, rtol=0)
        if alone.alignments is not None:
            torch.testing.assert_close(batched.alignments[0, :, :4], alone.alignments[0], atol=1e-12, rtol=0)
            assert batched.alignments[0, :, 4:].abs().max() == 0


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_stepwise_decoding_agrees_with_teacher_forcing(attention):
    model = small(attention)
    src, lengths = padded(BATCH_SRC)
    tgt = torch.tensor(BATCH_TGT)
    out = model(src, lengths, tgt)
    state = model.encode(src, lengths)
    for t in range(tgt.size(1)):
        logp, state, w = model.step(tgt[:, t], state)
        torch.testing.assert_close(logp, torch.log_softmax(out.logits[:, t], -1), atol=1e-12, rtol=0)
        if w is not None:
            torch.testing.assert_close(w, out.alignments[:, t], atol=1e-12, rtol=0)


def test_local_p_weights_stay_inside_the_predicted_window_and_sum_to_at_most_one():
    model = small("luong-local-p")
    src, lengths = padded(BATCH_SRC)
    out = model(src, lengths, torch.tensor(BATCH_TGT))
    w = out.alignments  # (B, T, S)
    assert torch.isfinite(w).all()
    assert (w.sum(-1) <= 1 + 1e-9).all()
    W = model.config.local_window
    for b in range(w.size(0)):
        for t in range(w.size(1)):
            nz = torch.nonzero(w[b, t] > 0).flatten()
            if len(nz):
                assert int(nz.max() - nz.min()) <= 2 * W  # one window [p - W, p + W]


def test_empty_source_gives_zero_context_not_nan():
    model = small("bahdanau")
    src = torch.zeros(2, 3, dtype=torch.long)
    src[1, :2] = torch.tensor([1, 2])
    out = model(src, torch.tensor([0, 2]), torch.tensor([[1, 4, 5, 6], [1, 4, 5, 6]]))  # B=2, S=3, T=4
    assert torch.isfinite(out.logits).all()
    assert out.alignments[0].abs().max() == 0


def test_config_errors_name_the_value():
    with pytest.raises(ValueError, match=r"attention to be one of .*Received: attention='luong'"):
        Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=5, attention="luong")
    with pytest.raises(ValueError, match=r"hidden_dim to be an even number .*Received: hidden_dim=7"):
        Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=5, hidden_dim=7)
    with pytest.raises(ValueError, match=r"cell to be one of .*Received: cell='rnn'"):
        Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=5, cell="rnn")
    model = small("none")
    with pytest.raises(ValueError, match=r"src_lengths of shape \(2,\). Received: \(3,\)"):
        model(torch.ones(2, 3, dtype=torch.long), torch.ones(3, dtype=torch.long), torch.ones(2, 1, dtype=torch.long))


# ---- a tiny trained model: learning, translate, save/load -------------------------------------------------


def _reverse_pairs():
    words = ["abc", "bca", "cab", "acb", "bac", "abcb", "ccab", "baca", "ab", "ca", "cbc", "aacb"]
    return [(w, w[::-1]) for w in words]


@pytest.fixture(scope="module")
def trained():
    pairs = _reverse_pairs()
    src_tok = Tokenizer.train([s for s, _ in pairs], scheme="char")
    tgt_tok = Tokenizer.train([t for _, t in pairs], scheme="char")
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab_size=src_tok.vocab_size, tgt_vocab_size=tgt_tok.vocab_size, embed_dim=10,
                        hidden_dim=32, attention_dim=24, max_src_len=8, max_tgt_len=10)  # B=12 pairs, E=10, 16 per direction
    model = Seq2Seq(cfg)
    model.tokenizers = {"source": src_tok, "target": tgt_tok}
    src_ids = src_tok.encode_batch([s for s, _ in pairs])
    tgt_ids = tgt_tok.encode_batch([t for _, t in pairs])
    src, lengths = padded(src_ids)
    tgt, _ = padded(tgt_ids)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        out = model(src, lengths, tgt[:, :-1], tgt[:, 1:])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    return model.eval(), pairs


def test_training_fits_a_small_task_and_translate_reads_strings(trained):
    model, pairs = trained
    assert model.translate([s for s, _ in pairs]) == [t for _, t in pairs]
    assert model.translate([s for s, _ in pairs], beam_size=3) == [t for _, t in pairs]


def test_translate_returns_alignments_rows_per_output_token(trained):
    model, _ = trained
    (text, al), = model.translate(["abcb"], return_alignments=True)
    assert text == "bcba"
    assert al.shape == (len(text) + 1, len("abcb") + 2)  # + <eos> row; <sos>/<eos> columns
    torch.testing.assert_close(al.sum(-1), torch.ones(al.size(0)), atol=1e-5, rtol=0)


def test_unknown_and_too_long_inputs_warn_with_counts(trained):
    model, _ = trained
    with pytest.warns(UserWarning, match=r"2 source token\(s\) outside the vocabulary were mapped to <unk>"):
        model.translate(["axbz"])
    with pytest.warns(UserWarning, match=r"1 input\(s\) longer than max_src_len=8 tokens were truncated"):
        out = model.translate(["abcabcabcabc"])
    assert isinstance(out[0], str)
    with pytest.raises(TypeError, match="Expected texts to be a list of str. Received: str"):
        model.translate("abc")


def test_save_and_attnkit_load_give_the_same_model(trained, tmp_path):
    model, pairs = trained
    model.save(tmp_path / "m")
    again = attnkit.io.load(tmp_path / "m")
    assert isinstance(again, Seq2Seq) and again.config == model.config
    sources = [s for s, _ in pairs]
    assert again.translate(sources) == model.translate(sources)
    for name, p in model.state_dict().items():
        assert torch.equal(p, again.state_dict()[name])


def test_greedy_log_prob_matches_the_reference_along_its_own_output(trained):
    model, _ = trained
    model = model.double()
    try:
        src, lengths, _, _ = model.encode_texts(["cab"])
        out = model.generate(src, lengths)
        L = int(out.lengths[0])
        ids = out.tokens[0, :L].tolist()
        ref_lp, _ = decoder_ref(model, src[0].tolist(), [model.config.sos_id] + ids[:-1])
        total = sum(float(ref_lp[t, i].detach()) for t, i in enumerate(ids))
        assert math.isclose(float(out.log_probs[0]), total, abs_tol=1e-4)
    finally:
        model.float()


def test_the_config_string_becomes_the_factorys_objects():
    from attnkit.layers import (
        BahdanauAttention,
        GeneralScore,
        LuongAttention,
        PredictiveWindow,
        build_attention,
    )

    model = small("luong-local-p")
    assert isinstance(model.attn, LuongAttention) and model.feeds_output
    assert type(model.attn.score) is GeneralScore and type(model.attn.window) is PredictiveWindow
    assert model.attn.window.half_width == model.config.local_window == 2
    assert isinstance(small("bahdanau").attn, BahdanauAttention) and small("none").attn is None
    for name in ATTENTIONS:  # the same parameter names and shapes as the factory's module
        attn = build_attention(name, 12, 12, hidden_dim=7, half_width=2)
        got = {k: v.shape for k, v in small(name).attn.state_dict().items()} if attn is not None else {}
        assert got == ({k: v.shape for k, v in attn.state_dict().items()} if attn is not None else {})


# ---- local-m and input feeding --------------------------------------------------------------------------


@pytest.mark.parametrize("attention", ["luong-general", "luong-local-m", "luong-concat"])
def test_luong_without_input_feeding_reads_only_the_word(attention):
    model = small(attention, input_feeding=False)
    assert model.decoder.weight_ih.shape == (3 * 12, 5)  # GRU gates x E: the cell reads E y_{i-1} only
    assert small(attention).decoder.weight_ih.shape == (3 * 12, 5 + 12)  # with feeding: [E y_{i-1}; o_{i-1}]
    assert "feed" not in model.encode(*padded(BATCH_SRC))


def test_local_m_weights_are_zero_outside_the_window_around_the_step():
    model = small("luong-local-m")  # W = 2
    src, lengths = padded(BATCH_SRC)
    w = model(src, lengths, torch.tensor(BATCH_TGT)).alignments.detach()  # (B=3, T=4, S=8)
    for b, s in enumerate(BATCH_SRC):
        for t in range(w.size(1)):
            inside = [j for j in range(len(s)) if abs(j - t) <= 2]
            outside = [j for j in range(w.size(2)) if j not in inside]
            assert w[b, t, outside].abs().max() == 0
            assert math.isclose(float(w[b, t].sum()), 1.0, abs_tol=1e-12) and (w[b, t, inside] > 0).all()


def test_local_m_greedy_and_beam_decoding_follow_the_step():
    model = small("luong-local-m", max_tgt_len=6)
    src, lengths = padded(BATCH_SRC)
    greedy = model.generate(src, lengths)
    for b in range(len(BATCH_SRC)):  # greedy output = argmax path of teacher forcing on that same output
        n = int(greedy.lengths[b])
        ids = greedy.tokens[b, :n]
        tf = model(src[b: b + 1], lengths[b: b + 1], torch.cat([torch.tensor([1]), ids[:-1]])[None])
        assert tf.logits[0].argmax(-1).tolist() == ids.tolist()
        torch.testing.assert_close(greedy.alignments[b, :n], tf.alignments[0].float(), atol=1e-6, rtol=0)
    beam = model.generate(src, lengths, beam_size=3)  # beams reorder the state rows, `step` among them
    for b in range(len(BATCH_SRC)):
        n = int(beam.lengths[b])
        ids = beam.tokens[b, :n]
        tf = model(src[b: b + 1], lengths[b: b + 1], torch.cat([torch.tensor([1]), ids[:-1]])[None])
        torch.testing.assert_close(beam.alignments[b, :n], tf.alignments[0].float(), atol=1e-6, rtol=0)
        total = torch.log_softmax(tf.logits[0], -1).gather(-1, ids[:, None]).sum()
        assert math.isclose(float(beam.log_probs[b]), float(total), abs_tol=1e-5)


def test_input_feeding_is_luong_only_and_survives_save_and_load(tmp_path):
    with pytest.raises(ValueError, match=r"input feeding is Luong's .*Received: input_feeding=False"):
        Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=5, attention="bahdanau", input_feeding=False)
    model = small("luong-local-m", input_feeding=False)
    model.save(tmp_path / "m")
    again = attnkit.io.load(tmp_path / "m")
    assert again.config.input_feeding is False and again.config.attention == "luong-local-m"
    assert again.decoder.weight_ih.shape == model.decoder.weight_ih.shape
    src, lengths = padded(BATCH_SRC)
    torch.testing.assert_close(again.double()(src, lengths, torch.tensor(BATCH_TGT)).logits,
                               model(src, lengths, torch.tensor(BATCH_TGT)).logits, atol=0, rtol=0)


def test_a_saved_config_without_input_feeding_loads_with_feeding(tmp_path):
    import json

    small("luong-general").save(tmp_path / "m")
    path = next(p for p in (tmp_path / "m").iterdir() if p.name == "config.json")
    meta = json.loads(path.read_text())
    cfg = meta["config"] if "config" in meta else meta
    del cfg["input_feeding"]
    path.write_text(json.dumps(meta))
    assert attnkit.io.load(tmp_path / "m").config.input_feeding is True
