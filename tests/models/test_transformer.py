"""Tests of the encoder-decoder Transformer against independent references.

References: ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer`` with copied weights (both
post-LN and pre-LN), the paper's sinusoidal formula written out here, a hand-written label-smoothed loss,
full-prefix recomputation for the key/value cache, and known properties (padding and causal invariance).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import attnkit
from attnkit.data import BatchStream, Tokenizer, encode_pairs, load_pairs
from attnkit.models.transformer import Transformer, TransformerConfig
from attnkit.training import TrainConfig, Trainer


def tiny(**overrides) -> Transformer:
    # D=20, H=4, head width 5, F=32; with random_batch's B=3, S=7, T=6 every size differs
    cfg = dict(src_vocab_size=13, tgt_vocab_size=11, d_model=20, num_heads=4, encoder_layers=2,
               decoder_layers=2, ff_dim=32, dropout=0.0, max_src_len=12, max_tgt_len=10)
    cfg.update(overrides)
    torch.manual_seed(0)
    return Transformer(TransformerConfig(**cfg)).eval()


def random_batch(B: int = 3, S: int = 7, T: int = 6, src_vocab: int = 13, tgt_vocab: int = 11, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, src_vocab, (B, S), generator=g)
    lengths = torch.tensor([S] + [max(1, S - 2 * i) for i in range(1, B)])
    src = src.masked_fill(torch.arange(S)[None, :] >= lengths[:, None], 0)
    tgt_in = torch.randint(4, tgt_vocab, (B, T), generator=g)
    tgt_in[:, 0] = 1
    return src, lengths, tgt_in


def test_shapes():
    model = tiny()
    src, lengths, tgt_in = random_batch()
    out = model(src, lengths, tgt_in, output_attentions=True)
    assert out.logits.shape == (3, 6, 11)
    assert out.encoder_last_hidden_state.shape == (3, 7, 20)
    assert out.alignments.shape == (3, 6, 7)
    assert [w.shape for w in out.encoder_attentions] == [(3, 4, 7, 7)] * 2
    assert [w.shape for w in out.decoder_attentions] == [(3, 4, 6, 6)] * 2
    assert [w.shape for w in out.cross_attentions] == [(3, 4, 6, 7)] * 2
    gen = model.generate(src, lengths, max_len=5, beam_size=2)
    assert gen.tokens.shape[0] == 3 and gen.tokens.shape[1] <= 5
    assert gen.alignments.shape == (3, gen.tokens.shape[1], 7)


# ---------------------------------------------------------------------------------------------------------
# Parity with torch.nn's Transformer layers (an independent implementation) with copied weights
# ---------------------------------------------------------------------------------------------------------


def _copy_mha(ours, theirs: nn.MultiheadAttention) -> None:
    theirs.in_proj_weight.copy_(ours.in_proj_weight)  # rows: query, key, value, as torch packs them
    theirs.in_proj_bias.copy_(ours.in_proj_bias)
    theirs.out_proj.weight.copy_(ours.output_dense.weight)
    theirs.out_proj.bias.copy_(ours.output_dense.bias)


def _copy_norm(ours: nn.LayerNorm, theirs: nn.LayerNorm) -> None:
    theirs.weight.copy_(ours.weight)
    theirs.bias.copy_(ours.bias)


def _sinusoid(T: int, E: int) -> torch.Tensor:
    pe = torch.zeros(T, E, dtype=torch.float64)
    for pos in range(T):
        for i in range(0, E, 2):
            pe[pos, i] = math.sin(pos / 10000 ** (i / E))
            pe[pos, i + 1] = math.cos(pos / 10000 ** (i / E))
    return pe


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_matches_torch_transformer_layers(norm):
    model = tiny(norm=norm).double()
    c = model.config
    first = norm == "pre"
    enc_layers, dec_layers = [], []
    with torch.no_grad():
        for ours in model.encoder:
            ref = nn.TransformerEncoderLayer(c.d_model, c.num_heads, c.ff_dim, dropout=0.0, batch_first=True,
                                             norm_first=first, dtype=torch.float64)
            _copy_mha(ours.self_attn, ref.self_attn)
            ref.linear1.load_state_dict(ours.ff.fc_in.state_dict())
            ref.linear2.load_state_dict(ours.ff.fc_out.state_dict())
            _copy_norm(ours.self_attn_norm, ref.norm1)
            _copy_norm(ours.ff_norm, ref.norm2)
            enc_layers.append(ref.eval())
        for ours in model.decoder:
            ref = nn.TransformerDecoderLayer(c.d_model, c.num_heads, c.ff_dim, dropout=0.0, batch_first=True,
                                             norm_first=first, dtype=torch.float64)
            _copy_mha(ours.self_attn, ref.self_attn)
            _copy_mha(ours.cross_attn, ref.multihead_attn)
            ref.linear1.load_state_dict(ours.ff.fc_in.state_dict())
            ref.linear2.load_state_dict(ours.ff.fc_out.state_dict())
            _copy_norm(ours.self_attn_norm, ref.norm1)
            _copy_norm(ours.cross_attn_norm, ref.norm2)
            _copy_norm(ours.ff_norm, ref.norm3)
            dec_layers.append(ref.eval())
    src, lengths, tgt_in = random_batch()
    pad = src == 0  # torch.nn: True = ignore
    causal = torch.ones(6, 6, dtype=torch.bool).triu(1)  # torch.nn: True = not allowed
    with torch.no_grad():
        x = model.src_embed.weight[src] * math.sqrt(20) + _sinusoid(7, 20)
        for ref in enc_layers:
            x = ref(x, src_key_padding_mask=pad)
        if first:
            x = nn.functional.layer_norm(x, (20,), model.encoder_norm.weight, model.encoder_norm.bias, 1e-5)
        y = model.tgt_embed.weight[tgt_in] * math.sqrt(20) + _sinusoid(6, 20)
        for ref in dec_layers:
            y = ref(y, x, tgt_mask=causal, memory_key_padding_mask=pad)
        if first:
            y = nn.functional.layer_norm(y, (20,), model.decoder_norm.weight, model.decoder_norm.bias, 1e-5)
        expected = y @ model.out.weight.T + model.out.bias
        out = model(src, lengths, tgt_in)
    torch.testing.assert_close(out.logits, expected, atol=1e-10, rtol=1e-8)


def test_label_smoothed_loss_by_hand():
    eps = 0.2
    model = tiny(label_smoothing=eps)
    src, lengths, tgt_in = random_batch()
    tgt_out = torch.cat([tgt_in[:, 1:], torch.full((3, 1), 2)], dim=1)
    tgt_out[2, 4:] = 0  # padding, ignored
    out = model(src, lengths, tgt_in, tgt_out)
    logp = out.logits.double().log_softmax(-1)
    V, terms = logp.size(-1), []
    for b in range(3):
        for t in range(6):
            y = int(tgt_out[b, t])
            if y != 0:  # q = (1 - eps) one_hot(y) + eps / V: cross-entropy -sum_v q_v log p_v
                terms.append(-(1 - eps) * logp[b, t, y] - eps / V * logp[b, t].sum())
    assert out.loss.item() == pytest.approx(torch.stack(terms).mean().item(), abs=1e-5)


# ---------------------------------------------------------------------------------------------------------
# Masking properties
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("norm", "positional"), [("post", "sinusoidal"), ("pre", "learned")])
def test_padding_invariance(norm, positional):
    """A source's logits do not depend on how much padding its batch adds."""
    model = tiny(norm=norm, positional=positional)
    src, lengths, tgt_in = random_batch(B=3, S=9)
    alone = model(src[2:3, : int(lengths[2])], lengths[2:3], tgt_in[2:3]).logits
    batched = model(src, lengths, tgt_in).logits[2:3]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    more_pad = torch.cat([src, torch.zeros(3, 3, dtype=torch.long)], dim=1)  # 3 more pad columns
    torch.testing.assert_close(model(more_pad, lengths, tgt_in).logits, model(src, lengths, tgt_in).logits,
                               atol=1e-5, rtol=1e-5)


