"""The ``attnkit experiment demo`` experiment: the demo's table as mean ± sd over seeds.

``attnkit demo`` trains a Bahdanau translator of dates and the same model without attention (one fixed
context vector, the ablation) for the same number of steps, and scores both on held-out dates. One seed of
this experiment is exactly that recipe (:func:`attnkit.recipes.demo.run_demo`, the function ``attnkit demo
--seed N`` calls), with one change: the clock budgets that keep the demo under three minutes (90 s per model,
the contrast model stopped 140 s after the start) are lifted to ``time_budget`` per model (600 s by default),
so that a busy machine changes the training times, not the figures. Training still stops where the demo's
stops on a quiet machine: after two validation checks without improvement (``patience``), so ``steps`` varies
with the seed, and the no-attention model gets the Bahdanau model's number of steps.

Per seed, :func:`demo_seed` reports for each model the steps, training seconds, held-out exact match (greedy
and beam 3) and the alignment error rate (AER, Och and Ney 2003) of the attention against the gold links of
the test dates, read by the argmax of each attention row. Beside them, two references that need no training,
scored on the same test dates (:func:`attnkit.experiments.alignment.baseline_scores`): ``diagonal`` links
output character ``i`` of ``T_out`` to input character ``floor((i + 0.5) * T_in / T_out)``; ``uniform`` links
every output character to every input character (uniform attention). The Bahdanau model's AER under every
link rule of ``attnkit.metrics.LINK_RULES`` is a second table. :func:`demo_experiment` hands the seed
function to the harness (``attnkit.experiments.harness``), which writes ``demo.json``, ``demo.md`` and
``demo.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from attnkit.experiments.alignment import baseline_scores
from attnkit.experiments.harness import Experiment, Panel, Rows, Table
from attnkit.recipes.common import Log, no_log
from attnkit.recipes.demo import DemoResult, DemoSettings, demo_settings, run_demo

TIME_BUDGET = 600.0
"""Seconds of training per model in the experiment (a safety net: patience stops the demo's runs first)."""
BAHDANAU, NONE = "Bahdanau", "no attention"
REFERENCES = {"diagonal": "diagonal (no training)", "uniform": "uniform (no training)"}
"""``baseline_scores`` name -> the row's name in the report."""


def experiment_settings(quick: bool = False, steps: int | None = None,
                        time_budget: float | None = None) -> DemoSettings:
    """The demo's recipe (``QUICK`` when ``quick``) with the clock budgets lifted to ``time_budget`` per model
    (default :data:`TIME_BUDGET`; quick: the smoke test's 30 s) and no contrast deadline.

    Example:
        >>> s = experiment_settings()
        >>> s.steps, s.patience, s.time_budget, s.contrast_deadline, s.contrast
        (1000, 2, 600.0, None, True)
        >>> experiment_settings(quick=True, steps=3).steps
        3
    """
    default = None if quick else TIME_BUDGET
    s = demo_settings(quick, steps, time_budget if time_budget is not None else default, contrast=True)
    s.contrast_deadline = None
    return s


def demo_rows(summary: dict[str, Any], references: dict[str, dict[str, float]]) -> dict[str, Rows]:
    """The tables of one seed from a demo summary (``run_demo``'s) and ``baseline_scores`` of its test pairs:
    ``{"models": rows, "rules": rows}``.

    Example:
        >>> summary = {"steps": 400, "train_seconds": 38.2, "exact_match": 1.0, "exact_match_beam": 1.0,
        ...            "alignment_error_rate": {"argmax": 0.26, "later": 0.4}, "stop_reason": "patience",
        ...            "contrast": {"steps": 400, "train_seconds": 18.4, "exact_match": 0.865,
        ...                         "stop_reason": "steps"}}
        >>> tables = demo_rows(summary, {"diagonal": {"aer": 0.5, "links": 1.0}})
        >>> [(r["model"], r["aer"]) for r in tables["models"]]
        [('Bahdanau', 0.26), ('no attention', None), ('diagonal (no training)', 0.5)]
        >>> tables["rules"]
        [{'rule': 'argmax', 'aer': 0.26}, {'rule': 'later', 'aer': 0.4}]
    """
    def row(name: str, run: dict[str, Any], aer: float | None) -> dict[str, Any]:
        return {"model": name, "steps": run["steps"], "train_seconds": run["train_seconds"],
                "exact_match": run["exact_match"], "exact_match_beam": run.get("exact_match_beam"), "aer": aer,
                "stop_reason": run["stop_reason"]}

    models = [row(BAHDANAU, summary, summary["alignment_error_rate"]["argmax"])]
    if summary.get("contrast"):
        models.append(row(NONE, summary["contrast"], None))
    models += [{"model": REFERENCES[name], "aer": v["aer"]} for name, v in references.items()]
    rules = [{"rule": rule, "aer": aer} for rule, aer in summary["alignment_error_rate"].items()]
    return {"models": models, "rules": rules}


def demo_seed(s: DemoSettings, seed: int, device: str = "auto", log: Log = no_log) -> tuple[DemoResult, dict[str, Rows]]:
    """One seed: the demo (``run_demo``) and the references on its test pairs.

    Args:
        s: the settings (:func:`experiment_settings`).
        seed: data, initialisation and batches.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        log: progress lines.

    Returns:
        ``(the demo's result, {"models": rows, "rules": rows})`` (the result holds the Bahdanau model).
    """
    result = run_demo(s, seed=seed, device=device, log=lambda m: log(f"seed {seed}: {m}"))
    return result, demo_rows(result.summary, baseline_scores(result.test, "dates"))


TABLES = (
    Table("models", "Held-out dates: the demo's models and the references", ("model",),
          ("steps", "train_seconds", "exact_match", "exact_match_beam", "aer"),
          note="exact_match: greedy; exact_match_beam: beam 3. aer: alignment error rate against the gold links "
          "of the test dates (0 = the gold links, lower is better); Bahdanau's links are the argmax of each "
          "attention row. The no-attention model (the ablation) has no attention to score and trains for the "
          "Bahdanau model's number of steps. The references need no training: diagonal links output character i "
          "of T_out to input character floor((i + 0.5) T_in / T_out), uniform links every output character to "
          "every input character (uniform attention)."),
    Table("rules", "Bahdanau attention: AER by link rule", ("rule",), ("aer",),
          note="The rules of attnkit.metrics.LINK_RULES that turn attention weights into links: the largest "
          "weight of each output row, the largest of the next row (the one-step shift Bahdanau-style decoders "
          "show), every weight at or above a threshold."),
)
PANELS = (
    Panel("models", "model", "exact_match", ("model",), "model", "held-out exact match (greedy)", ylim=(0.0, 1.02)),
    Panel("models", "model", "aer", ("model",), "model", "AER (lower is better)", ylim=(0.0, 1.02)),
)


def demo_experiment(s: DemoSettings, run: Callable[[int], dict[str, Rows]]) -> Experiment:
    """The harness's view of the experiment: its tables, panels and settings, and ``run`` (one seed)."""
    title = "The demo over seeds: dates -> ISO 8601 with and without Bahdanau attention" + (
        " (--quick: a smoke test, its figures mean nothing)" if s.quick else "")
    return Experiment("demo", title, TABLES, PANELS, run, settings=asdict(s))


__all__ = ["BAHDANAU", "NONE", "PANELS", "REFERENCES", "TABLES", "TIME_BUDGET", "demo_experiment", "demo_rows",
           "demo_seed", "experiment_settings"]
