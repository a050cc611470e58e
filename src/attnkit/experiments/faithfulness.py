"""The ``attnkit experiment faithfulness`` experiment: are attention explanations faithful to the classifier?

Jain and Wallace (2019, "Attention is not Explanation") found attention often disagrees with gradient and
leave-one-out importance and can be shuffled without changing the prediction; Wiegreffe and Pinter (2019)
answered that it depends on the model. Here, for one seed, ``faithfulness_seed``

1. splits BBC News with the seed (``attnkit.recipes.classifier``) and trains two classifiers on it with
   fixed budgets: the attention classifier (``classifier_steps`` steps) and all-MiniLM-L6-v2 with a
   classification head (``minilm_epochs`` passes, through ``minilm_baseline``);
2. explains ``texts`` test texts (a seeded sample) with every method of :mod:`attnkit.recipes.explanations`
   (attention, rollout, gradient-weighted attention, gradient x input, leave-one-out, random: the floor);
3. measures each method (:mod:`attnkit.experiments.faithfulness_measures`): comprehensiveness and sufficiency
   AOPC over ERASER's bins (1, 5, 10, 20, 50% of the tokens), Kendall's tau-b against leave-one-out (mean
   over texts), and the permutation test (``permutations`` shuffles of the attention per text).

``faithfulness_experiment`` hands it to the harness, which runs the seeds and writes ``faithfulness.json``,
``.md`` and ``.png`` (mean ± sd over the seeds).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from attnkit.data.news import LabeledTexts
from attnkit.errors import InputError
from attnkit.experiments.faithfulness_measures import (
    FRACTIONS,
    aopc,
    erasure_curves,
    kendall_tau,
    permutation_summary,
)
from attnkit.experiments.harness import Experiment, Panel, Rows, Table
from attnkit.recipes.classifier import ClassifierRunSpec, accuracy, prepare_classifier
from attnkit.recipes.classifier_baselines import check_baselines, minilm_baseline
from attnkit.recipes.common import Log, no_log
from attnkit.recipes.explanations import (
    METHODS,
    BertView,
    ClassifierView,
    View,
    class_probability,
    explain,
    minilm_tokenizer,
    permutation_deltas,
    predicted,
)
from attnkit.training.trainer import TrainConfig

CLASSIFIERS: tuple[str, ...] = ("attention classifier", "MiniLM")


@dataclass
class FaithfulnessSettings:
    """Budgets and sizes of the experiment (``quick()`` shrinks them to a smoke test).

    Example:
        >>> FaithfulnessSettings().quick().texts
        4
    """

    texts: int = 100  # test texts explained per classifier (a seeded sample of the test split)
    permutations: int = 30  # shuffles of the attention per text (permutation test)
    within: float = 0.01  # a shuffle "does not change the prediction" when |Δp| <= within
    fractions: tuple[float, ...] = FRACTIONS  # ERASER's bins
    classifier_steps: int = 300  # attention classifier: optimiser steps (batch 32, lr 1e-2, cosine)
    self_attention: str = "none"  # attention classifier: none (attention pooling only), dot or multi_head
    minilm_epochs: float = 1.0  # MiniLM: passes over the training split (batch 16, lr 1e-4, cosine)
    minilm_max_len: int = 64  # MiniLM: word pieces per text, [CLS] and [SEP] included
    is_quick: bool = False
    fixed: dict[str, Any] = field(default_factory=lambda: {"classifier_batch": 32, "classifier_lr": 1e-2,
                                                           "minilm_batch": 16, "minilm_lr": 1e-4})

    def quick(self) -> FaithfulnessSettings:
        """A smoke test of a minute: 4 texts, 5 shuffles, 20 classifier steps, 2 MiniLM steps (no real figures)."""
        return FaithfulnessSettings(**{**asdict(self), "texts": 4, "permutations": 5, "classifier_steps": 20,
                                       "minilm_epochs": 0.02, "minilm_max_len": 32, "is_quick": True})

    def check(self) -> None:
        """``InputError`` naming the flag for a value out of range (or MiniLM's wheel missing)."""
        for name, value in (("--texts", self.texts), ("--permutations", self.permutations),
                            ("--classifier-steps", self.classifier_steps)):
            if value < 1:
                raise InputError(f"{name} must be >= 1. Received: {value}")
        if not (self.minilm_epochs > 0 and math.isfinite(self.minilm_epochs)):
            raise InputError(f"--minilm-epochs must be > 0. Received: {self.minilm_epochs}")
        if self.minilm_max_len < 8:
            raise InputError(f"--minilm-max-len must be >= 8. Received: {self.minilm_max_len}")
        if self.self_attention not in ("none", "dot", "multi_head"):
            raise InputError(f"--self-attention must be one of none, dot, multi_head. Received: {self.self_attention!r}")
        check_baselines(["minilm"])


def sample_texts(test: LabeledTexts, n: int, seed: int) -> list[str]:
    """``n`` texts of ``test`` in a seeded random order (the split lists its classes one after another).

    Example:
        >>> t = LabeledTexts(["a", "b", "c", "d"], ["x", "x", "y", "y"], "mem")
        >>> sorted(sample_texts(t, 9, 0))
        ['a', 'b', 'c', 'd']
    """
    order = list(range(len(test)))
    random.Random(seed).shuffle(order)
    return [test.texts[i] for i in order[:n]]


def explain_texts(view: View, texts: list[str], s: FaithfulnessSettings, seed: int) -> dict[str, Any]:
    """Every method on every text: comprehensiveness and sufficiency curves ``(F,)`` and tau against
    leave-one-out per method, and the permutation test's ``|Δp|`` ``(P,)`` per text."""
    gen = torch.Generator().manual_seed(seed)
    comp: dict[str, list] = {m: [] for m in METHODS}
    suff: dict[str, list] = {m: [] for m in METHODS}
    tau: dict[str, list] = {m: [] for m in METHODS}
    deltas = []
    for text in texts:
        ids = view.encode(text)
        if not ids:
            continue
        cls, _ = predicted(view, ids)

        def prob(rows: list[list[int]], cls: int = cls) -> torch.Tensor:
            return class_probability(view, rows, cls)

        scores = {m: explain(view, ids, m, gen) for m in METHODS}
        for m, sc in scores.items():
            c, u = erasure_curves(ids, sc, prob, s.fractions)
            comp[m].append(c)
            suff[m].append(u)
            tau[m].append(kendall_tau(sc.numpy(), scores["leave_one_out"].numpy()))
        deltas.append(permutation_deltas(view, ids, s.permutations, gen))
    return {"comp": comp, "suff": suff, "tau": tau, "deltas": torch.stack(deltas)}


def _mean(values: list[float]) -> float | None:
    given = [v for v in values if not math.isnan(v)]
    return sum(given) / len(given) if given else None


def rows_of(name: str, found: dict[str, Any], s: FaithfulnessSettings) -> dict[str, Rows]:
    """The tables' rows of one classifier from :func:`explain_texts`'s result."""
    methods, curves = [], []
    for m in METHODS:
        comp, suff = torch.stack(found["comp"][m]).mean(0), torch.stack(found["suff"][m]).mean(0)  # (F,)
        methods.append({"classifier": name, "method": m, "comprehensiveness": aopc(comp),
                        "sufficiency": aopc(suff),
                        "tau_vs_loo": None if m == "leave_one_out" else _mean(found["tau"][m])})
        curves += [{"classifier": name, "method": m, "percent": round(100 * f, 3), "comprehensiveness": float(c),
                    "sufficiency": float(u)} for f, c, u in zip(s.fractions, comp, suff, strict=True)]
    perm = {"classifier": name, **permutation_summary(found["deltas"], s.within)}
    return {"methods": methods, f"curves {name}": curves, "permutation": [perm]}


def _train_classifier(s: FaithfulnessSettings, seed: int, device: str) -> tuple[Any, dict, float]:
    """The attention classifier trained on the seed's split: ``(run, splits, seconds)``."""
    config = TrainConfig(steps=s.classifier_steps, lr=s.fixed["classifier_lr"], schedule="cosine",
                         warmup_steps=min(20, s.classifier_steps // 2), eval_every=max(1, s.classifier_steps // 6),
                         seed=seed, device=device, progress=False, out_dir=None)
    run = prepare_classifier(ClassifierRunSpec(seed=seed), config, {"self_attention": s.self_attention},
                             batch_size=s.fixed["classifier_batch"])
    result = run.fit()
    return run, run.splits, result.elapsed


def faithfulness_seed(s: FaithfulnessSettings, seed: int, device: str = "cpu", log: Log = no_log) -> dict[str, Rows]:
    """Train both classifiers on the seed's split, explain ``s.texts`` test texts, measure every method.

    Returns:
        ``{"models": rows, "methods": rows, "curves <classifier>": rows, "permutation": rows}``.
    """
    run, splits, cls_seconds = _train_classifier(s, seed, device)
    train, test = splits["train"], splits["test"]
    log(f"attention classifier: {cls_seconds:.1f} s of training; fine-tuning MiniLM "
        f"({s.minilm_epochs} epochs, {s.minilm_max_len} word pieces)")
    base = minilm_baseline(train, test, list(run.model.config.labels), epochs=s.minilm_epochs,
                           max_len=s.minilm_max_len, batch_size=s.fixed["minilm_batch"], lr=s.fixed["minilm_lr"],
                           seed=seed, device=device)
    base.model.cpu()
    views: dict[str, View] = {CLASSIFIERS[0]: ClassifierView(run.model.cpu()),
                              CLASSIFIERS[1]: BertView(base.model, minilm_tokenizer(), s.minilm_max_len)}
    texts = sample_texts(test, s.texts, seed)
    tables: dict[str, Rows] = {"models": [], "methods": [], "permutation": []}
    trained = {CLASSIFIERS[0]: (accuracy(run.model, test), cls_seconds), CLASSIFIERS[1]: (base.accuracy, base.seconds)}
    for name, view in views.items():
        began = time.perf_counter()
        found = explain_texts(view, texts, s, seed)
        for key, rows in rows_of(name, found, s).items():
            tables.setdefault(key, []).extend(rows)
        took = time.perf_counter() - began
        log(f"{name}: {len(texts)} texts explained and measured in {took:.1f} s")
        tables["models"].append({"classifier": name, "test_accuracy": trained[name][0],
                                 "train_seconds": round(trained[name][1], 1), "explain_seconds": round(took, 1)})
    return tables


def tables_and_panels(within: float) -> tuple[tuple[Table, ...], tuple[Panel, ...]]:
    """The report's tables and the PNG's panels (comprehensiveness and sufficiency against the share of tokens)."""
    tables = (
        Table("models", "The two classifiers (test accuracy on the whole test split)", ("classifier",),
              ("test_accuracy", "train_seconds", "explain_seconds")),
        Table("methods", "Faithfulness of each explanation: AOPC over 1, 5, 10, 20, 50% of the tokens; Kendall's "
              "tau-b against leave-one-out", ("classifier", "method"), ("comprehensiveness", "sufficiency",
                                                                        "tau_vs_loo"),
              note="Comprehensiveness: drop in p(predicted class) when the top tokens are removed (higher is more "
                   "faithful). Sufficiency: drop when only the top tokens are kept (lower is more faithful). "
                   "random is the floor."),
        Table("permutation", "Permutation test (Jain and Wallace 2019): |change of p(predicted class)| when the "
              "attention is shuffled over the text's positions", ("classifier",),
              ("median", "p90", "within", "texts_within", "max"),
              note=f"within: share of shuffles with |Δp| <= {within}; texts_within: share of texts whose median "
                   f"|Δp| is <= {within}. Classifier: its pooling weights; MiniLM: each head of the last layer."),
        *(Table(f"curves {c}", f"{c}: comprehensiveness and sufficiency per share of tokens",
                ("method", "percent"), ("comprehensiveness", "sufficiency")) for c in CLASSIFIERS),
    )
    panels = tuple(Panel(f"curves {c}", "percent", y, ("method",), "% of tokens removed" if y[0] == "c"
                         else "% of tokens kept", f"{c}: {y}") for c in CLASSIFIERS
                   for y in ("comprehensiveness", "sufficiency"))
    return tables, panels


def faithfulness_experiment(s: FaithfulnessSettings, run: Callable[[int], dict[str, Rows]]) -> Experiment:
    """The harness's view of the experiment: its tables, panels and settings, and ``run`` (one seed)."""
    tables, panels = tables_and_panels(s.within)
    title = "Faithfulness of explanations, BBC News" + (" (--quick: a smoke test, no real figures)" if s.is_quick else "")
    return Experiment("faithfulness", title,
                      tables, panels, run, settings=asdict(s))


__all__ = ["CLASSIFIERS", "FaithfulnessSettings", "explain_texts", "faithfulness_experiment", "faithfulness_seed",
           "rows_of", "sample_texts", "tables_and_panels"]
