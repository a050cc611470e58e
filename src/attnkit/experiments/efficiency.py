"""The ``attnkit experiment efficiency`` experiment: quality, time and memory of each attention kind against length.

The same small GPT (:class:`attnkit.models.GPT`, its config naming the attention kind and the kind's options,
``GPTConfig(attention_kind={"name": ..., **options})``, so a saved run rebuilds from its config) is trained
with equal budgets on built-in tasks at several lengths (by default ``mqar`` only):

- ``mqar`` (long range, :mod:`attnkit.data.recall`): multi-query associative recall (Arora et al. 2023,
  "Zoology"): ``P`` key-value pairs at the start, then every key asked once in the second half, each query
  followed by its value; ``K`` keys and ``K`` values (chance ``1 / K``). Every query is at least
  ``T / 2 - 2P + 1`` tokens after its pair, out of a sliding window's reach once that passes ``window * layers``;
- ``copy`` (long range): ``x_1 .. x_n SEP x_1 .. x_n`` of random symbols; the second half is predictable
  only by looking ``n + 1`` positions back, across the whole sequence;
- ``local``: random symbols where every odd position holds ``(3 x_{t-1} + 1) mod K``, a function of the
  previous token only.

Trained and scored on the predictable next tokens only (the answers of ``mqar``; chance ``1 / K``), on
held-out sequences of the ``split``: ``valid`` (to choose settings) or ``test`` (the report), each drawn from
its own seeds, neither from the training stream's.
Per run it records the time of a training step's forward and backward (the kinds' models timed in
interleaved rounds, ``attnkit.timing.interleaved_medians``), tokens/s and the peak working memory of
one training step (``attnkit.bench.measure.peak_memory``: a fresh child process per kind and length, the
factory :func:`training_step`). Apart from the models, it times the attention alone (one head, width 64,
causal, forward+backward) from short to long lengths and finds the **crossover length** where each kind
becomes faster than SDPA (full attention) on this CPU. ``efficiency_seed`` does all that for one seed;
``efficiency_experiment`` hands it to the experiment harness (mean ± sd over the seeds).

Shape legend: B batch, T length, K symbols, V vocabulary (K + 1 with copy's SEP; 2K + 1 for mqar), H heads,
Dh head width.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from attnkit.bench.measure import peak_memory
from attnkit.data.recall import check_recall, recall_batch
from attnkit.errors import InputError
from attnkit.experiments.harness import Experiment, Panel, Rows, Table
from attnkit.functional import attention
from attnkit.functional.kinds import KINDS, kind_options, resolve_kind
from attnkit.models.gpt import GPT, GPTConfig
from attnkit.recipes.common import Log, no_log
from attnkit.timing import interleaved_medians
from attnkit.training.config import TrainConfig
from attnkit.training.trainer import Trainer

TASKS: tuple[str, ...] = ("mqar", "copy", "local")
SPLITS: dict[str, int] = {"valid": 20_000_033, "test": 10_000_019}  # split -> seed offset of its sequences


@dataclass
class EfficiencySettings:
    """Sizes of the experiment (``quick()`` shrinks them to a smoke test of about a minute).

    Example:
        >>> EfficiencySettings().quick().lengths
        (16, 32)
    """

    kinds: tuple[str, ...] = KINDS  # attention kinds, "full" = SDPA
    tasks: tuple[str, ...] = ("mqar",)
    # the defaults were chosen on the validation split (--split valid): see docs/guides/kinds.md
    lengths: tuple[int, ...] = (16, 32, 64)  # training sequence lengths
    timing_lengths: tuple[int, ...] = (256, 1024, 4096)  # attention-only timing
    steps: int = 1200  # training steps per run
    batch_size: int = 16
    d_model: int = 64
    heads: int = 2
    layers: int = 2
    symbols: int = 16  # K: copy/local symbols; mqar keys and values (chance 1/16)
    pairs: int = 4  # mqar: key-value pairs per sequence
    window: int = 4  # sliding window: keys on each side (2 layers reach 8 back; mqar's queries are 9+ back at 32)
    block: int = 8  # block sparse: block size (1 local block each side, 1 global, 2 random)
    features: int = 64  # performer: random features per head
    lr: float = 3e-3
    eval_batches: int = 16  # held-out batches scored (mqar: 16 x 16 x 4 = 1,024 answers)
    split: str = "test"  # held-out sequences scored: "valid" (choosing settings) or "test" (the report)
    memory: bool = True  # measure each step's peak memory in a child process (a few seconds per kind and length)
    is_quick: bool = False

    def quick(self) -> EfficiencySettings:
        """A smoke test: two short lengths, few steps, tiny model (its figures say nothing about the kinds)."""
        return EfficiencySettings(**{**asdict(self), "lengths": (16, 32), "timing_lengths": (256, 1024),
                                     "steps": 25, "batch_size": 8, "d_model": 32, "pairs": 4, "window": 4,
                                     "block": 8, "features": 32, "eval_batches": 2, "is_quick": True})

    def check(self) -> None:
        """``InputError`` naming the flag for a value out of range."""
        for name, values, allowed in (("--kinds", self.kinds, KINDS), ("--tasks", self.tasks, TASKS),
                                      ("--split", (self.split,), tuple(SPLITS))):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise InputError(f"{name} must be a non-empty subset of {', '.join(allowed)}. Received: {bad or values}")
        for name, value in (("--steps", self.steps), ("--batch-size", self.batch_size), ("--d-model", self.d_model),
                            ("--heads", self.heads), ("--layers", self.layers), ("--window", self.window),
                            ("--pairs", self.pairs), ("--symbols", self.symbols)):
            if value < 1:
                raise InputError(f"{name} must be >= 1. Received: {value}")
        if self.d_model % self.heads:
            raise InputError(f"--d-model must be divisible by --heads. Received: {self.d_model}, {self.heads}")
        if not self.lengths or min(self.lengths) < 8 or not self.timing_lengths or min(self.timing_lengths) < 8:
            raise InputError(f"--lengths must be lengths >= 8. Received: {list(self.lengths)}")
        if "mqar" in self.tasks:
            check_recall(min(self.lengths), self.pairs, self.symbols, self.symbols)


# ------------------------------------------------------------------------------------------ the tasks


def vocab_size(task: str, s: EfficiencySettings) -> int:
    """The GPT's vocabulary for ``task``: ``2K + 1`` for mqar (keys, values, filler), ``K + 1`` otherwise
    (copy's SEP).

    Example:
        >>> vocab_size("mqar", EfficiencySettings(symbols=16)), vocab_size("copy", EfficiencySettings(symbols=16))
        (33, 17)
    """
    return 2 * s.symbols + 1 if task == "mqar" else s.symbols + 1


def symbol_batch(task: str, batch: int, length: int, symbols: int, gen: torch.Generator) -> torch.Tensor:
    """``(B, T)`` ids of ``copy`` or ``local``; ``symbols`` (K) is the separator of ``copy``.

    Example:
        >>> ids = symbol_batch("copy", 2, 9, 5, torch.Generator().manual_seed(0))
        >>> bool((ids[:, 5:] == ids[:, :4]).all()), ids[:, 4].tolist()
        (True, [5, 5])
    """
    x = torch.randint(0, symbols, (batch, length), generator=gen)  # (B, T)
    if task == "copy":
        n = (length - 1) // 2
        start = length - 1 - 2 * n  # 0 or 1 leading random symbol
        x[:, start + n] = symbols
        x[:, start + n + 1:] = x[:, start:start + n]
    else:  # local: odd positions are a function of the previous token
        odd = length // 2  # positions 1, 3, ...: each follows the even position before it
        x[:, 1::2] = (3 * x[:, 0::2][:, :odd] + 1) % symbols
    return x


def scored_targets(task: str, length: int) -> torch.Tensor:
    """``(T - 1,)`` bool: which next-token targets ``ids[:, 1:]`` of ``copy`` or ``local`` are predictable.

    Example:
        >>> scored_targets("copy", 9).int().tolist()
        [0, 0, 0, 0, 1, 1, 1, 1]
    """
    t = torch.arange(1, length)  # target positions
    if task == "copy":
        n = (length - 1) // 2
        return t >= length - n
    return t % 2 == 1


def task_batch(task: str, batch: int, length: int, s: EfficiencySettings,
               gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, scored)`` of a task: ids ``(B, T)`` and ``(B, T - 1)`` bool, True where ``ids[:, t + 1]`` is a
    predictable target (an answer of mqar).

    Example:
        >>> ids, scored = task_batch("local", 2, 6, EfficiencySettings(symbols=5), torch.Generator().manual_seed(0))
        >>> scored[0].int().tolist(), bool((ids[:, 1::2] == (3 * ids[:, 0::2] + 1) % 5).all())
        ([1, 0, 1, 0, 1], True)
    """
    if task == "mqar":
        return recall_batch(batch, length, s.pairs, s.symbols, s.symbols, gen)
    ids = symbol_batch(task, batch, length, s.symbols, gen)  # (B, T)
    return ids, scored_targets(task, length).expand(batch, length - 1)


class TaskStream:
    """Endless ``(ids, scored)`` batches of a task for :class:`Trainer`; batch ``i`` is drawn from
    ``seed * 1_000_003 + i`` (resumable; the held-out splits use seeds from 10_000_019 on)."""

    def __init__(self, task: str, length: int, s: EfficiencySettings, seed: int) -> None:
        self.task, self.length, self.settings, self.seed, self.position = task, length, s, seed, 0

    def __iter__(self):
        while True:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.position)
            self.position += 1
            yield task_batch(self.task, self.settings.batch_size, self.length, self.settings, gen)

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])


