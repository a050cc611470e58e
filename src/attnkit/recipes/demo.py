"""The ``attnkit demo`` recipe: a Bahdanau encoder-decoder on the dates task, scored on held-out dates.

1. the ``dates`` task (dates in six languages and many formats -> ISO 8601); the test split's dates never
   appear in training, in any format;
2. a small character-level Bahdanau model (bidirectional GRU encoder, GRU decoder) trained with AdamW,
   warmup and cosine decay, validation exact match as it goes;
3. greedy and beam-search exact match on the test split, the alignment error rate of its attention
   against the gold links of the held-out dates (``attnkit.data.gold_alignment``; one teacher-forced
   pass, each rule of ``attnkit.metrics.LINK_RULES``), a few translations with their alignments, and
   the fixed-context model (``attention="none"``) trained for the same number of steps, for contrast.

``run_demo`` computes all that for one seed and returns it; the caller writes files and prints tables.
``attnkit demo --seed N`` is one call, ``attnkit experiment demo --seeds 0,1,2``
(``attnkit.experiments.demo``) the same call per seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from attnkit.errors import InputError
from attnkit.models.seq2seq import Seq2Seq
from attnkit.recipes.alignment import alignment_scores, gold_on_grid
from attnkit.recipes.common import Log, no_log
from attnkit.recipes.seq2seq import (
    Pairs,
    RunSpec,
    build_model,
    build_tokenizers,
    load_split,
    predict,
    score,
    train_model,
    translate_detailed,
)
from attnkit.training.trainer import TrainConfig, TrainResult


@dataclass
class DemoSettings:
    """The demo's recipe (``QUICK`` shrinks it to a smoke test).

    Example:
        >>> DemoSettings().steps, QUICK.steps
        (1000, 20)
    """

    train_size: int = 20_000  # training pairs
    valid_size: int = 500  # validation pairs decoded at each evaluation
    test_size: int = 2_000  # held-out pairs scored at the end
    embed_dim: int = 32
    hidden_dim: int = 64  # 32 units per encoder direction
    attention_dim: int = 64
    batch_size: int = 256
    lr: float = 5e-3
    warmup: int = 50
    steps: int = 1000  # cosine schedule length; training usually stops far earlier (patience)
    eval_every: int = 100
    patience: int | None = 2  # evaluations without improvement before stopping (1.0 cannot be improved)
    time_budget: float = 90.0  # seconds of training for each model
    contrast_deadline: float | None = 140.0  # seconds since the start by which the contrast model stops (None: none)
    contrast: bool = True  # also train attention="none" with the same number of steps
    examples: int = 4  # translations shown with heatmaps
    example_chars: int = 40  # longest example input (so heatmaps fit the terminal)
    quick: bool = False  # the smoke-test sizes (recorded in the summary)


QUICK = DemoSettings(train_size=1_000, valid_size=50, test_size=100, embed_dim=16, hidden_dim=32,
                     attention_dim=32, batch_size=64, steps=20, eval_every=10, patience=None,
                     time_budget=30.0, examples=2, quick=True)


def demo_settings(quick: bool = False, steps: int | None = None, time_budget: float | None = None,
                  contrast: bool = True) -> DemoSettings:
    """A fresh copy of the demo's recipe (``QUICK`` when ``quick``) with the options given on the command line.

    Example:
        >>> s = demo_settings(quick=True, steps=7)
        >>> s.steps, s.quick, QUICK.steps
        (7, True, 20)
        >>> demo_settings(time_budget=0)
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --time-budget must be > 0. Received: 0
    """
    s = DemoSettings(**asdict(QUICK if quick else DemoSettings()))
    if steps is not None:
        if steps < 1:
            raise InputError(f"--steps must be >= 1. Received: {steps}")
        s.steps = steps
    if time_budget is not None:
        if time_budget <= 0:
            raise InputError(f"--time-budget must be > 0. Received: {time_budget}")
        s.time_budget = time_budget
    s.contrast = contrast
    return s


@dataclass
class DemoResult:
    """What ``run_demo`` returns: the trained model, the examples with alignments, and the summary."""

    model: Seq2Seq
    test: Pairs  # the held-out pairs behind the scores
    examples: list[dict[str, Any]]  # translate_detailed items (input, output, alignment (T_out, S), rows, cols) + gold
    summary: dict[str, Any] = field(default_factory=dict)  # everything summary.json holds


def pick_examples(pairs: Pairs, n: int, max_chars: int) -> Pairs:
    """``n`` test pairs spread over the range of source lengths up to ``max_chars`` (so heatmaps fit).

    Example:
        >>> pick_examples([("a", "1"), ("bb", "2"), ("ccc", "3"), ("dddd", "4")], 2, max_chars=3)
        [('bb', '2'), ('ccc', '3')]
    """
    ordered = sorted(pairs, key=lambda p: (len(p[0]), p[0]))
    ordered = [p for p in ordered if len(p[0]) <= max_chars] or ordered[:1]
    if n <= 1:
        return ordered[-1:]
    picks = [ordered[round(q * (len(ordered) - 1))] for q in [(i + 1) / n for i in range(n)]]
    return list(dict.fromkeys(picks))


def train_dates_model(attention: str, s: DemoSettings, train: Pairs, valid: Pairs, steps: int, budget: float,
                      seed: int, device: str, log: Log = no_log) -> tuple[Seq2Seq, TrainResult]:
    """One character-level model on dates with the demo's recipe; returns ``(model, result)``."""
    src_tok, tgt_tok = build_tokenizers(RunSpec(data="dates", seed=seed), train)
    model = build_model(src_tok, tgt_tok, train, attention=attention, embed_dim=s.embed_dim,
                        hidden_dim=s.hidden_dim, attention_dim=s.attention_dim, seed=seed)
    log(f"{attention}: {model.num_parameters():,} parameters, up to {steps} steps (batch {s.batch_size}) "
        f"or {budget:.0f} s")
    config = TrainConfig(steps=steps, lr=s.lr, schedule="cosine", warmup_steps=min(s.warmup, steps),
                         min_lr_ratio=0.05, weight_decay=0.0, eval_every=s.eval_every, patience=s.patience,
                         metric="exact_match", mode="max", seed=seed, out_dir=None, device=device,
                         time_budget=budget, log_every=10, restore_best=False)  # keep the last (ties: later)
    result = train_model(model, train, valid, config, s.batch_size, seed, bucket_size=None)  # mixed batches
    return model, result


