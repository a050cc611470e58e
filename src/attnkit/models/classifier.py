"""AttentionClassifier: the course's Keras text classifier, and its attention-pooling variant.

The course builds ``Embedding -> Conv1D -> Attention (or MultiHeadAttention) as self-attention -> Flatten
-> Dense(6, relu) -> Dense(1, sigmoid)``. Here the same stack reads texts of any length, so ``Flatten``
becomes a pooling over the words, one of: the maximum or the mean (the course's model), or a learned query
that attends over the words (the variant whose weights say which words decided).

Shape legend: B batch, T words (token positions), V vocabulary, E embedding width, D model width
(Conv1D filters), H heads, Dh head width, F feed-forward width, C classes (one sigmoid unit when C = 2).

    x   = ReLU(Conv1D_k(Embedding(ids)))          (B, T, D)   'same' padding: position t stays on word t
    x   = SelfAttention(x, x)                     (B, T, D)   "dot":        s * x_i . x_j        (layers.Attention(use_scale=True), s from 1/sqrt(D))
                                                              "multi_head": softmax(Q K^T / sqrt(Dh)) V per head
                                                                            (layers.MultiHeadAttention)
    h   = Pool(x)                                 (B, D)      "attention":  w_t = softmax_t(s_q * q . x_t), h = sum_t w_t x_t
                                                              "max" / "mean" over the real words
    out = Dense_C(Dropout(ReLU(Dense_F(h))))      (B, C)      logits; sigmoid (C = 2: one unit) or softmax

``config.self_attention`` names the self-attention (``"dot"``, ``"multi_head"`` or ``"none"``) and
``config.pooling`` the pooling; both become modules once, in ``__init__``.

``model.classify(texts)`` gives the label and its probability per text; with ``return_weights=True``
also the words that weighed most: the pooling weights ``w`` (attention pooling) or, with max/mean
pooling, the self-attention each word received (mean over heads and over the real query words).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.data.class_batches import pad_ids
from attnkit.layers import Attention, MultiHeadAttention
from attnkit.models._checks import warn_unknown_texts
from attnkit.models.base import KitModel
from attnkit.models.outputs import ClassifierOutput
from attnkit.storage import register_model

SELF_ATTENTIONS: tuple[str, ...] = ("dot", "multi_head", "none")
POOLINGS: tuple[str, ...] = ("attention", "max", "mean")


@dataclass
class ClassifierConfig:
    """Sizes and choices of an :class:`AttentionClassifier` (saved as JSON beside the weights).

    Raises:
        ValueError: a field out of range, as "ClassifierConfig.<field>: expected ... Received: ...".

    Example:
        >>> ClassifierConfig(labels=("neg", "pos")).num_outputs
        1
        >>> ClassifierConfig(labels=("a",))
        Traceback (most recent call last):
        ...
        ValueError: ClassifierConfig.labels: expected at least 2 distinct class names. Received: ('a',)
    """

    labels: tuple[str, ...] = ("negative", "positive")  # class names; class id = index (2 names: one sigmoid unit)
    vocab_size: int = 20000      # V, special tokens included
    embed_dim: int = 64          # E: word embedding width
    d_model: int = 128           # D: Conv1D filters, the width attention works in
    kernel_size: int = 3         # Conv1D window in words (odd, so 'same' padding keeps position t on word t)
    self_attention: str = "none"  # dot (layers.Attention) | multi_head | none
    num_heads: int = 4           # H of multi_head
    head_dim: int = 32           # Dh of multi_head (Keras: key_dim)
    pooling: str = "attention"   # attention (a learned query) | max | mean
    ff_dim: int = 64             # F: the hidden Dense layer (the course's Dense(6, relu))
    dropout: float = 0.2         # on the embeddings and before the last Dense
    max_len: int = 300           # a text is cut to its first max_len tokens
    pad_id: int = 0              # padding id of the tokenizer
    #: Fields renamed since attnkit 0.1.0 (old -> new): an old config.json gets one line naming both.
    renamed_fields: ClassVar[dict[str, str]] = {"attention": "self_attention"}

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)

        def need(ok: bool, what: str, got: object) -> None:
            if not ok:
                raise ValueError(f"ClassifierConfig.{what}. Received: {got!r}")

        need(len(set(self.labels)) == len(self.labels) >= 2, "labels: expected at least 2 distinct class names",
             self.labels)
        for name in ("vocab_size", "embed_dim", "d_model", "kernel_size", "num_heads", "head_dim", "ff_dim",
                     "max_len"):
            need(isinstance(getattr(self, name), int) and getattr(self, name) >= 1,
                 f"{name}: expected an int >= 1", getattr(self, name))
        need(self.kernel_size % 2 == 1, "kernel_size: expected an odd number", self.kernel_size)
        need(self.self_attention in SELF_ATTENTIONS, f"self_attention: expected one of {SELF_ATTENTIONS}",
             self.self_attention)
        need(self.pooling in POOLINGS, f"pooling: expected one of {POOLINGS}", self.pooling)
        need(self.self_attention != "none" or self.pooling == "attention",
             "self_attention: 'none' needs pooling='attention' (else no attention is left)", self.self_attention)
        need(0.0 <= self.dropout < 1.0, "dropout: expected a number in [0, 1)", self.dropout)
        need(0 <= self.pad_id < self.vocab_size, "pad_id: expected an id in [0, vocab_size)", self.pad_id)

    @property
    def num_outputs(self) -> int:
        """Output units: 1 (a sigmoid) for two classes, else one logit per class."""
        return 1 if len(self.labels) == 2 else len(self.labels)


@dataclass(frozen=True)
class Classification:
    """One text's answer from :meth:`AttentionClassifier.classify`.

    Attributes:
        label: the predicted class name.
        probability: its probability.
        word_weights: with ``return_weights=True``, the ``(word, weight)`` pairs that weighed most, heaviest
            first, each word once (its largest weight); else None.
    """

    label: str
    probability: float
    word_weights: tuple[tuple[str, float], ...] | None = None


class AttentionPooling(nn.Module):
    """A learned query ``q`` attends over the words: ``w = softmax_t(s * q . x_t)``, ``h = sum_t w_t x_t``.

    Built on :class:`attnkit.layers.Attention` (``use_scale=True``: ``s`` is learned, starting at 1).

    Args:
        d_model: ``D``, the width of the word vectors.

    Call arguments:
        x: ``(B, T, D)`` word vectors; key_mask: ``(B, T)`` bool, True = a real word.

    Returns:
        ``(h (B, D), weights (B, T))``; the weights of a row sum to 1 over its real words.

    Example:
        >>> pool = AttentionPooling(8)
        >>> h, w = pool(torch.randn(2, 5, 8), torch.tensor([[True] * 5, [True] * 3 + [False] * 2]))
        >>> tuple(h.shape), [round(s, 4) for s in w.sum(-1).tolist()], w[1, 3:].tolist()
        ((2, 8), [1.0, 1.0], [0.0, 0.0])
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(d_model) * d_model**-0.5)  # (D,)
        self.attention = Attention(use_scale=True)

    def forward(self, x: Tensor, key_mask: Tensor) -> tuple[Tensor, Tensor]:
        q = self.query.expand(x.shape[0], 1, -1)  # (B, 1, D)
        h, w = self.attention(q, x, value_mask=key_mask, return_attention_scores=True)  # (B, 1, D), (B, 1, T)
        return h[:, 0], w[:, 0]