def test_causal_masking():
    """Changing target token k changes no logit before position k, and does change position k."""
    model = tiny()
    src, lengths, tgt_in = random_batch()
    base = model(src, lengths, tgt_in).logits
    changed = tgt_in.clone()
    changed[:, 3] = torch.where(changed[:, 3] == 5, 6, 5)
    after = model(src, lengths, changed).logits
    torch.testing.assert_close(after[:, :3], base[:, :3], atol=1e-6, rtol=0)
    assert (after[:, 3] - base[:, 3]).abs().max() > 1e-3


def test_empty_source_never_nan():
    """A source of length 0 masks every key: cross-attention gives zero weights, not NaN."""
    model = tiny()
    src, lengths, tgt_in = random_batch()
    lengths = torch.tensor([7, 0, 3])
    src[1] = 0
    out = model(src, lengths, tgt_in, output_attentions=True)
    assert torch.isfinite(out.logits).all()
    assert out.alignments[1].abs().sum() == 0
    model(src, lengths, tgt_in, tgt_in).loss.backward()  # and training through it: finite gradients
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    torch.testing.assert_close(out.alignments[0].sum(-1), torch.ones(6))
    gen = model.generate(src, lengths, max_len=6, beam_size=2)
    assert torch.isfinite(gen.scores).all()