def _contrast(s: DemoSettings, data: tuple[Pairs, Pairs, Pairs], steps: int, start: float, seed: int,
              device: str, log: Log) -> dict[str, Any]:
    """The no-attention model with the same number of steps; ``s.contrast_deadline`` keeps the demo < 3 min."""
    train, valid, test = data
    budget = s.time_budget
    if s.contrast_deadline is not None:
        budget = max(10.0, min(budget, s.contrast_deadline - (time.perf_counter() - start)))
    base, result = train_dates_model("none", s, train, valid, steps, budget, seed, device, log)
    scores = score(base, test, predict(base, [p[0] for p in test]))
    log(f"no attention, same steps: held-out exact match {scores['exact_match']:.4f}")
    return {"attention": "none", "exact_match": scores["exact_match"], "token_accuracy": scores["token_accuracy"],
            "steps": result.steps, "train_seconds": round(result.elapsed, 2), "stop_reason": result.stop_reason,
            "parameters": base.num_parameters()}


def run_demo(s: DemoSettings, seed: int = 0, device: str = "auto", log: Log = no_log, section: Log = no_log,
             show: Callable[[dict[str, Any]], None] | None = None) -> DemoResult:
    """Train, score and explain the dates model (and the contrast model when ``s.contrast``).

    Args:
        s: sizes and budgets (``DemoSettings()`` or ``QUICK``).
        seed: data, initialisation and sampling.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        log: progress lines; section: section titles; show: called with each example as it is decoded.

    Returns:
        A ``DemoResult`` (its ``summary`` lacks ``total_seconds`` and ``alignment_pngs``: the caller's).
    """
    start = time.perf_counter()
    spec = RunSpec(data="dates", seed=seed)
    data = train, valid, test = (load_split(spec, "train", s.train_size), load_split(spec, "validation", s.valid_size),
                                 load_split(spec, "test", s.test_size))
    log(f"data: {len(train)} training pairs, {len(valid)} validation, {len(test)} held-out test "
        f"(test dates never appear in training). e.g. {train[0][0]!r} -> {train[0][1]!r}")
    model, result = train_dates_model("bahdanau", s, train, valid, s.steps, s.time_budget, seed, device, log)
    test_src = [p[0] for p in test]
    scores = score(model, test, predict(model, test_src), buckets=10)
    beam_em = score(model, test, predict(model, test_src, beam_size=3))["exact_match"]
    log(f"held-out exact match: {scores['exact_match']:.4f} greedy, {beam_em:.4f} beam 3 ({result.steps} steps, "
        f"{result.elapsed:.1f} s of training)")
    aer = alignment_scores(model, test, "dates")
    log("held-out alignment error rate: " + ", ".join(f"{v:.4f} ({rule})" for rule, v in aer.items()))
    examples = pick_examples(test, s.examples, max_chars=s.example_chars)
    detailed = translate_detailed(model, [src for src, _ in examples])
    for item, (src, ref) in zip(detailed, examples, strict=True):
        item["gold"] = gold_on_grid("dates", src, ref, item)
        if show is not None:
            show(item)
    summary: dict[str, Any] = {
        "task": "dates", "attention": "bahdanau", "exact_match": scores["exact_match"],
        "exact_match_beam": beam_em, "beam_size": 3, "token_accuracy": scores["token_accuracy"],
        "alignment_error_rate": aer, "bleu": scores["bleu"], "by_length": scores["by_length"], "test_size": len(test),
        "train_size": len(train), "steps": result.steps, "train_seconds": round(result.elapsed, 2),
        "stop_reason": result.stop_reason, "parameters": model.num_parameters(),
        "model_config": asdict(model.config), "validation_history": result.history, "seed": seed,
        "torch_threads": torch.get_num_threads(), "quick": s.quick,
        "examples": [{"input": d["input"], "output": d["output"], "reference": ref}
                     for d, (_, ref) in zip(detailed, examples, strict=True)],
        "model_dir": "model", "contrast": None,
    }
    if s.contrast:
        section("the same budget without attention (one fixed context vector)")
        summary["contrast"] = _contrast(s, data, result.steps, start, seed, device, log)
    return DemoResult(model, test, detailed, summary)