class ScoredLoss(nn.Module):
    """A GPT trained on the predictable targets only (Zoology's loss on the answers of MQAR): the mean
    cross-entropy of ``logits[:, t]`` against ``ids[:, t + 1]`` where ``scored[:, t]``."""

    def __init__(self, gpt: GPT) -> None:
        super().__init__()
        self.gpt, self.config = gpt, gpt.config

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        ids, scored = batch  # (B, T), (B, T - 1)
        logits = self.gpt(ids).logits[:, :-1][scored]  # (N, V), N scored targets
        target = ids[:, 1:][scored]  # (N,)
        with torch.no_grad():
            correct = (logits.argmax(-1) == target).sum()
        loss = nn.functional.cross_entropy(logits.float(), target)
        return loss, {"correct": correct, "total": target.numel(), "tokens": ids.numel()}


# ------------------------------------------------------------------------------------------ the models


def kind_config(name: str, s: EfficiencySettings, seed: int) -> str | dict[str, Any]:
    """What ``GPTConfig.attention_kind`` stores for kind ``name`` with the run's options (checked by
    ``resolve_kind``, written out in full by ``kind_options``).

    Example:
        >>> kind_config("sliding_window", EfficiencySettings(window=8), seed=0)
        {'name': 'sliding_window', 'window': 8, 'global_tokens': [], 'block_size': None}
        >>> kind_config("full", EfficiencySettings(), seed=0)
        'full'
    """
    options = {"sliding_window": {"window": s.window}, "block_sparse": {"block_size": s.block, "seed": seed},
               "performer": {"num_features": s.features, "seed": seed}}.get(name, {})
    return kind_options(resolve_kind({"name": name, **options}))