# ---------------------------------------------------------------------------------------------------------
# Cached decoding == recomputation
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{}, {"norm": "pre", "positional": "learned"},
                                       {"share_embeddings": "decoder", "num_heads": 2}])
def test_cached_steps_equal_teacher_forcing(overrides):
    model = tiny(**overrides)
    src, lengths, tgt_in = random_batch()
    full = model(src, lengths, tgt_in, output_attentions=True)
    state = model.start_state(src, lengths)
    steps, weights = [], []
    with torch.no_grad():
        for t in range(tgt_in.size(1)):
            log_probs, state, w = model.step(tgt_in[:, t], state)
            steps.append(log_probs)
            weights.append(w)
    torch.testing.assert_close(torch.stack(steps, 1), full.logits.log_softmax(-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack(weights, 1), full.alignments, atol=1e-5, rtol=1e-5)
    assert state["caches"]["self"][0].key.shape == (3, model.config.num_heads, 6, 20 // model.config.num_heads)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_cached_generate_equals_uncached(beam_size):
    model = tiny(norm="pre")
    with torch.no_grad():  # a sharper random model, so that beams differ
        model.out.weight.mul_(4.0)
    src, lengths, _ = random_batch(B=6, S=8)  # B unlike H=4 and the head width 5
    a = model.generate(src, lengths, beam_size=beam_size, max_len=9)
    b = model.generate(src, lengths, beam_size=beam_size, max_len=9, use_cache=False)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.lengths, b.lengths)
    torch.testing.assert_close(a.scores, b.scores, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.alignments, b.alignments, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# Training, saving, text
# ---------------------------------------------------------------------------------------------------------


def _reverse_model(share: str = "decoder") -> tuple[Transformer, list[tuple[str, str]]]:
    pairs = load_pairs("reverse", "train", size=600, seed=0, min_len=2, max_len=6)
    tok = Tokenizer.train([s for s, _ in pairs] + [t for _, t in pairs], scheme="char")
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(
        src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size, d_model=32, num_heads=4, encoder_layers=1,
        decoder_layers=1, ff_dim=64, dropout=0.0, label_smoothing=0.0, share_embeddings=share,
        max_src_len=16, max_tgt_len=12))
    model.tokenizers = {"source": tok, "target": tok}
    return model, pairs


def test_loss_falls_on_reverse_with_noam_schedule():
    model, pairs = _reverse_model(share="all")
    stream = BatchStream(encode_pairs(pairs, model.tokenizers["source"], model.tokenizers["target"]),
                         batch_size=32, seed=0)
    first_loss = model.training_step(next(iter(stream)))[0].item()
    config = TrainConfig(steps=400, lr=1.0, schedule="noam", warmup_steps=100, progress=False, log_every=25,
                         eval_every=10_000, weight_decay=0.0, betas=(0.9, 0.98))  # the paper's Adam betas
    result = Trainer(model, config, stream).fit()
    assert first_loss > 2.0  # about log(vocabulary) at the start
    assert result.final_loss < 0.3 * first_loss


def test_save_load_round_trip(tmp_path):
    model, pairs = _reverse_model(share="decoder")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = model.save(tmp_path / "m")
    again = attnkit.load(path)
    assert type(again) is Transformer and again.config == model.config
    assert again.out.weight is again.tgt_embed.weight  # tying survives the round trip
    src, lengths, tgt_in = random_batch(src_vocab=model.config.src_vocab_size, tgt_vocab=model.config.tgt_vocab_size)
    assert torch.equal(again(src, lengths, tgt_in).logits, model.eval()(src, lengths, tgt_in).logits)
    texts = [s for s, _ in pairs[:5]]
    assert again.translate(texts, beam_size=2) == model.translate(texts, beam_size=2)


def test_translate_alignments():
    model, pairs = _reverse_model()
    texts = ["abc", "hello"]
    results = model.translate(texts, return_alignments=True)
    for text, (out, al) in zip(texts, results, strict=True):
        assert isinstance(out, str)
        n_src = len(model.tokenizers["source"].encode(text))  # <sos> + characters + <eos>
        assert al.shape[1] == n_src and al.shape[0] >= 1
        torch.testing.assert_close(al.sum(-1), torch.ones(al.shape[0]))
    with pytest.warns(UserWarning, match="outside the vocabulary"):
        model.translate(["a\u00e9b"])


def test_summary_counts_parameters(capsys):
    model = tiny(share_embeddings="decoder")
    text = model.summary()
    assert f"Total params: {model.num_parameters():,}" in text
    assert "(1, 8, 11)" in text  # logits of a (1, 8) target
    assert model.num_parameters() == sum(p.numel() for p in set(model.parameters()))
    assert capsys.readouterr().out.strip() == text.strip()  # printed, as Keras does, and returned
    model.summary(print_fn=None)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------


def test_bad_input_messages():
    model = tiny()
    src, lengths, tgt_in = random_batch()
    bad = src.clone()
    bad[0, 0] = 13
    with pytest.raises(ValueError, match=r"Expected `src` token ids in \[0, 13\).*Received: ids in \[0, 13\]"):
        model(bad, lengths, tgt_in)
    bad_tgt = tgt_in.clone()
    bad_tgt[0, 1] = -1
    with pytest.raises(ValueError, match=r"Expected `tgt_in` token ids in \[0, 11\).*Received: ids in \[-1, "):
        model(src, lengths, bad_tgt)
    long_src = torch.ones(1, 13, dtype=torch.long)
    with pytest.raises(ValueError, match=r"at most max_src_len=12 positions.*Received: shape \(1, 13\)"):
        model(long_src, torch.tensor([13]), tgt_in[:1])
    with pytest.raises(ValueError, match=r"at most max_tgt_len=10 positions.*Received: shape \(3, 11\)"):
        model(src, lengths, torch.ones(3, 11, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected max_len <= max_tgt_len=10.*Received: max_len=20"):
        model.generate(src, lengths, max_len=20)
    with pytest.raises(TypeError, match=r"Expected `src` of an integer dtype. Received: torch.float32"):
        model(src.float(), lengths, tgt_in)
    with pytest.raises(ValueError, match=r"Expected src_lengths of shape \(3,\). Received: \(2,\)"):
        model(src, lengths[:2], tgt_in)


def test_bad_config_messages():
    with pytest.raises(ValueError, match=r"d_model divisible by num_heads.*d_model=10, num_heads=4"):
        TransformerConfig(src_vocab_size=5, tgt_vocab_size=5, d_model=10, num_heads=4)
    with pytest.raises(ValueError, match=r"share_embeddings='all'.*src_vocab_size=5, tgt_vocab_size=6"):
        TransformerConfig(src_vocab_size=5, tgt_vocab_size=6, share_embeddings="all")
    with pytest.raises(ValueError, match=r"norm to be one of \('post', 'pre'\). Received: norm='mid'"):
        TransformerConfig(src_vocab_size=5, tgt_vocab_size=5, norm="mid")
    with pytest.raises(ValueError, match=r"Expected TransformerConfig.src_vocab_size an int >= 1"):
        TransformerConfig()


def test_learned_positions_out_of_table_in_steps():
    model = tiny(positional="learned", max_tgt_len=3)
    src, lengths, tgt_in = random_batch()
    state = model.start_state(src, lengths)
    for t in range(3):
        _, state, _ = model.step(tgt_in[:, t], state)
    with pytest.raises(ValueError, match=r"target positions below max_tgt_len=3.*Received: offset 3 \+ 1"):
        model.step(tgt_in[:, 3], state)