def demo_markdown(summary: dict[str, Any]) -> str:
    """``summary.md``: the scores table, the examples and how to load the model."""
    lines = ["# attnkit demo: dates -> ISO 8601 with Bahdanau attention", "",
             f"Seed {summary['seed']} (data, initialisation and batches). Held-out test split: "
             f"{summary['test_size']} dates never seen in training (in any format).", "",
             "| model | steps | training time (s) | exact match (greedy) | exact match (beam 3) | AER (argmax) |",
             "|---|---:|---:|---:|---:|---:|"]
    rows = [summary] + ([summary["contrast"]] if summary.get("contrast") else [])
    for r in rows:
        beam = f"{r['exact_match_beam']:.4f}" if r.get("exact_match_beam") is not None else "-"
        aer = f"{r['alignment_error_rate']['argmax']:.4f}" if r.get("alignment_error_rate") else "-"
        lines.append(f"| {r['attention']} | {r['steps']} | {r['train_seconds']:.1f} | {r['exact_match']:.4f} "
                     f"| {beam} | {aer} |")
    lines += ["", "Alignment error rate (Och and Ney 2003; 0 = the gold links) of the Bahdanau attention on the "
              "held-out dates, by the rule that turns weights into links: "
              + ", ".join(f"{rule} {v:.4f}" for rule, v in summary["alignment_error_rate"].items()) + ".",
              "", f"Token accuracy {summary['token_accuracy']:.4f}, BLEU {summary['bleu']:.2f} "
              f"(character-level). Whole command: {summary['total_seconds']:.1f} s.", "",
              "## Examples", "", "| input | output | reference |", "|---|---|---|"]
    lines += [f"| {e['input']} | {e['output']} | {e['reference']} |" for e in summary["examples"]]
    lines += ["", "Alignment heatmaps: " + ", ".join(f"`{p}`" for p in summary["alignment_pngs"]), "",
              "Load the model: `attnkit.load(\"model\")`, then `model.translate([\"4 de marzo de 2031\"])`.", ""]
    return "\n".join(lines)
