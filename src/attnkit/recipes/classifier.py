"""The ``attnkit train classifier`` recipe: the attention classifier on BBC News or a CSV file, its baselines
on the same split in the same run, and the check that its attention points at words that decide.

- ``ClassifierRunSpec``: how the data is made (corpus or CSV, seed, split shares, vocabulary); ``run.json``.
- ``load_classifier_splits``: the stratified train / validation / test split with near-duplicate articles
  (word-set Jaccard >= 0.9) kept on one side (``attnkit.data.near_duplicates``), or a separate test CSV.
- ``build_classifier``: the word tokenizer and a fresh :class:`~attnkit.models.AttentionClassifier`.
- ``prepare_classifier`` -> ``ClassifierRun`` (a ``PreparedRun``): ``fit()`` trains (validation accuracy
  picks the best model), then ``report(result)`` scores it on the test split beside TF-IDF + logistic
  regression (and, asked for, fine-tuned MiniLM; both chosen on validation accuracy too) and runs
  ``explanation_check`` and its chance level ``explanation_chance``. ``classifier_run`` does the same on
  splits made elsewhere (``attnkit experiment classifier``).
- ``explanation_check``: for the correctly classified test texts, the share whose ``top_k`` attended words
  include one of the bag-of-words model's ``k`` most indicative words of the class;
  ``explanation_chance``: the same share expected of ``top_k`` words drawn at random from each text.

Example:
    >>> import tempfile, pathlib
    >>> from attnkit.training import TrainConfig
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "tiny.csv"
    >>> rows = [f"{w} {w} news {i},{c}" for c, w in [("a", "goal"), ("b", "vote")] for i in range(10)]
    >>> _ = p.write_text("text,label\\n" + "\\n".join(rows) + "\\n", encoding="utf-8")
    >>> run = prepare_classifier(ClassifierRunSpec(data=str(p), min_frequency=1),
    ...                          TrainConfig(steps=30, lr=0.02, eval_every=30, progress=False, device="cpu"),
    ...                          {"embed_dim": 8, "d_model": 8, "ff_dim": 4, "dropout": 0.0})
    >>> report = run.report(run.fit())
    >>> report.test_accuracy, report.baselines[0].name
    (1.0, 'tfidf')
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from attnkit.data.class_batches import LabelBatchStream
from attnkit.data.near_duplicates import NEAR_DUPLICATE_JACCARD, grouped_split
from attnkit.data.news import (
    BBC_NEWS,
    LabeledTexts,
    load_labeled_texts,
    read_labeled_csv,
    train_word_tokenizer,
)
from attnkit.errors import InputError
from attnkit.models.classifier import AttentionClassifier, ClassifierConfig
from attnkit.recipes.classifier_baselines import (
    BaselineResult,
    check_baselines,
    indicative_words,
    minilm_baseline,
    tfidf_baseline,
)
from attnkit.recipes.common import Log, PreparedRun, no_log
from attnkit.storage import read_json
from attnkit.training.runtime import global_batch_size
from attnkit.training.trainer import TrainConfig, TrainResult


@dataclass
class ClassifierRunSpec:
    """How a classifier run's data is made; saved as ``run.json``.

    Example:
        >>> ClassifierRunSpec().data
        'bbc-news'
    """

    data: str = BBC_NEWS  # "bbc-news" or a text,label CSV path
    seed: int = 0  # split, order and initialisation seed
    test: str | None = None  # a separate text,label CSV to test on (then --data gives train + validation only)
    valid_fraction: float = 0.1  # share of each class held out for validation (model selection)
    test_fraction: float = 0.2  # share of each class held out for the test (without `test`)
    vocab_size: int = 20000  # word vocabulary limit, special tokens included
    min_frequency: int = 2  # words seen fewer times in training become <unk>
    text_column: str = "text"  # CSV column holding the texts (--data and --test files)
    label_column: str = "label"  # CSV column holding the labels
    near_duplicate_jaccard: float = NEAR_DUPLICATE_JACCARD  # texts this similar (word sets) share a split

    @classmethod
    def read(cls, path: Path) -> ClassifierRunSpec | None:
        """``run.json`` of a run directory, or None when there is none (unknown keys are ignored)."""
        if not path.is_file():
            return None
        data = read_json(path, dict)  # names the file when damaged
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def load_classifier_splits(spec: ClassifierRunSpec) -> dict[str, LabeledTexts]:
    """Train / validation / test texts: a stratified split of ``spec.data`` (seeded) that keeps every group
    of near duplicates (word-set Jaccard >= ``spec.near_duplicate_jaccard``) on one side
    (:func:`attnkit.data.near_duplicates.grouped_split`); the test split from ``spec.test`` when given (its
    labels must all occur in training; near duplicates between that file and the training texts are not
    looked for).

    Raises:
        InputError: unreadable data (see :func:`attnkit.data.news.read_labeled_csv`), fewer than two classes,
            a test label never seen in training.
    """
    data = load_labeled_texts(spec.data, spec.text_column, spec.label_column)
    if len(data.classes) < 2:
        raise InputError(f"{data.source}: every text has the label {data.classes[0]!r}. Expected at least 2 classes")
    try:
        splits = grouped_split(data, spec.seed, spec.valid_fraction, 0.0 if spec.test else spec.test_fraction,
                               spec.near_duplicate_jaccard)
    except ValueError as err:
        raise InputError(str(err)) from err
    if spec.test:
        splits["test"] = read_labeled_csv(spec.test, spec.text_column, spec.label_column)
        splits["test"].check_known(splits["train"].classes)
    return splits


def build_classifier(train: LabeledTexts, spec: ClassifierRunSpec, **model: Any) -> AttentionClassifier:
    """A word tokenizer trained on ``train`` and a fresh classifier over ``train.classes``.

    Args:
        train: the training texts.
        spec: vocabulary settings and the seed of the initialisation.
        **model: :class:`ClassifierConfig` fields (``embed_dim``, ``d_model``, ``self_attention``, ``pooling``, ...).
    """
    tok = train_word_tokenizer(train.texts, spec.vocab_size, spec.min_frequency)
    try:
        config = ClassifierConfig(labels=tuple(train.classes), vocab_size=tok.vocab_size, pad_id=tok.pad_id, **model)
    except (TypeError, ValueError) as err:  # a model option out of range: a usage error
        raise InputError(str(err)) from err
    torch.manual_seed(spec.seed)
    return AttentionClassifier(config, tok)


def accuracy(model: AttentionClassifier, data: LabeledTexts) -> float:
    """Share of ``data`` that ``model.classify`` labels right (0.0 for no data)."""
    if not len(data):
        return 0.0
    return sum(r.label == y for r, y in zip(model.classify(data.texts), data.labels, strict=True)) / len(data)


def explanation_check(model: AttentionClassifier, test: LabeledTexts, indicative: dict[str, set[str]],
                      top_k: int = 5) -> tuple[float | None, int]:
    """Share of the correctly classified ``test`` texts whose ``top_k`` attended words include one of
    ``indicative[label]``; returns ``(share, number of correctly classified texts)`` (share None for 0).

    Example:
        >>> from attnkit.data.news import train_word_tokenizer
        >>> tok = train_word_tokenizer(["goal", "vote"], min_frequency=1)
        >>> m = AttentionClassifier(ClassifierConfig(labels=("a", "b"), vocab_size=tok.vocab_size, d_model=4), tok)
        >>> share, n = explanation_check(m, LabeledTexts(["goal"], [m.classify(["goal"])[0].label], "mem"),
        ...                              {"a": {"goal"}, "b": {"goal"}})
        >>> share, n
        (1.0, 1)
    """
    results = model.classify(test.texts, return_weights=True, top_k=top_k)
    hits = [any(w in indicative.get(y, ()) for w, _ in r.word_weights or ())
            for r, y in zip(results, test.labels, strict=True) if r.label == y]
    return (sum(hits) / len(hits) if hits else None), len(hits)


def explanation_chance(model: AttentionClassifier, test: LabeledTexts, indicative: dict[str, set[str]],
                       top_k: int = 5) -> float | None:
    """The chance level of :func:`explanation_check`: over the same correctly classified ``test`` texts, the
    mean probability that ``top_k`` distinct words drawn at random from the words the check could pick
    (the text's distinct words as the model reads them: cut to ``max_len``, letters or digits, not
    ``<unk>``) include one of ``indicative[label]``. Computed exactly: with ``u`` such words of which ``k``
    are indicative, ``1 - C(u - k, m) / C(u, m)`` for ``m = min(top_k, u)`` draws. None without a correctly
    classified text.

    Example (a text whose 2 readable words hold 1 indicative word, 1 word drawn: chance 1/2):
        >>> from attnkit.data.news import train_word_tokenizer
        >>> tok = train_word_tokenizer(["goal match"], min_frequency=1)
        >>> m = AttentionClassifier(ClassifierConfig(labels=("a", "b"), vocab_size=tok.vocab_size, d_model=4), tok)
        >>> y = m.classify(["goal match"])[0].label
        >>> explanation_chance(m, LabeledTexts(["goal match ."], [y], "mem"), {y: {"goal"}}, top_k=1)
        0.5
    """
    tok = model.tokenizers["text"]
    rows = model.encode(test.texts)
    chances = []
    for row, result, y in zip(rows, model.classify(test.texts), test.labels, strict=True):
        if result.label != y:
            continue
        words = {w for i, w in zip(row, tok.tokens(row), strict=True) if i != tok.unk_id and any(c.isalnum() for c in w)}
        u, k = len(words), len(words & set(indicative.get(y, ())))
        m = min(top_k, u)
        chances.append(1.0 - math.comb(u - k, m) / math.comb(u, m))
    return sum(chances) / len(chances) if chances else None


def classifier_details(result: TrainResult, steps_per_epoch: int) -> dict[str, Any]:
    """``best_step``, ``best_epoch`` (best step / steps per epoch) and ``validation_accuracy`` of a run."""
    best = result.best_step
    return {"best_step": best, "best_epoch": None if best is None else round(best / max(1, steps_per_epoch), 3),
            "validation_accuracy": result.best_metric}


# ----------------------------------------------------------------------------------------------------------
# The run and its report
# ----------------------------------------------------------------------------------------------------------


@dataclass
class ClassifierReport:
    """The figures of a classifier run (``report.json`` of ``attnkit train classifier``).

    Attributes:
        data: the corpus name or CSV path.
        sizes: texts per split.
        test_accuracy: the classifier's accuracy on the test split (None without one).
        prepare_seconds: tokenizer training and encoding; train_seconds: the trainer's time (evaluations
            included); steps: optimiser steps.
        baselines: TF-IDF + logistic regression, and MiniLM when asked for, on the same split.
        explanation: share of correctly classified test texts whose top-5 attended words include one of the
            bag-of-words model's 50 most indicative words of their class; explained: how many texts.
        explanation_chance: the same share expected of 5 random words of each text (its chance level).
        details: the classifier's validation selection (``best_step``, ``best_epoch``, ``validation_accuracy``).
    """

    data: str
    sizes: dict[str, int]
    test_accuracy: float | None
    prepare_seconds: float
    train_seconds: float
    steps: int
    baselines: list[BaselineResult] = field(default_factory=list)
    explanation: float | None = None
    explained: int = 0
    explanation_chance: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "baselines"}
        return {**out, "baselines": [b.to_dict() for b in self.baselines]}

    def lines(self) -> list[str]:
        """Readable lines: accuracies and times side by side, then the explanation check."""
        if self.test_accuracy is None:
            return ["no test split (too few texts per class): no test accuracy"]
        names = {"tfidf": "TF-IDF + logistic regression", "minilm": "MiniLM fine-tuned"}
        out = [f"test accuracy on {self.sizes['test']} texts of {self.data}:",
               f"  attention classifier  {self.test_accuracy:.4f}  (trained in {self.train_seconds:.1f} s, "
               f"{self.steps} steps; data prepared in {self.prepare_seconds:.1f} s)"]
        for b in self.baselines:
            out.append(f"  {names.get(b.name, b.name):<21} {b.accuracy:.4f}  (trained in {b.seconds:.1f} s)")
        if self.explanation is not None:
            out.append(f"attention check: for {self.explanation:.1%} of the {self.explained} correctly classified "
                       "test texts the 5 most-attended words include one of the 50 words a bag-of-words model "
                       f"finds most indicative of the class (5 random words of the text: "
                       f"{self.explanation_chance:.1%})")
        return out


@dataclass
class ClassifierRun(PreparedRun):
    """A :class:`PreparedRun` that also knows its splits; ``report(result)`` runs the baselines and checks.

    Attributes (beyond ``PreparedRun``'s):
        splits: the train / validation / test texts.
        spec: the data recipe.
        baselines: optional baselines to run (``"minilm"``); TF-IDF always runs.
        minilm: keyword arguments of :func:`minilm_baseline` (``epochs``, ``max_len``, ...).
        prepare_seconds: time spent on the tokenizer and the encoding.
    """

    splits: dict[str, LabeledTexts] = field(default_factory=dict)
    spec: ClassifierRunSpec = field(default_factory=ClassifierRunSpec)
    baselines: tuple[str, ...] = ()
    minilm: dict[str, Any] = field(default_factory=dict)
    prepare_seconds: float = 0.0

    def report(self, result: TrainResult, log: Log = no_log) -> ClassifierReport:
        """Test accuracy of the trained model, the baselines on the same split and the explanation check."""
        train, valid, test = self.splits["train"], self.splits["validation"], self.splits["test"]
        rep = ClassifierReport(self.spec.data, {k: len(v) for k, v in self.splits.items()}, None,
                               self.prepare_seconds, result.elapsed, result.steps,
                               details=classifier_details(result, self.stream.batches_per_epoch))
        if not len(test):
            return rep
        rep.test_accuracy = accuracy(self.model, test)
        log("training the TF-IDF + logistic-regression baseline")
        tfidf = tfidf_baseline(train, valid if len(valid) else train, test)
        rep.baselines.append(tfidf)
        indicative = indicative_words(tfidf, 50)
        rep.explanation, rep.explained = explanation_check(self.model, test, indicative, 5)
        rep.explanation_chance = explanation_chance(self.model, test, indicative, 5)
        if "minilm" in self.baselines:
            log("fine-tuning MiniLM (all-MiniLM-L6-v2) on the same split")
            rep.baselines.append(minilm_baseline(train, test, list(self.model.config.labels), seed=self.spec.seed,
                                                 device=self.config.device, valid=valid if len(valid) else None,
                                                 **self.minilm))
        return rep


def _best_accuracy(result: TrainResult) -> str | None:
    if result.best_metric is None:
        return None
    return f"best validation accuracy {result.best_metric:.4f} at step {result.best_step}; "


def prepare_classifier(spec: ClassifierRunSpec, config: TrainConfig, model: dict[str, Any], *,
                       batch_size: int = 32, baselines: tuple[str, ...] = (),
                       minilm: dict[str, Any] | None = None, log: Log = no_log) -> ClassifierRun:
    """The ``train classifier`` recipe: checked inputs, splits, tokenizer and model; nothing written.

    Args:
        spec: the data recipe (with ``config.resume``: the run's saved one).
        config: trainer settings; ``metric``/``mode`` are set here (validation accuracy, max). With
            ``resume`` the model and its tokenizer come from ``config.out_dir/checkpoint``.
        model: :class:`ClassifierConfig` fields.
        batch_size: texts per batch.
        baselines: optional baselines (``"minilm"``) for ``report``.
        minilm: settings of the MiniLM baseline (``epochs``, ``max_len``, ``batch_size``, ``lr``).
        log: where progress lines go.

    Returns:
        A :class:`ClassifierRun`; ``fit()`` trains, ``report(result)`` scores.
    """
    check_baselines(baselines)
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1. Received: {batch_size}")
    start = time.perf_counter()
    splits = load_classifier_splits(spec)
    return classifier_run(splits, spec, config, model, batch_size=batch_size, baselines=baselines, minilm=minilm,
                          log=log, started=start)


def classifier_run(splits: dict[str, LabeledTexts], spec: ClassifierRunSpec, config: TrainConfig,
                   model: dict[str, Any], *, batch_size: int = 32, baselines: tuple[str, ...] = (),
                   minilm: dict[str, Any] | None = None, log: Log = no_log,
                   started: float | None = None) -> ClassifierRun:
    """:func:`prepare_classifier` on ``splits`` made by the caller (``"train"``, ``"validation"``, ``"test"``):
    tokenizer and model from ``splits["train"]`` (or the checkpoint with ``config.resume``); ``started``:
    when preparing began (default: now), for ``prepare_seconds``."""
    start = time.perf_counter() if started is None else started
    train, valid = splits["train"], splits["validation"]
    if config.resume:  # the checkpoint fixes the model and its tokenizer
        net = AttentionClassifier.load(Path(str(config.out_dir)) / "checkpoint")
    else:
        net = build_classifier(train, spec, **model)
    labels = list(net.config.labels)
    train.check_known(labels)
    stream = LabelBatchStream(net.encode(train.texts), [labels.index(y) for y in train.labels],
                              global_batch_size(batch_size), spec.seed, net.config.pad_id)
    evaluate = (lambda m: {"accuracy": accuracy(m, valid)}) if len(valid) else None
    c = net.config
    summary = (f"training the attention classifier ({c.self_attention} self-attention, {c.pooling} pooling, "
               f"{net.num_parameters():,} parameters) on {spec.data}: {len(train)} texts in {len(labels)} "
               f"classes, {len(valid)} for validation, {len(splits['test'])} for the test")
    if evaluate is None:
        log("note: no validation split (too few texts per class): the last model is kept")
    config = dataclasses.replace(config, metric="accuracy", mode="max")
    return ClassifierRun(net, config, stream, evaluate, summary, best_line=_best_accuracy, splits=splits, spec=spec,
                         baselines=tuple(baselines), minilm=dict(minilm or {}),
                         prepare_seconds=time.perf_counter() - start)