class MeanPooling(nn.Module):
    """The mean of the real words: ``(B, T, D), key_mask (B, T) -> (h (B, D), None)`` (no weights)."""

    def forward(self, x: Tensor, key_mask: Tensor) -> tuple[Tensor, None]:
        m = key_mask[..., None]  # (B, T, 1)
        return (x * m).sum(1) / m.sum(1).clamp(min=1), None


class MaxPooling(nn.Module):
    """The maximum over the real words (zeros for a text without any): ``(B, T, D) -> (h (B, D), None)``."""

    def forward(self, x: Tensor, key_mask: Tensor) -> tuple[Tensor, None]:
        h = x.masked_fill(~key_mask[..., None], torch.finfo(x.dtype).min).amax(1)  # (B, D)
        return torch.where(key_mask.any(1, keepdim=True), h, torch.zeros_like(h)), None


def _pooling(c: ClassifierConfig) -> nn.Module:
    """The pooling a config names: ``(B, T, D), key_mask -> (h (B, D), weights (B, T) or None)``."""
    if c.pooling == "attention":
        return AttentionPooling(c.d_model)
    return MeanPooling() if c.pooling == "mean" else MaxPooling()


def _self_attention(c: ClassifierConfig) -> nn.Module | None:
    """The self-attention layer a config names (the one place the string becomes a module)."""
    if c.self_attention == "dot":
        layer = Attention(use_scale=True)
        with torch.no_grad():  # Keras starts the learned scale at 1; 1/sqrt(D) keeps the first softmax soft
            layer.scale.fill_(c.d_model**-0.5)
        return layer
    if c.self_attention == "multi_head":
        return MultiHeadAttention(c.num_heads, c.head_dim, query_dim=c.d_model)  # built now: the optimiser sees it
    return None


