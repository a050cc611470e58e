"""AttentionClassifier against a naive float64 reference of the whole forward pass (embedding, Conv1D,
self-attention, pooling, Dense layers), attention weights that sum to 1 over the real words, classify()
outputs, binary and multi-class losses, save/load round trip and config errors.

Sizes are pairwise different: B=3 texts, T=7 positions, V=23 words, E=5, D=6, F=4, C=3 classes.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

import attnkit
from attnkit.data.news import train_word_tokenizer
from attnkit.models.classifier import (
    AttentionClassifier,
    AttentionPooling,
    Classification,
    ClassifierConfig,
    received_attention,
)

B, T, V, E, D, FF = 3, 7, 23, 5, 6, 4
LENGTHS = [7, 4, 2]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def make_ids() -> torch.Tensor:
    ids = torch.randint(4, V, (B, T))
    for b, n in enumerate(LENGTHS):
        ids[b, n:] = 0  # right padding, pad_id 0
    return ids


def make_model(labels=("a", "b", "c"), **kw) -> AttentionClassifier:
    cfg = dict(labels=labels, vocab_size=V, embed_dim=E, d_model=D, ff_dim=FF, kernel_size=5, dropout=0.0,
               num_heads=2, head_dim=3, self_attention="dot")
    cfg.update(kw)
    model = AttentionClassifier(ClassifierConfig(**cfg)).eval()
    with torch.no_grad():  # move the learned scales away from their starting values
        for name, p in model.named_parameters():
            if name.endswith("scale"):
                p.fill_(0.7)
    return model


# ----------------------------------------------------------------------------------- naive float64 reference


def softmax_over(scores: list[float]) -> list[float]:
    m = max(scores)
    e = [math.exp(s - m) for s in scores]
    return [x / sum(e) for x in e]


def reference(model: AttentionClassifier, ids: torch.Tensor) -> tuple[torch.Tensor, list, list]:
    """Logits (B, C), self-attention rows and pooling weights, by loops in float64 from the parameters."""
    p = {k: v.detach().double() for k, v in model.state_dict().items()}
    c, k = model.config, model.config.kernel_size
    logits, self_w, pool_w = [], [], []
    for b in range(ids.shape[0]):
        n = int((ids[b] != c.pad_id).sum())
        emb = [p["embedding.weight"][int(ids[b, t])] for t in range(n)]
        x = []
        for t in range(n):  # Conv1D with 'same' zero padding, then ReLU
            acc = p["conv.bias"].clone()
            for j in range(k):
                s = t + j - k // 2
                if 0 <= s < n:
                    acc += p["conv.weight"][:, :, j] @ emb[s]
            x.append(acc.clamp(min=0))
        if c.self_attention == "dot":  # s * x_i . x_j over the real words
            rows = [softmax_over([float(p["self_attention.scale"] * (x[i] @ x[j])) for j in range(n)]) for i in range(n)]
            x = [sum(w * x[j] for j, w in enumerate(r)) for r in rows]
            self_w.append(rows)
        if c.pooling == "attention":
            w = softmax_over([float(p["pool.attention.scale"] * (p["pool.query"] @ x[t])) for t in range(n)])
            h = sum(wt * x[t] for t, wt in enumerate(w))
            pool_w.append(w)
        elif c.pooling == "mean":
            h = sum(x) / n
        else:
            h = torch.stack(x).amax(0)
        hid = (p["hidden.weight"] @ h + p["hidden.bias"]).clamp(min=0)
        logits.append(p["output.weight"] @ hid + p["output.bias"])
    return torch.stack(logits), self_w, pool_w


@pytest.mark.parametrize("pooling", ["attention", "max", "mean"])
def test_forward_matches_float64_reference(pooling):
    model = make_model(pooling=pooling)
    ids = make_ids()
    out = model(ids, output_attentions=True)
    want, self_w, pool_w = reference(model, ids)
    torch.testing.assert_close(out.logits.double(), want, rtol=1e-4, atol=1e-5)
    for b, n in enumerate(LENGTHS):
        got = out.attentions[0][b, 0, :n, :n].double()
        torch.testing.assert_close(got, torch.tensor(self_w[b], dtype=torch.float64), rtol=1e-4, atol=1e-6)
        if pooling == "attention":
            torch.testing.assert_close(out.word_weights[b, :n].double(), torch.tensor(pool_w[b], dtype=torch.float64),
                                       rtol=1e-4, atol=1e-6)


def test_weights_sum_to_one_over_real_words_and_ignore_padding():
    for attention, pooling in [("dot", "attention"), ("multi_head", "max"), ("none", "attention")]:
        model = make_model(self_attention=attention, pooling=pooling)
        ids = make_ids()
        out = model(ids, output_attentions=True)
        mask = ids != 0
        torch.testing.assert_close(out.word_weights.sum(-1), torch.ones(B))
        assert (out.word_weights[~mask] == 0).all()
        if out.attentions is not None:
            w = out.attentions[0]  # (B, H, T, T)
            assert w.shape == (B, 1 if attention == "dot" else 2, T, T)
            real = w.sum(-1)[mask[:, None, :].expand(-1, w.shape[1], -1)]
            torch.testing.assert_close(real, torch.ones_like(real))
        # padding changes nothing: the same texts with more padding give the same logits
        longer = torch.cat([ids, torch.zeros(B, 3, dtype=torch.long)], dim=1)
        torch.testing.assert_close(model(longer).logits, out.logits, rtol=1e-5, atol=1e-6)


def test_attention_pooling_against_float64():
    pool = AttentionPooling(D)
    with torch.no_grad():
        pool.attention.scale.fill_(1.3)
    x = torch.randn(B, T, D)
    mask = torch.arange(T)[None] < torch.tensor(LENGTHS)[:, None]
    h, w = pool(x, mask)
    q, xd = pool.query.detach().double(), x.double()
    for b, n in enumerate(LENGTHS):
        ref_w = torch.softmax(1.3 * (xd[b, :n] @ q), dim=0)  # (n,)
        torch.testing.assert_close(w[b, :n].double(), ref_w)
        torch.testing.assert_close(h[b].double(), ref_w @ xd[b, :n])


def test_received_attention_against_loops():
    w = torch.rand(B, 2, T, T)
    w = w / w.sum(-1, keepdim=True)
    mask = torch.arange(T)[None] < torch.tensor(LENGTHS)[:, None]
    got = received_attention(w, mask)
    for b, n in enumerate(LENGTHS):
        want = [sum(float(w[b, h, i, j]) for h in range(2) for i in range(n)) / (2 * n) for j in range(T)]
        torch.testing.assert_close(got[b].double(), torch.tensor(want, dtype=torch.float64), rtol=1e-5, atol=1e-6)


def test_binary_uses_one_sigmoid_unit():
    model = make_model(labels=("neg", "pos"))
    ids, labels = make_ids(), torch.tensor([1, 0, 1])
    out = model(ids, labels)
    assert out.logits.shape == (B, 1)
    p = torch.sigmoid(out.logits[:, 0].double())
    want = -(labels * p.log() + (1 - labels) * (1 - p).log()).mean()
    torch.testing.assert_close(out.loss.double(), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.probabilities(out.logits).double(), torch.stack([1 - p, p], -1).to(torch.float64),
                               rtol=1e-5, atol=1e-6)


def test_multiclass_loss_is_cross_entropy_and_training_step_counts():
    model = make_model()
    ids, labels = make_ids(), torch.tensor([2, 0, 1])
    loss, stats = model.training_step((ids, labels))
    logits = model(ids).logits
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels))
    assert int(stats["total"]) == B and int(stats["correct"]) == int((logits.argmax(-1) == labels).sum())


# ----------------------------------------------------------------------------------- classify, save, load

TEXTS = ["The striker scored a late goal.", "Parliament passed the budget vote!", "Shares rose, profits too"]


def text_model(**kw) -> AttentionClassifier:
    tok = train_word_tokenizer(TEXTS, min_frequency=1)
    cfg = dict(labels=("business", "politics", "sport"), vocab_size=tok.vocab_size, embed_dim=E, d_model=D,
               ff_dim=FF, dropout=0.0)
    cfg.update(kw)
    return AttentionClassifier(ClassifierConfig(**cfg), tok).eval()


def test_classify_gives_a_label_a_probability_and_distinct_words():
    model = text_model()
    plain = model.classify(TEXTS)
    detailed = model.classify(TEXTS, return_weights=True, top_k=3)
    assert len(plain) == len(detailed) == 3 and all(isinstance(r, Classification) for r in detailed)
    with torch.no_grad():
        probs = model.probabilities(model(torch.tensor(model.encode(TEXTS[:1]))).logits)[0]
    assert plain[0].label == model.config.labels[int(probs.argmax())]
    assert plain[0].probability == pytest.approx(float(probs.max()), rel=1e-5)
    for r, d, text in zip(plain, detailed, TEXTS, strict=True):
        assert r.word_weights is None and (r.label, r.probability) == (d.label, pytest.approx(d.probability))
        assert r.label in model.config.labels and 1 / 3 <= r.probability <= 1
        words = [w for w, _ in d.word_weights]
        assert len(words) == 3 == len(set(words))
        assert all(w.isalnum() and w in text.lower() for w in words)  # no punctuation, words of the text
        weights = [x for _, x in d.word_weights]
        assert weights == sorted(weights, reverse=True)


def test_classify_rejects_empty_and_non_text():
    model = text_model()
    with pytest.raises(ValueError, match="Expected non-empty texts. Received: an empty text at index 1"):
        model.classify(["fine", "  \n"])
    with pytest.raises(TypeError, match="Expected texts to be strings"):
        model.classify([3])


@pytest.mark.parametrize("attention", ["dot", "multi_head"])
def test_save_load_round_trip(tmp_path, attention):
    model = text_model(self_attention=attention, num_heads=3, head_dim=2)
    path = model.save(tmp_path / "clf")
    again = attnkit.load(path)
    assert isinstance(again, AttentionClassifier) and again.config == model.config
    ids = torch.tensor(model.encode(TEXTS[:1]))
    torch.testing.assert_close(again(ids, output_attentions=True).word_weights, model(ids, output_attentions=True).word_weights)
    assert again.classify(TEXTS, return_weights=True) == model.classify(TEXTS, return_weights=True)


@pytest.mark.parametrize("field, value, message", [
    ("labels", ("a", "a"), "labels: expected at least 2 distinct class names"),
    ("kernel_size", 4, "kernel_size: expected an odd number. Received: 4"),
    ("self_attention", "luong", "self_attention: expected one of"),
    ("pooling", "flatten", "pooling: expected one of"),
    ("dropout", 1.0, "dropout: expected a number in [0, 1)"),
])
def test_config_errors(field, value, message):
    with pytest.raises(ValueError, match=re.escape(f"ClassifierConfig.{field}: {message.split(': ', 1)[1]}")):
        ClassifierConfig(**{field: value})


def test_no_attention_at_all_is_refused():
    with pytest.raises(ValueError, match="'none' needs pooling='attention'"):
        ClassifierConfig(self_attention="none", pooling="max")


def test_a_config_with_the_old_self_attention_field_says_what_to_rename(tmp_path):
    import json

    import attnkit
    from attnkit.errors import CheckpointError

    model = text_model(self_attention="dot")
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["config"]["attention"] = meta["config"].pop("self_attention")  # as attnkit 0.1.0 wrote it
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"config field 'attention' of ClassifierConfig is now 'self_attention'"):
        attnkit.load(tmp_path / "m")