def build_model(kind: str, task: str, length: int, s: EfficiencySettings, seed: int) -> GPT:
    """The run's GPT for ``task``, initialised from ``seed``; its config carries the kind and its options."""
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size(task, s), n_positions=length, n_embd=s.d_model, n_layer=s.layers,
                         n_head=s.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                         attention_kind=kind_config(kind, s, seed)))


def training_step(kind: str, task: str, length: int, settings: dict[str, Any], seed: int) -> Callable[[], None]:
    """The factory :func:`attnkit.bench.measure.peak_memory` runs in its child: builds the run's GPT and a
    batch, warms up on a batch of two, and returns one training step's forward and backward."""
    s = EfficiencySettings(**settings)
    model = ScoredLoss(build_model(kind, task, length, s, seed))
    warm = task_batch(task, 2, length, s, torch.Generator().manual_seed(0))
    model.training_step(warm)[0].backward()  # kernels chosen, lazy imports done
    batch = task_batch(task, s.batch_size, length, s, torch.Generator().manual_seed(1))  # (B, T), (B, T - 1)

    def step() -> None:
        model.training_step(batch)[0].backward()

    return step


def step_memory(kind: str, task: str, length: int, s: EfficiencySettings, seed: int) -> float | None:
    """Peak working memory (MiB) of one training step (forward + backward, batch ``s.batch_size``) at
    ``length``, measured in a fresh child process; None when it cannot be measured."""
    got = peak_memory("attnkit.experiments.efficiency:training_step",
                      {"kind": kind, "task": task, "length": length, "settings": asdict(s), "seed": seed}, threads=1)
    return None if got["bytes"] is None else round(got["bytes"] / 2**20, 1)


def accuracy(model: GPT, task: str, s: EfficiencySettings, length: int, seed: int) -> float:
    """Next-token accuracy on the predictable targets of ``eval_batches`` held-out batches of ``s.split``."""
    gen = torch.Generator().manual_seed(SPLITS[s.split] + seed)
    correct = total = 0
    with torch.no_grad():
        for _ in range(s.eval_batches):
            ids, keep = task_batch(task, s.batch_size, length, s, gen)  # (B, T), (B, T - 1)
            pred = model(ids).logits[:, :-1].argmax(-1)  # (B, T - 1)
            correct += int((pred == ids[:, 1:])[keep].sum())
            total += int(keep.sum())
    return correct / max(total, 1)