@register_model
class AttentionClassifier(KitModel):
    """The course's text classifier: Embedding -> Conv1D -> self-attention -> pooling -> Dense (module docstring).

    Args:
        config: a :class:`ClassifierConfig`.
        tokenizer: the word tokenizer ``classify`` reads with (``model.tokenizers["text"]``; saved with the model).

    Call arguments:
        input_ids: ``(B, T)`` token ids, ``config.pad_id`` = padding.
        labels: ``(B,)`` class ids, optional (gives ``loss``).
        output_attentions: also return the self-attention weights and the words' weights.

    Returns:
        :class:`ClassifierOutput`.

    ``training_step((ids, labels))`` returns the loss and ``correct`` / ``total`` counts (the trainer's accuracy).

    Example:
        >>> model = AttentionClassifier(ClassifierConfig(labels=("a", "b", "c"), vocab_size=30, embed_dim=6,
        ...                                               d_model=8, ff_dim=5, self_attention="dot"))
        >>> out = model(torch.tensor([[4, 5, 6, 0], [7, 8, 0, 0]]), output_attentions=True)
        >>> tuple(out.logits.shape), tuple(out.attentions[0].shape), tuple(out.word_weights.shape)
        ((2, 3), (2, 1, 4, 4), (2, 4))
    """

    model_type = "classifier"
    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig, tokenizer: object | None = None) -> None:
        super().__init__(config)
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=c.pad_id)
        self.conv = nn.Conv1d(c.embed_dim, c.d_model, c.kernel_size, padding=c.kernel_size // 2)
        self.self_attention = _self_attention(c)
        self.pool = _pooling(c)
        self.hidden = nn.Linear(c.d_model, c.ff_dim)
        self.output = nn.Linear(c.ff_dim, c.num_outputs)
        self.dropout = nn.Dropout(c.dropout)
        self._init_like_keras()
        if tokenizer is not None:
            self.tokenizers["text"] = tokenizer

    def _init_like_keras(self) -> None:
        """Keras' initialisers: embeddings uniform(-0.05, 0.05), Glorot-uniform kernels, zero biases."""
        with torch.no_grad():
            nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
            self.embedding.weight[self.config.pad_id] = 0.0
            for layer in (self.conv, self.hidden, self.output):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    # -- forward ------------------------------------------------------------------------------------------
    def _attend(self, x: Tensor, key_mask: Tensor, weights: bool) -> tuple[Tensor, Tensor | None]:
        """Self-attention over the words: ``(B, T, D) -> (B, T, D)`` and weights ``(B, H, T, T)`` if asked."""
        if self.self_attention is None:
            return x, None
        out = self.self_attention(x, x, query_mask=key_mask, value_mask=key_mask, return_attention_scores=weights)
        if not weights:
            return out, None
        out, w = out
        return out, (w[:, None] if w.dim() == 3 else w)  # "dot": (B, T, T) -> (B, 1, T, T)

    def forward(self, input_ids: Tensor, labels: Tensor | None = None,
                output_attentions: bool = False) -> ClassifierOutput:
        key_mask = input_ids != self.config.pad_id  # (B, T) True = a real word
        # 1. embed (padding zeroed so the convolution sees zeros there)
        x = self.dropout(self.embedding(input_ids)) * key_mask[..., None]  # (B, T, E)
        # 2. Conv1D over the words, ReLU
        x = F.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (B, T, D)
        # 3. self-attention
        x, attn = self._attend(x, key_mask, output_attentions)  # (B, T, D), (B, H, T, T) | None
        # 4. pooling over the words
        h, word_weights = self.pool(x, key_mask)  # (B, D), (B, T) | None
        if word_weights is None and attn is not None:
            word_weights = received_attention(attn, key_mask)
        # 5. the two Dense layers
        logits = self.output(self.dropout(F.relu(self.hidden(h))))  # (B, C) or (B, 1)
        loss = None if labels is None else self.loss(logits, labels)
        return ClassifierOutput(logits, loss, None if attn is None else (attn,), word_weights)

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy of ``logits`` against class ids ``labels (B,)`` (binary: of the sigmoid)."""
        if self.config.num_outputs == 1:
            return F.binary_cross_entropy_with_logits(logits[:, 0], labels.float())
        return F.cross_entropy(logits, labels)

    def probabilities(self, logits: Tensor) -> Tensor:
        """Class probabilities ``(B, C)`` from logits (binary: ``[1 - p, p]`` with ``p = sigmoid``)."""
        if self.config.num_outputs == 1:
            p = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - p, p], dim=-1)
        return logits.softmax(-1)

    def training_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of one ``(ids (B, T), labels (B,))`` batch, with ``correct`` / ``total`` counts."""
        ids, labels = batch
        out = self(ids, labels)
        pred = self.probabilities(out.logits.detach()).argmax(-1)
        return out.loss, {"correct": (pred == labels).sum(), "total": torch.tensor(labels.numel())}

    # -- classify -----------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, cut to ``config.max_len``; ``ValueError`` for a non-str or empty text."""
        tok = self.tokenizers.get("text")
        if tok is None:
            raise ValueError("Expected a model with a tokenizer (model.tokenizers['text']). Received: none")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"Expected texts to be strings. Received: {type(t).__name__} at index {i}")
            if not t.strip():
                raise ValueError(f"Expected non-empty texts. Received: an empty text at index {i}")
        return [ids[: self.config.max_len] for ids in tok.encode_batch(texts, add_special=False)]

    @torch.no_grad()
    def classify(self, texts: Sequence[str], return_weights: bool = False, top_k: int = 5,
                 batch_size: int = 64) -> list[Classification]:
        """Label, probability and (with ``return_weights``) the most-weighted words of each text.

        Args:
            texts: the texts (non-empty strings).
            return_weights: also give the ``top_k`` words the attention weighted most (punctuation and
                unknown words are left out; a word repeated counts once, at its largest weight).
            top_k: how many words.
            batch_size: texts per forward pass.

        Returns:
            One :class:`Classification` per text.

        Example:
            >>> from attnkit.data.news import train_word_tokenizer
            >>> tok = train_word_tokenizer(["good film", "bad plot"], min_frequency=1)
            >>> model = AttentionClassifier(ClassifierConfig(labels=("neg", "pos"), vocab_size=tok.vocab_size,
            ...                                               embed_dim=4, d_model=6, ff_dim=3), tok)
            >>> r = model.classify(["good plot"], return_weights=True, top_k=2)[0]
            >>> r.label in ("neg", "pos"), 0.5 <= r.probability <= 1, sorted(w for w, _ in r.word_weights)
            (True, True, ['good', 'plot'])
        """
        rows = self.encode(texts)
        warn_unknown_texts(rows, self.tokenizers["text"].unk_id, stacklevel=4)  # the caller's line (past no_grad)
        was_training = self.training
        self.eval()
        try:
            return self._classify(rows, return_weights, top_k, batch_size)
        finally:
            self.train(was_training)

    def _classify(self, rows: list[list[int]], return_weights: bool, top_k: int,
                  batch_size: int) -> list[Classification]:
        device = next(self.parameters()).device
        results = []
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            ids = pad_ids(chunk, self.config.pad_id).to(device)  # (B, T)
            out = self(ids, output_attentions=return_weights)
            prob, pred = self.probabilities(out.logits).max(-1)  # (B,), (B,)
            for i, row in enumerate(chunk):
                words = self._top_words(row, out.word_weights[i], top_k) if return_weights else None
                results.append(Classification(self.config.labels[int(pred[i])], float(prob[i]), words))
        return results

    def _top_words(self, row: list[int], weights: Tensor, top_k: int) -> tuple[tuple[str, float], ...]:
        """The ``top_k`` distinct words of ``row`` by weight (letters or digits only, ``<unk>`` left out)."""
        tok = self.tokenizers["text"]
        tokens = tok.tokens(row)
        picked: dict[str, float] = {}
        for t in weights[: len(row)].argsort(descending=True).tolist():
            word = tokens[t]
            if row[t] == tok.unk_id or word in picked or not any(ch.isalnum() for ch in word):
                continue
            picked[word] = float(weights[t])
            if len(picked) == top_k:
                break
        return tuple(picked.items())

    def summary(self, seq_len: int = 16, batch_size: int = 1, **kwargs) -> str:
        """Print and return the layer table for an example input of ``(batch_size, seq_len)`` ids.

        Example:
            >>> table = AttentionClassifier(ClassifierConfig(vocab_size=30)).summary(print_fn=None)
            >>> "pool" in table and "Total" in table
            True
        """
        device = next(self.parameters()).device
        ids = torch.full((batch_size, seq_len), self.config.pad_id + 1, dtype=torch.long, device=device)
        return super().summary(ids, **kwargs)


def received_attention(weights: Tensor, key_mask: Tensor) -> Tensor:
    """The attention each word receives: ``weights (B, H, Tq, Tk)`` averaged over heads and over the real
    query words, ``(B, Tk)``; each row sums to 1 over the real words (0 for an empty row).

    Example:
        >>> w = torch.tensor([[[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]])  # (1, 1, 3, 3)
        >>> received_attention(w, torch.tensor([[True, True, False]]))
        tensor([[0.7500, 0.2500, 0.0000]])
    """
    q = key_mask[:, None, :, None].to(weights.dtype)  # (B, 1, Tq, 1)
    summed = (weights * q).sum(dim=(1, 2))  # (B, Tk)
    return summed / (q.sum(dim=(1, 2)) * weights.shape[1]).clamp(min=1)
