"""The ``attnkit experiment alignment`` experiment: attention measured against the true alignment.

The built-in tasks know their gold word/character alignments by construction (``attnkit.data.gold_alignment``:
sure and possible links, Och and Ney 2003), so attention can be scored, not only looked at. For one seed,
``alignment_seed`` trains every model of ``MODELS`` on every task of ``TASKS`` with the same budget per task
(steps, batch, learning-rate schedule, data), then scores on the held-out test split:

- exact match of the greedy outputs;
- the corpus alignment error rate (AER) of the teacher-forced attention under each link rule of
  ``attnkit.metrics.LINK_RULES`` (argmax per output unit; argmax of the next row, the one-step shift that
  input-feeding and Bahdanau-style decoders show; every weight >= 0.3), with the links predicted per output
  unit beside it (a rule that predicts nothing scores well where sure links are few: ``numbers`` has only
  possible links, so there AER is 1 - precision);
- for the Transformer's cross-attention: each decoder layer's mean of heads (``transformer, layer l mean``;
  the last layer's is what ``translate`` returns) and the best single head, chosen per rule on the
  validation split only and then scored on the test split (``transformer, best head``; the ``heads`` table
  says which head each seed chose and its validation AER).

Two baselines need no training and are scored on the same test pairs (rule ``fixed links``):

- ``diagonal``: the monotonic alignment, output unit ``i`` of ``T_out`` linked to input unit
  ``floor((i + 0.5) * T_in / T_out)``, one link per output unit;
- ``uniform``: uniform attention ``w_ij = 1 / T_in`` read as links, i.e. every output unit linked to every
  input unit (argmax has no answer on a flat row and a fixed threshold keeps all or nothing by ``T_in``
  alone, so "every weight at or above the row's mean" is the one rule that reads uniform attention).

Worked example (``copy``, "ab" -> "ab", sure = possible = the identity): diagonal links 0-0 and 1-1, AER
``1 - (2 + 2) / (2 + 2) = 0``; uniform links all four, AER ``1 - (2 + 2) / (4 + 2) = 1/3``.

Tasks: ``dates`` (characters), ``numbers`` in German only (characters; "einundzwanzig" -> "21" crosses)
and ``phrases`` (Spanish -> English words). ``alignment_experiment`` hands a seed function to the harness,
which writes ``alignment.json``, ``alignment.md`` and ``alignment.png`` plus ``alignment-examples.png``:
gold links over the attention of the first test pair of every task, for every model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from attnkit.data import gold_alignment, load_pairs
from attnkit.errors import InputError
from attnkit.experiments.harness import Experiment, Panel, Rows, Table
from attnkit.metrics import LINK_RULES, alignment_error_rate, exact_match
from attnkit.models.seq2seq import Seq2Seq
from attnkit.models.transformer import Transformer
from attnkit.recipes.alignment import own_alignments, score_maps, teacher_forced, transformer_alignment_scores
from attnkit.recipes.common import Log, no_log
from attnkit.recipes.seq2seq import (
    RunSpec,
    build_model,
    build_tokenizers,
    build_transformer,
    predict,
    train_model,
)
from attnkit.training.trainer import TrainConfig

TASKS: tuple[str, ...] = ("dates", "numbers", "phrases")
SEQ2SEQ_MODELS: dict[str, dict[str, Any]] = {  # model name -> Seq2SeqConfig fields
    "bahdanau": {"attention": "bahdanau"},
    "luong-dot": {"attention": "luong-dot"},
    "luong-general": {"attention": "luong-general"},
    "luong-concat": {"attention": "luong-concat"},
    "luong-local-m": {"attention": "luong-local-m"},
    "luong-local-p": {"attention": "luong-local-p"},
    "luong-general-no-feed": {"attention": "luong-general", "input_feeding": False},
}
MODELS: tuple[str, ...] = (*SEQ2SEQ_MODELS, "transformer")
BASELINES: tuple[str, ...] = ("diagonal", "uniform")
FIXED = "fixed links"  # the rule column of the baselines


@dataclass
class AlignmentSettings:
    """Sizes of the experiment (``quick()`` shrinks them to a smoke test).

    Example:
        >>> AlignmentSettings().quick().steps
        6
    """

    tasks: tuple[str, ...] = TASKS
    models: tuple[str, ...] = MODELS
    steps: int = 600  # training steps of every model on a task (the equal budget)
    batch_size: int = 64
    hidden_dim: int = 64  # RNN decoder state / annotation width (32 per encoder direction)
    embed_dim: int = 32
    local_window: int = 10  # W of local-m and local-p (Luong et al. 2015 chose D = 10)
    lr: float = 3e-3  # RNN peak learning rate (warmup then cosine decay)
    d_model: int = 64  # Transformer width
    heads: int = 4
    layers: int = 2  # Transformer encoder and decoder layers
    ff_dim: int = 128
    transformer_lr: float = 3e-3  # Transformer peak learning rate (warmup then cosine decay, Adam beta_2 0.98)
    numbers_max_len: int = 4  # German numbers of 1 to this many digits
    train_size: int = 20_000  # training pairs of dates and phrases
    numbers_train_size: int = 6_000  # training pairs of numbers (1-4 digits: about 8,000 in its train split)
    valid_size: int = 200  # validation: picks the best checkpoint and the Transformer's best head
    test_size: int = 300
    evals: int = 5  # validation checks per training run (the best one is kept)
    is_quick: bool = False

    def quick(self) -> AlignmentSettings:
        """The same settings shrunk to a smoke test (under a minute per seed; the models learn nothing)."""
        return AlignmentSettings(**{**asdict(self), "steps": 6, "batch_size": 16, "hidden_dim": 16, "embed_dim": 8,
                                    "d_model": 16, "heads": 2, "ff_dim": 32, "train_size": 300, "numbers_train_size": 300,
                                    "valid_size": 12,
                                    "test_size": 12, "evals": 1, "is_quick": True})

    def check(self) -> None:
        """``InputError`` naming the flag for a value out of range."""
        for flag, given, known in (("--tasks", self.tasks, TASKS), ("--models", self.models, MODELS)):
            if not given or len(set(given)) != len(given) or not set(given) <= set(known):
                raise InputError(f"{flag} must be distinct comma-separated names among {', '.join(known)}. "
                                 f"Received: {','.join(given)!r}")
        for flag, value in (("--steps", self.steps), ("--batch-size", self.batch_size),
                            ("--test-size", self.test_size), ("--valid-size", self.valid_size),
                            ("--train-size", self.train_size), ("--local-window", self.local_window),
                            ("numbers_train_size", self.numbers_train_size)):
            if value < 1:
                raise InputError(f"{flag} must be >= 1. Received: {value}")
        if self.hidden_dim < 2 or self.hidden_dim % 2:
            raise InputError(f"--d-model must be an even number >= 2. Received: {self.hidden_dim}")


# ----------------------------------------------------------------------------------------------------------
# Baselines
# ----------------------------------------------------------------------------------------------------------


def diagonal_links(t_out: int, t_in: int) -> torch.Tensor:
    """The monotonic alignment: output ``i`` -> input ``floor((i + 0.5) * T_in / T_out)``, bool ``(T_out, T_in)``.

    Example:
        >>> diagonal_links(2, 4).int().tolist()
        [[0, 1, 0, 0], [0, 0, 0, 1]]
    """
    links = torch.zeros(t_out, t_in, dtype=torch.bool)
    for i in range(t_out):
        links[i, min(t_in - 1, int((i + 0.5) * t_in / t_out))] = True
    return links


def uniform_links(t_out: int, t_in: int) -> torch.Tensor:
    """Uniform attention read as links: every output unit to every input unit, bool ``(T_out, T_in)``."""
    return torch.ones(t_out, t_in, dtype=torch.bool)


def baseline_scores(pairs: list[tuple[str, str]], task: str) -> dict[str, dict[str, float]]:
    """Corpus AER and links per output unit of both baselines on ``pairs``.

    Example (worked out in the module docstring):
        >>> s = baseline_scores([("ab", "ab")], "copy")
        >>> s["diagonal"]["aer"], round(s["uniform"]["aer"], 4), s["uniform"]["links"]
        (0.0, 0.3333, 2.0)
    """
    gold = [gold_alignment(task, s, t) for s, t in pairs]
    out = {}
    for name, make in (("diagonal", diagonal_links), ("uniform", uniform_links)):
        found = [make(*sure.shape) for sure, _ in gold]
        flat = (torch.cat([f.flatten() for f in found]), torch.cat([s.flatten() for s, _ in gold]),
                torch.cat([p.flatten() for _, p in gold]))
        out[name] = {"aer": alignment_error_rate(*flat), "links": int(flat[0].sum()) / sum(len(f) for f in found)}
    return out


# ----------------------------------------------------------------------------------------------------------
# One seed
# ----------------------------------------------------------------------------------------------------------


def task_splits(s: AlignmentSettings, task: str, seed: int) -> dict[str, list[tuple[str, str]]]:
    """Train, validation and test pairs of ``task`` (``numbers``: German, 1 to ``numbers_max_len`` digits)."""
    options: dict[str, Any] = {"languages": ("de",), "max_len": s.numbers_max_len} if task == "numbers" else {}
    sizes = {"train": s.numbers_train_size if task == "numbers" else s.train_size, "validation": s.valid_size,
             "test": s.test_size}
    return {split: load_pairs(task, split, size=n, seed=seed, **options) for split, n in sizes.items()}


def build(s: AlignmentSettings, name: str, task: str, train: list[tuple[str, str]],
          seed: int) -> Seq2Seq | Transformer:
    """A fresh model ``name`` for ``task``, sized by ``s`` and initialised from ``seed``."""
    spec = RunSpec(data=task, seed=seed)
    if name == "transformer":
        torch.manual_seed(seed)
        return build_transformer(spec, train, d_model=s.d_model, num_heads=s.heads, encoder_layers=s.layers,
                                 decoder_layers=s.layers, ff_dim=s.ff_dim)
    src_tok, tgt_tok = build_tokenizers(spec, train)
    return build_model(src_tok, tgt_tok, train, seed=seed, embed_dim=s.embed_dim, hidden_dim=s.hidden_dim,
                       attention_dim=s.hidden_dim, local_window=s.local_window, **SEQ2SEQ_MODELS[name])


def train_config(s: AlignmentSettings, transformer: bool, seed: int, device: str) -> TrainConfig:
    """The equal budget: ``s.steps`` steps, 10% warmup then cosine decay, ``s.evals`` validation checks."""
    config = TrainConfig(steps=s.steps, lr=s.transformer_lr if transformer else s.lr, schedule="cosine",
                         warmup_steps=max(1, s.steps // 10), min_lr_ratio=0.05, weight_decay=0.0,
                         eval_every=max(1, s.steps // s.evals), seed=seed, metric="exact_match", mode="max",
                         out_dir=None, device=device, log_every=max(1, s.steps // 10), progress=False)
    return dataclasses.replace(config, betas=(0.9, 0.98)) if transformer else config


def aer_rows(task: str, model: str, scores: dict[str, dict[str, float]]) -> Rows:
    """Rows ``{"task", "model", "rule", "aer", "links"}`` of ``{rule: {"aer", "links"}}``."""
    return [{"task": task, "model": model, "rule": rule, "aer": v["aer"], "links": v["links"]}
            for rule, v in scores.items()]


def score_model(model: Seq2Seq | Transformer, name: str, task: str, splits: dict[str, Any]) -> dict[str, Rows]:
    """Exact match, AER rows and (Transformer) the chosen heads of one trained model on the test split."""
    test = splits["test"]
    em = exact_match(predict(model, [p[0] for p in test]), [p[1] for p in test])
    if not isinstance(model, Transformer):
        aer = aer_rows(task, name, score_maps(model, test, task, own_alignments)["alignments"])
        return {"exact_match": [{"task": task, "model": name, "exact_match": em}], "aer": aer}
    result = transformer_alignment_scores(model, splits["validation"], test, task)
    aer = [row for m, scores in result["maps"].items() for row in aer_rows(task, f"{name}, {m}", scores)]
    heads = [{"task": task, "rule": rule, "layer": lh[0], "head": lh[1], "validation_aer": result["validation_aer"][rule]}
             for rule, lh in result["chosen"].items()]
    return {"exact_match": [{"task": task, "model": name, "exact_match": em}], "aer": aer, "heads": heads}


def example(model: Seq2Seq | Transformer, name: str, task: str, pair: tuple[str, str]) -> dict[str, Any]:
    """The teacher-forced alignment of ``pair`` on its units ``(T_out, T_in)`` (the model's own alignments:
    a Transformer's last-layer mean of heads), for the picture."""
    source, target = pair
    sure, _ = gold_alignment(task, source, target)
    to, ti = sure.shape
    weights = teacher_forced(model, [pair], task).alignments[0, :to, 1: ti + 1].float().cpu()  # (T_out, T_in)
    return {"task": task, "model": name, "source": source, "target": target,
            "weights": [[round(float(x), 4) for x in row] for row in weights]}


def alignment_seed(s: AlignmentSettings, seed: int, device: str = "auto", log: Log = no_log) -> dict[str, Any]:
    """Train every model on every task with equal budgets from ``seed``; score exact match and AER.

    Args:
        s: the settings (checked by the caller: ``s.check()``).
        seed: data, initialisation and batches.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        log: progress lines.

    Returns:
        ``{"exact_match": rows, "aer": rows, "heads": rows, "examples": [...]}`` (``examples``: the first
        test pair's alignment per task and model, not a table).
    """
    tables: dict[str, Any] = {"exact_match": [], "aer": [], "heads": [], "examples": []}
    for task in s.tasks:
        splits = task_splits(s, task, seed)
        for name, v in baseline_scores(splits["test"], task).items():
            tables["aer"] += aer_rows(task, name, {FIXED: v})
        for name in s.models:
            model = build(s, name, task, splits["train"], seed)
            result = train_model(model, splits["train"], splits["validation"],
                                 train_config(s, name == "transformer", seed, device), s.batch_size, seed)
            for key, rows in score_model(model, name, task, splits).items():
                tables[key] += [{**row, "seed": seed} if key == "heads" else row for row in rows]
            tables["examples"].append(example(model, name, task, splits["test"][0]))
            em = tables["exact_match"][-1]["exact_match"]
            log(f"seed {seed}, {task}, {name}: {model.num_parameters():,} parameters, {result.steps} steps in "
                f"{result.elapsed:.0f} s, test exact match {em:.3f}")
    return tables


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------


TABLES = (
    Table("aer", "Alignment error rate on held-out pairs (lower is better)", ("task", "model", "rule"),
          ("aer", "links"), note="links: predicted links per output unit. Baselines (diagonal, uniform) need no "
          "training. numbers has possible links only, so its AER is 1 - precision."),
    Table("exact_match", "Held-out exact match (greedy)", ("task", "model"), ("exact_match",)),
    Table("heads", "Transformer: the head chosen on validation pairs, per seed", ("task", "rule", "seed"),
          ("layer", "head", "validation_aer")),
)
PANELS = tuple(Panel("aer", "model", "aer", ("task",), "model", f"AER ({rule})", ylim=(0.0, 1.02),
                     where=lambda row, rule=rule: row["rule"] in (rule, FIXED)) for rule in LINK_RULES) + (
    Panel("exact_match", "model", "exact_match", ("task",), "model", "exact match", ylim=(0.0, 1.02)),)


def examples_figure(report: dict[str, Any]) -> Any:
    """Gold links over each model's attention for the first test pair of each task (the first seed's):
    one row of panels per task, one panel per model (``attnkit.viz.alignment_figure`` with ``gold``)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from attnkit.data.alignments import alignment_units
    from attnkit.viz.plots import alignment_figure

    first = report["per_seed"][str(report["seeds"][0])]["examples"]
    tasks = list(dict.fromkeys(e["task"] for e in first))
    models = list(dict.fromkeys(e["model"] for e in first))
    fig = Figure(figsize=(3.2 * len(models), 3.0 * len(tasks)))
    axes = fig.subplots(len(tasks), len(models), squeeze=False)
    for e in first:
        src, tgt = alignment_units(e["task"], e["source"]), alignment_units(e["task"], e["target"])
        panel = alignment_figure(torch.tensor(e["weights"]), tgt, src, title=e["model"],
                                 gold=gold_alignment(e["task"], e["source"], e["target"]), figsize=(4, 3.6))
        canvas = FigureCanvasAgg(panel)
        canvas.draw()
        ax = axes[tasks.index(e["task"]), models.index(e["model"])]
        ax.imshow(np.asarray(canvas.buffer_rgba()))
        ax.set_axis_off()
    for i, task in enumerate(tasks):
        axes[i, 0].set_title(task, loc="left", fontsize=12)
    fig.suptitle(f"Gold links (squares: sure, dots: possible) over the attention, first test pair, seed "
                 f"{report['seeds'][0]}")
    fig.tight_layout()
    return fig


def alignment_experiment(s: AlignmentSettings, run: Callable[[int], dict[str, Any]]) -> Experiment:
    """The harness's view of the experiment: tables, panels, the examples figure, settings and ``run``."""
    title = "Attention against gold alignments: AER per model and link rule" + (" (quick smoke test)"
                                                                               if s.is_quick else "")
    return Experiment("alignment", title, TABLES, PANELS, run, settings=asdict(s),
                      extra_figures=lambda report: {"examples": examples_figure(report)})


__all__ = ["BASELINES", "MODELS", "PANELS", "TABLES", "TASKS", "AlignmentSettings", "alignment_experiment",
           "alignment_seed", "baseline_scores", "diagonal_links", "examples_figure", "uniform_links"]