def train_run(kind: str, task: str, length: int, s: EfficiencySettings, seed: int,
              device: str = "cpu") -> tuple[GPT, dict[str, Any]]:
    """Train one GPT with ``kind`` on ``task`` at ``length``; the model and its row (accuracy, final loss)."""
    model = build_model(kind, task, length, s, seed)
    tc = TrainConfig(steps=s.steps, lr=s.lr, schedule="cosine", warmup_steps=max(1, s.steps // 10), min_lr_ratio=0.1,
                     weight_decay=0.0, eval_every=s.steps, seed=seed, progress=False, device=device,
                     log_every=max(1, s.steps // 5), restore_best=False)
    result = Trainer(ScoredLoss(model), tc, TaskStream(task, length, s, seed)).fit()
    model.eval()
    return model, {"kind": kind, "task": task, "length": length, "accuracy": accuracy(model, task, s, length, seed),
                   "chance": 1 / s.symbols, "final_loss": result.final_loss}


def step_seconds(models: dict[str, GPT], task: str, length: int, s: EfficiencySettings, repeat: int) -> dict[str, float]:
    """Median seconds of a training step's forward and backward for each kind's model, in interleaved rounds."""
    batch = task_batch(task, s.batch_size, length, s, torch.Generator().manual_seed(1))  # (B, T), (B, T - 1)
    for model in models.values():
        model.train()

    def step(model: GPT) -> Callable[[], None]:
        return lambda: ScoredLoss(model).training_step(batch)[0].backward()

    return interleaved_medians({kind: step(model) for kind, model in models.items()}, repeat=repeat)


def _attention_step(qkv: tuple[torch.Tensor, ...], kind: Any) -> Callable[[], None]:
    """Forward and backward of causal self-attention of ``kind`` on ``qkv``."""
    return lambda: attention(*qkv, causal=True, kind=kind).sum().backward()


def time_attention(kinds: tuple[str, ...], lengths: tuple[int, ...], s: EfficiencySettings, seed: int,
                   repeat: int = 3) -> Rows:
    """Median forward+backward milliseconds of causal self-attention ``(1, 1, T, 64)`` per kind and length
    (interleaved rounds, so that load from elsewhere hits the kinds alike)."""
    rows = []
    for length in lengths:
        gen = torch.Generator().manual_seed(seed)
        qkv = tuple(torch.randn(1, 1, length, 64, generator=gen).requires_grad_() for _ in range(3))  # (B, H, T, Dh)
        medians = interleaved_medians({name: _attention_step(qkv, resolve_kind(kind_config(name, s, seed)))
                                       for name in kinds}, repeat=repeat)
        rows += [{"kind": name, "length": length, "ms": 1000 * t} for name, t in medians.items()]
    return rows


def crossover(timing: Rows, kind: str) -> dict[str, Any]:
    """The length where ``kind`` becomes faster than full attention (log-log interpolation between the
    two measured lengths around it), with ``"below"``/``"above"`` when it is outside the measured range.

    Example:
        >>> rows = [{"kind": k, "length": n, "ms": t} for k, n, t in
        ...         [("full", 100, 1.0), ("x", 100, 2.0), ("full", 400, 4.0), ("x", 400, 2.0)]]
        >>> crossover(rows, "x")
        {'kind': 'x', 'length': 200, 'where': 'measured'}
    """
    def at(name: str) -> dict[int, float]:
        return {r["length"]: r["ms"] for r in timing if r["kind"] == name}
    full, mine = at("full"), at(kind)
    lengths = sorted(set(full) & set(mine))
    ratio = [mine[n] / full[n] for n in lengths]
    first = next((i for i in range(len(lengths)) if all(r < 1 for r in ratio[i:])), None)
    if first is None:
        return {"kind": kind, "length": None, "where": f"above {lengths[-1]}"}
    if first == 0:
        return {"kind": kind, "length": lengths[0], "where": f"at or below {lengths[0]}"}
    a, b = math.log(ratio[first - 1]), math.log(ratio[first])  # a >= 0 > b
    la, lb = math.log(lengths[first - 1]), math.log(lengths[first])
    return {"kind": kind, "length": round(math.exp(la + (lb - la) * a / (a - b))), "where": "measured"}


# ------------------------------------------------------------------------------------------ one seed


def efficiency_seed(s: EfficiencySettings, seed: int, device: str = "cpu", log: Log = no_log) -> dict[str, Rows]:
    """Every kind on every task and length, then the attention alone, from ``seed``; the harness's tables.

    Args:
        s: the settings (checked by the caller: ``s.check()``); seed: initialisation, data and kinds' draws;
        device: where to train; log: one line per finished run.

    Returns:
        ``{"runs": rows, "memory": rows, "timing": rows, "crossovers": rows}``.
    """
    runs, repeat = [], 3 if s.is_quick else 7
    if s.is_quick:
        log(QUICK_NOTE)
    # a step's shapes hardly depend on the task (its vocabulary only): memory once per kind and length,
    # each in a fresh child
    memory = [{"kind": kind, "length": n, "step_memory_mib": step_memory(kind, s.tasks[0], n, s, seed)}
              for kind in s.kinds for n in s.lengths] if s.memory else []
    for task in s.tasks:
        for length in s.lengths:
            trained = {kind: train_run(kind, task, length, s, seed, device) for kind in s.kinds}
            seconds = step_seconds({kind: model for kind, (model, _) in trained.items()}, task, length, s, repeat)
            for kind, (_, row) in trained.items():
                row.update(ms_per_step=1000 * seconds[kind], tokens_per_second=s.batch_size * length / seconds[kind])
                runs.append(row)
                log(f"seed {seed} {task:5s} T={length:5d} {kind:14s} accuracy {row['accuracy']:.3f}  "
                    f"{row['ms_per_step']:.0f} ms/step")
    log(f"timing causal attention (1 head, width 64, fwd+bwd) at {', '.join(map(str, s.timing_lengths))}")
    timing = time_attention(tuple(dict.fromkeys(("full", *s.kinds))), s.timing_lengths, s, seed, repeat)
    cross = [crossover(timing, k) for k in s.kinds if k != "full"]
    return {"runs": runs, "memory": memory, "timing": timing,
            "crossovers": [{"kind": c["kind"], "length": c["length"] if c["where"] == "measured" else None,
                            "where": c["where"]} for c in cross]}


QUICK_NOTE = ("--quick is a smoke test (25 steps, a tiny model): it shows that the experiment runs, not how the "
              "kinds compare; drop --quick for the real run.")
TABLES = (
    Table("runs", "Training runs: accuracy on the predictable next tokens, time of a training step's forward and "
          "backward (median of interleaved rounds)", ("task", "length", "kind"),
          ("accuracy", "chance", "ms_per_step", "tokens_per_second")),
    Table("memory", "Peak working memory of one training step (MiB, a fresh child process each)", ("kind", "length"),
          ("step_memory_mib",)),
    Table("timing", "Causal self-attention alone, one head of width 64, forward+backward (ms, median of "
          "interleaved rounds)", ("kind", "length"), ("ms",)),
    Table("crossovers", "Crossover: the length from which each kind is faster than SDPA (full) here", ("kind",),
          ("length",), note="A seed without a value: the crossover was outside the measured lengths (its "
          "`where` in the JSON report says on which side)."),
)
PANELS = (
    Panel("runs", "length", "accuracy", ("kind", "task"), "sequence length", "accuracy (predictable tokens)",
          log_x=True, ylim=(0.0, 1.05)),
    Panel("runs", "length", "ms_per_step", ("kind", "task"), "sequence length", "ms per training step (fwd+bwd)",
          log_x=True),
    Panel("memory", "length", "step_memory_mib", ("kind",), "sequence length", "step working memory (MiB)",
          log_x=True),
    Panel("timing", "length", "ms", ("kind",), "sequence length (1 head, width 64, causal)",
          "attention fwd+bwd (ms)", log_x=True, log_y=True),
)


def efficiency_experiment(s: EfficiencySettings, run: Callable[[int], dict[str, Rows]]) -> Experiment:
    """The harness's view of the experiment: its tables, panels and settings, and ``run`` (one seed)."""
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(s).items()}
    what = "quick run: a smoke test, not a comparison" if s.is_quick else f"{'validation' if s.split == 'valid' else 'test'} sequences"
    title = f"Attention kinds on {', '.join(s.tasks)}: quality, time and memory against length ({what})"
    return Experiment("efficiency", title, TABLES, PANELS, run, settings=settings)


__all__ = ["PANELS", "QUICK_NOTE", "SPLITS", "TABLES", "TASKS", "EfficiencySettings", "ScoredLoss", "TaskStream",
           "accuracy", "build_model", "crossover", "efficiency_experiment", "efficiency_seed", "kind_config",
           "scored_targets", "step_memory", "step_seconds", "symbol_batch", "task_batch", "time_attention",
           "train_run", "training_step", "vocab_size"]
