"""The ``attnkit experiment classifier`` experiment: three text classifiers on honest splits with equal budgets.

One seed is one split of the corpus (BBC News by default, or a ``text,label`` CSV): stratified by class, with
every group of near-duplicate texts (word-set Jaccard >= ``jaccard``, 0.9 by default; see
:mod:`attnkit.data.near_duplicates`) wholly in train, validation or test. On that split ``classifier_seed``
trains, with one stated budget:

- the attention classifier (``attnkit train classifier``'s model: Conv1D + attention pooling);
- TF-IDF + logistic regression, ``C`` in (1, 10, 100) chosen by validation accuracy;
- all-MiniLM-L6-v2 fine-tuned with a classification head (``--no-minilm`` leaves it out).

**The budget.** Every model reads only the first ``words`` words of each text (train, validation and test),
and trains on the same training texts. The attention classifier and MiniLM train ``epochs`` passes in
batches of ``batch_size`` (the same number of updates), each with a cosine schedule after 10% warmup;
validation accuracy is measured ``checks`` times per epoch (and at the last step) and the best checkpoint is
kept (validation selection; ``best_epoch`` says where it was, in epochs).
MiniLM reads word pieces, at most ``minilm_max_len`` of them (the report gives the share of training texts
cut by that limit).

It reports per model the test accuracy, the validation accuracy of the chosen epoch or ``C``, and the
training time (validation checks included); beside them the majority class and chance (1 / classes) as
references; and the explanation check of the attention classifier (the share of correctly classified test
texts whose 5 most-attended words include one of the 50 words TF-IDF + logistic regression finds most
indicative of the class) next to its chance level (5 words drawn at random from each text, computed exactly:
:func:`attnkit.recipes.classifier.explanation_chance`).

Example:
    >>> ClassifierSettings().quick().epochs, ClassifierSettings().words
    (1, 32)
    >>> first_words(LabeledTexts(["a b  c\\nd", "e"], ["x", "y"], "mem"), 2).texts
    ['a b', 'e']
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from attnkit.data.near_duplicates import (
    NEAR_DUPLICATE_JACCARD,
    check_threshold,
    max_jaccard,
    near_duplicate_pairs,
)
from attnkit.data.news import BBC_NEWS, LabeledTexts, load_labeled_texts
from attnkit.errors import InputError
from attnkit.experiments.harness import Experiment, Panel, Rows, Table
from attnkit.recipes.classifier import (
    ClassifierReport,
    ClassifierRunSpec,
    classifier_run,
    load_classifier_splits,
)
from attnkit.recipes.classifier_baselines import check_baselines
from attnkit.recipes.common import Log, no_log
from attnkit.training.trainer import TrainConfig

NAMES = {"attention": "attention classifier", "tfidf": "TF-IDF + logistic regression",
         "minilm": "MiniLM (all-MiniLM-L6-v2) fine-tuned"}
REFERENCES = ("majority class (reference)", "chance, 1 / classes (reference)")
CHECKS = ("5 most-attended words", "5 random words of the text (chance)")


@dataclass
class ClassifierSettings:
    """The stated budget and the data of the experiment (``quick()`` shrinks it to a smoke test).

    Example:
        >>> ClassifierSettings(words=0).check()
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --words must be >= 1. Received: 0
    """

    data: str = BBC_NEWS  # "bbc-news" or a text,label CSV
    words: int = 32  # every model reads the first `words` words of each text
    epochs: int = 2  # passes over the training texts of the attention classifier and MiniLM
    checks: int = 2  # validation checks per epoch of both (the best checkpoint is kept)
    batch_size: int = 16  # texts per update, both
    lr: float = 1e-2  # the attention classifier's peak learning rate
    minilm: bool = True
    minilm_lr: float = 1e-4  # MiniLM's peak learning rate
    minilm_max_len: int = 128  # word pieces ([CLS] and [SEP] included): holds 32 BBC words (longest: 68)
    jaccard: float = NEAR_DUPLICATE_JACCARD  # near-duplicate threshold of the split
    valid_fraction: float = 0.1
    test_fraction: float = 0.2
    min_frequency: int = 2  # the attention classifier's vocabulary: words seen at least this often
    embed_dim: int = 64  # the attention classifier: `attnkit train classifier`'s defaults
    d_model: int = 128
    ff_dim: int = 64
    is_quick: bool = False

    def quick(self) -> ClassifierSettings:
        """A smoke test of seconds per seed: one epoch of short texts, a tiny classifier; figures mean nothing."""
        return ClassifierSettings(**{**asdict(self), "words": 16, "epochs": 1, "batch_size": 8,
                                     "minilm_max_len": 24, "min_frequency": 1, "embed_dim": 8, "d_model": 8,
                                     "ff_dim": 8, "is_quick": True})

    def check(self) -> None:
        """``InputError`` naming the flag of a value out of range."""
        for flag, value in (("--words", self.words), ("--epochs", self.epochs), ("--batch-size", self.batch_size),
                            ("--min-frequency", self.min_frequency), ("checks", self.checks)):
            if value < 1:
                raise InputError(f"{flag} must be >= 1. Received: {value}")
        if not 8 <= self.minilm_max_len <= 512:
            raise InputError(f"--minilm-max-len must be in [8, 512]. Received: {self.minilm_max_len}")
        for flag, value in (("--lr", self.lr), ("minilm_lr", self.minilm_lr)):
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{flag} must be a finite number > 0. Received: {value}")
        try:
            check_threshold(self.jaccard)
        except ValueError:
            raise InputError(f"--jaccard must be in (0, 1]. Received: {self.jaccard}") from None
        check_baselines(("minilm",) if self.minilm else ())
        data = load_labeled_texts(self.data)  # a missing or broken file: one line naming it, before any writing
        if len(data.classes) < 2:
            raise InputError(f"{data.source}: every text has the label {data.classes[0]!r}. Expected at least 2 "
                             "classes")

    def budget(self) -> str:
        """The budget in one sentence, for the report."""
        minilm = (f" MiniLM reads at most {self.minilm_max_len} word pieces ([CLS] and [SEP] included)."
                  if self.minilm else "")
        return (f"Budget: every model reads the first {self.words} words of each text and trains on the same "
                f"training texts; the attention classifier{' and MiniLM' if self.minilm else ''} train "
                f"{self.epochs} epoch{'s' if self.epochs > 1 else ''} in batches of {self.batch_size} (cosine "
                f"schedule, 10% warmup), validation accuracy checked {self.checks} time{'s' if self.checks > 1 else ''}"
                f" per epoch and the best checkpoint kept; TF-IDF + logistic "
                f"regression takes C in (1, 10, 100) by validation accuracy.{minilm} Times include the "
                f"validation checks.")


def first_words(data: LabeledTexts, n: int) -> LabeledTexts:
    """``data`` with each text cut to its first ``n`` white-space separated words (joined by one space)."""
    return LabeledTexts([" ".join(t.split()[:n]) for t in data.texts], list(data.labels), data.source, data.lines)


def split_rows(splits: dict[str, LabeledTexts], s: ClassifierSettings) -> Rows:
    """The split's sizes and its honesty: near-duplicate pairs, texts in groups of two or more, and the
    highest word-set Jaccard of a test text with a training text (full texts, before the cut)."""
    texts = [t for part in splits.values() for t in part.texts]
    pairs = near_duplicate_pairs(texts, s.jaccard)
    closest = max(max_jaccard(splits["test"].texts, splits["train"].texts), default=0.0)
    return [{"data": s.data, **{k: len(v) for k, v in splits.items()}, "near_duplicate_pairs": len(pairs),
             "texts_in_groups": len({i for p in pairs for i in p[:2]}), "max_test_train_jaccard": closest}]


def model_rows(rep: ClassifierReport, splits: dict[str, LabeledTexts]) -> Rows:
    """Test accuracy, validation accuracy and training time of every model, then the two references."""
    rows = [{"model": NAMES["attention"], "test_accuracy": rep.test_accuracy, "train_seconds": rep.train_seconds,
             "validation_accuracy": rep.details.get("validation_accuracy")}]
    for b in rep.baselines:
        rows.append({"model": NAMES[b.name], "test_accuracy": b.accuracy, "train_seconds": b.seconds,
                     "validation_accuracy": b.details.get("validation_accuracy")})
    test = splits["test"].labels
    majority = Counter(splits["train"].labels).most_common(1)[0][0]
    rows.append({"model": REFERENCES[0], "test_accuracy": test.count(majority) / max(1, len(test))})
    rows.append({"model": REFERENCES[1], "test_accuracy": 1 / len(splits["train"].classes)})
    return rows


def choice_rows(rep: ClassifierReport, seed: int) -> Rows:
    """What validation chose in this split: the best epoch of each trained model, ``C`` of TF-IDF."""
    rows = [{"model": NAMES["attention"], "seed": seed, "best_epoch": rep.details.get("best_epoch")}]
    for b in rep.baselines:
        rows.append({"model": NAMES[b.name], "seed": seed, "best_epoch": b.details.get("best_epoch"),
                     "C": b.details.get("C"), "pieces_cut": b.details.get("cut")})
    return rows


def classifier_seed(s: ClassifierSettings, seed: int, device: str = "auto", log: Log = no_log) -> dict[str, Rows]:
    """One split (from ``seed``), the three models trained on it with the budget of ``s``, and their figures.

    Args:
        s: the settings (checked by the caller: ``s.check()``).
        seed: the split, the initialisations and the batch order.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        log: progress lines.

    Returns:
        ``{"split": rows, "accuracy": rows, "explanation": rows, "choices": rows}``.
    """
    spec = ClassifierRunSpec(data=s.data, seed=seed, valid_fraction=s.valid_fraction, test_fraction=s.test_fraction,
                             min_frequency=s.min_frequency, near_duplicate_jaccard=s.jaccard)
    full = load_classifier_splits(spec)
    splits = {k: first_words(v, s.words) for k, v in full.items()}
    per_epoch = math.ceil(len(splits["train"]) / s.batch_size)
    steps = s.epochs * per_epoch
    config = TrainConfig(steps=steps, lr=s.lr, schedule="cosine", warmup_steps=max(1, steps // 10),
                         eval_every=math.ceil(per_epoch / s.checks), log_every=per_epoch, seed=seed, device=device,
                         progress=False, out_dir=None)
    model = {"embed_dim": s.embed_dim, "d_model": s.d_model, "ff_dim": s.ff_dim, "max_len": 4 * s.words}
    minilm = {"epochs": s.epochs, "max_len": s.minilm_max_len, "batch_size": s.batch_size, "lr": s.minilm_lr,
              "checks_per_epoch": s.checks}
    run = classifier_run(splits, spec, config, model, batch_size=s.batch_size,
                         baselines=("minilm",) if s.minilm else (), minilm=minilm)
    rep = run.report(run.fit(), log=log)
    accuracy = model_rows(rep, splits)
    log(f"split {seed}: " + ", ".join(f"{r['model']} {r['test_accuracy']:.4f}" for r in accuracy[:-2]))
    explanation = [{"words": CHECKS[0], "share": rep.explanation, "texts": rep.explained},
                   {"words": CHECKS[1], "share": rep.explanation_chance, "texts": rep.explained}]
    return {"split": split_rows(full, s), "accuracy": accuracy, "explanation": explanation,
            "choices": choice_rows(rep, seed)}


def tables(s: ClassifierSettings) -> tuple[Table, ...]:
    """The report's tables; the accuracy table's note states the budget."""
    return (
        Table("accuracy", "Test accuracy per model (the same split and budget per seed)", ("model",),
              ("test_accuracy", "validation_accuracy", "train_seconds"), note=s.budget()),
        Table("explanation", "Explanation check of the attention classifier", ("words",), ("share", "texts"),
              note="share: correctly classified test texts whose 5 words include one of the 50 words TF-IDF + "
                   "logistic regression finds most indicative of the class; chance: 5 distinct words drawn at "
                   "random from the text, computed exactly."),
        Table("split", "The splits: sizes and near duplicates (full texts)", ("data",),
              ("train", "validation", "test", "near_duplicate_pairs", "texts_in_groups", "max_test_train_jaccard"),
              note=f"Near duplicates: word-set Jaccard >= {s.jaccard}, every group wholly in one split."),
        Table("choices", "Chosen on validation, per seed", ("model", "seed"), ("best_epoch", "C", "pieces_cut"),
              note="pieces_cut: share of training texts longer than MiniLM's word-piece limit."),
    )


PANELS = (Panel("accuracy", "model", "test_accuracy", ("model",), "model", "test accuracy"),
          Panel("accuracy", "model", "train_seconds", ("model",), "model", "training time (s)", log_y=True),
          Panel("explanation", "words", "share", ("words",), "", "share of correct test texts", ylim=(0.0, 1.02)))


def classifier_experiment(s: ClassifierSettings, run: Callable[[int], dict[str, Any]]) -> Experiment:
    """The harness's view of the experiment: tables, panels, settings and ``run``."""
    title = ("Text classifiers on splits without near duplicates, equal budgets"
             + (" (quick smoke test: its figures mean nothing)" if s.is_quick else ""))
    return Experiment("classifier", title, tables(s), PANELS, run, settings=asdict(s))


__all__ = ["CHECKS", "NAMES", "PANELS", "REFERENCES", "ClassifierSettings", "choice_rows", "classifier_experiment",
           "classifier_seed", "first_words", "model_rows", "split_rows", "tables"]
