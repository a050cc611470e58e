"""The ``attnkit experiment efficiency`` recipe: quality, time and memory of each attention kind against length.

The same small GPT (:class:`attnkit.models.GPT`, one attention kind per run through
``MultiHeadAttention.kind``) is trained with equal budgets on two built-in tasks at several lengths:

- ``copy`` (long range): ``x_1 .. x_n SEP x_1 .. x_n`` of random symbols; the second half is predictable
  only by looking ``n + 1`` positions back, across the whole sequence;
- ``local``: random symbols where every odd position holds ``(3 x_{t-1} + 1) mod K``, a function of the
  previous token only.

Scored on held-out sequences: next-token accuracy on the predictable positions only (chance ``1 / K``).
Per run it records seconds per training step, tokens/s and the peak working memory of one training step
(resident-set high-water mark, reset before the step; Linux). Apart from the models, it times the
attention alone (one head, width 64, causal, forward+backward) from short to long lengths and finds the
**crossover length** where each kind becomes faster than SDPA (full attention) on this CPU.

Shape legend: B batch, T length, K symbols, V = K + 1 vocabulary (SEP), H heads, Dh head width.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from attnkit.errors import InputError
from attnkit.functional import attention
from attnkit.functional.kinds import (
    KINDS,
    BlockSparseAttention,
    LinearAttention,
    PerformerAttention,
    SlidingWindowAttention,
)
from attnkit.models.gpt import GPT, GPTConfig
from attnkit.recipes.common import Log, no_log
from attnkit.training.config import TrainConfig
from attnkit.training.trainer import Trainer

TASKS: tuple[str, ...] = ("copy", "local")


@dataclass
class EfficiencySettings:
    """Sizes of the experiment (``quick()`` shrinks them to a run of about a minute).

    Example:
        >>> EfficiencySettings().quick().lengths
        (64, 128)
    """

    kinds: tuple[str, ...] = KINDS  # attention kinds, "full" = SDPA
    tasks: tuple[str, ...] = TASKS
    lengths: tuple[int, ...] = (64, 128, 256, 512)  # training sequence lengths
    timing_lengths: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192, 16384)  # attention-only timing
    steps: int = 1000  # training steps per run (copy: full attention at 64 tokens is at chance after 300, 0.97 after 800)
    batch_size: int = 16
    d_model: int = 64
    heads: int = 2
    layers: int = 2
    symbols: int = 16  # K
    window: int = 32  # sliding window: keys on each side
    block: int = 16  # block sparse: block size (1 local block each side, 1 global, 2 random)
    features: int = 64  # performer: random features per head
    lr: float = 3e-3
    eval_batches: int = 4
    memory: bool = True  # measure each step's peak memory in a child process (a few seconds per kind and length)
    seed: int = 0
    is_quick: bool = False

    def quick(self) -> EfficiencySettings:
        """A smoke-sized run: two short lengths, few steps, tiny model."""
        return EfficiencySettings(**{**asdict(self), "lengths": (64, 128), "timing_lengths": (256, 1024, 4096),
                                     "steps": 25, "batch_size": 8, "d_model": 32, "window": 8, "block": 8,
                                     "features": 32, "eval_batches": 2, "is_quick": True})

    def check(self) -> None:
        """``InputError`` naming the flag for a value out of range."""
        for name, values, allowed in (("--kinds", self.kinds, KINDS), ("--tasks", self.tasks, TASKS)):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise InputError(f"{name} must be a non-empty subset of {', '.join(allowed)}. Received: {bad or values}")
        for name, value in (("--steps", self.steps), ("--batch-size", self.batch_size), ("--d-model", self.d_model),
                            ("--heads", self.heads), ("--layers", self.layers), ("--window", self.window)):
            if value < 1:
                raise InputError(f"{name} must be >= 1. Received: {value}")
        if self.d_model % self.heads:
            raise InputError(f"--d-model must be divisible by --heads. Received: {self.d_model}, {self.heads}")
        if not self.lengths or min(self.lengths) < 8 or not self.timing_lengths or min(self.timing_lengths) < 8:
            raise InputError(f"--lengths must be lengths >= 8. Received: {list(self.lengths)}")


# ------------------------------------------------------------------------------------------ the tasks


def task_batch(task: str, batch: int, length: int, symbols: int, gen: torch.Generator) -> torch.Tensor:
    """``(B, T)`` ids of a task; ``symbols`` (K) is the separator of ``copy``.

    Example:
        >>> ids = task_batch("copy", 2, 9, 5, torch.Generator().manual_seed(0))
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
    """``(T - 1,)`` bool: which next-token targets ``ids[:, 1:]`` are predictable.

    Example:
        >>> scored_targets("copy", 9).int().tolist()
        [0, 0, 0, 0, 1, 1, 1, 1]
    """
    t = torch.arange(1, length)  # target positions
    if task == "copy":
        n = (length - 1) // 2
        return t >= length - n
    return t % 2 == 1


class TaskStream:
    """Endless batches of a task for :class:`Trainer`; batch ``i`` is drawn from ``seed + i`` (resumable)."""

    def __init__(self, task: str, batch: int, length: int, symbols: int, seed: int) -> None:
        self.task, self.batch, self.length, self.symbols, self.seed, self.position = task, batch, length, symbols, seed, 0

    def __iter__(self):
        while True:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.position)
            self.position += 1
            yield task_batch(self.task, self.batch, self.length, self.symbols, gen)

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])


# ------------------------------------------------------------------------------------------ measuring


def make_kind(name: str, s: EfficiencySettings, head_dim: int):
    """The attention kind object of a run (``"full"`` stays a name)."""
    return {"full": lambda: "full", "sliding_window": lambda: SlidingWindowAttention(s.window),
            "block_sparse": lambda: BlockSparseAttention(block_size=s.block, seed=s.seed),
            "linear": LinearAttention,
            "performer": lambda: PerformerAttention(num_features=s.features, dim=head_dim, seed=s.seed)}[name]()


_MEMORY_CHILD = """
import ctypes, gc, json, sys, torch
from attnkit.experiments.efficiency import EfficiencySettings, build_model, task_batch
try:
    trim = ctypes.CDLL("libc.so.6").malloc_trim  # hand freed heap pages back, so reusing them counts again
except (OSError, AttributeError):
    trim = lambda _: None
torch.set_num_threads(1)
args = json.loads(sys.argv[1])
s = EfficiencySettings(**args["settings"])
def status(name):
    with open("/proc/self/status") as f:
        return int(next(x for x in f if x.startswith(name)).split()[1]) * 1024
for length in args["lengths"]:  # ascending: memory a shorter step freed is reused, never over-counted
    model = build_model(args["kind"], length, s)
    ids = task_batch(args["task"], 2, 16, s.symbols, torch.Generator().manual_seed(0))
    model(ids, labels=ids).loss.backward()  # warm up: kernels, lazy imports
    ids = task_batch(args["task"], s.batch_size, length, s.symbols, torch.Generator().manual_seed(1))
    gc.collect()
    trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    base = status("VmRSS")
    model(ids, labels=ids).loss.backward()
    print(length, status("VmHWM") - base, flush=True)
"""


def step_memory(kind: str, task: str, lengths: tuple[int, ...], s: EfficiencySettings) -> dict[int, int]:
    """Peak working memory (bytes) of one training step (forward + backward, batch ``s.batch_size``) at each
    length, measured in a fresh child process per kind: resident high-water mark during the step minus the
    resident memory before it (Linux ``/proc``); lengths that cannot be measured are left out."""
    args = json.dumps({"kind": kind, "task": task, "lengths": sorted(lengths), "settings": asdict(s)})
    try:
        done = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, args], capture_output=True, text=True,
                              timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {int(n): int(b) for n, b in (line.split() for line in done.stdout.splitlines() if line.strip())}


def accuracy(model: GPT, task: str, s: EfficiencySettings, length: int) -> float:
    """Next-token accuracy on the predictable targets of ``eval_batches`` held-out batches."""
    keep = scored_targets(task, length)
    gen = torch.Generator().manual_seed(10_000_019 + s.seed)
    correct = total = 0
    with torch.no_grad():
        for _ in range(s.eval_batches):
            ids = task_batch(task, s.batch_size, length, s.symbols, gen)
            pred = model(ids).logits[:, :-1].argmax(-1)  # (B, T - 1)
            correct += int((pred == ids[:, 1:])[:, keep].sum())
            total += int(keep.sum()) * ids.shape[0]
    return correct / max(total, 1)


def build_model(kind: str, length: int, s: EfficiencySettings) -> GPT:
    """The run's GPT: the config names the kind, each block gets the run's options (block size, features)."""
    torch.manual_seed(s.seed)
    config = GPTConfig(vocab_size=s.symbols + 1, n_positions=length, n_embd=s.d_model, n_layer=s.layers,
                       n_head=s.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attention_kind=kind,
                       attention_window=s.window if kind == "sliding_window" else None)
    model = GPT(config)
    for block in model.blocks:
        block.self_attn.kind = make_kind(kind, s, s.d_model // s.heads)
    return model


def train_run(kind: str, task: str, length: int, s: EfficiencySettings, device: str = "cpu") -> dict[str, Any]:
    """Train one GPT with ``kind`` on ``task`` at ``length``; its row of the table."""
    model = build_model(kind, length, s)
    tc = TrainConfig(steps=s.steps, lr=s.lr, schedule="cosine", warmup_steps=max(1, s.steps // 10), min_lr_ratio=0.1,
                     weight_decay=0.0, eval_every=s.steps, seed=s.seed, progress=False, device=device,
                     log_every=max(1, s.steps // 5), restore_best=False)
    result = Trainer(model, tc, TaskStream(task, s.batch_size, length, s.symbols, s.seed)).fit()
    model.eval()
    score = accuracy(model, task, s, length)
    step = result.elapsed / max(result.steps, 1)
    return {"kind": kind, "task": task, "length": length, "accuracy": round(score, 4),
            "chance": round(1 / s.symbols, 4), "seconds_per_step": round(step, 4),
            "tokens_per_second": round(s.batch_size * length / step) if step else None,
            "step_memory_mib": None, "final_loss": result.final_loss}


def time_attention(kinds: tuple[str, ...], lengths: tuple[int, ...], s: EfficiencySettings,
                   repeat: int = 3) -> list[dict[str, Any]]:
    """Median forward+backward seconds of causal self-attention ``(1, 1, T, 64)`` per kind and length;
    the rounds interleave the kinds so that load from elsewhere hits them alike."""
    rows = []
    for length in lengths:
        gen = torch.Generator().manual_seed(s.seed)
        q, k, v = (torch.randn(1, 1, length, 64, generator=gen).requires_grad_() for _ in range(3))
        objects = {name: make_kind(name, s, 64) for name in kinds}
        times: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(repeat + 1):  # the first round warms up
            for name, kind in objects.items():
                start = time.perf_counter()
                attention(q, k, v, causal=True, kind=kind).sum().backward()
                times[name].append(time.perf_counter() - start)
        rows += [{"kind": n, "length": length, "seconds": statistics.median(t[1:])} for n, t in times.items()]
    return rows


def crossover(timing: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The length where ``kind`` becomes faster than full attention (log-log interpolation between the
    two measured lengths around it), with ``"below"``/``"above"`` when it is outside the measured range.

    Example:
        >>> rows = [{"kind": k, "length": n, "seconds": t} for k, n, t in
        ...         [("full", 100, 1.0), ("x", 100, 2.0), ("full", 400, 4.0), ("x", 400, 2.0)]]
        >>> crossover(rows, "x")
        {'kind': 'x', 'length': 200, 'where': 'measured'}
    """
    def at(name: str) -> dict[int, float]:
        return {r["length"]: r["seconds"] for r in timing if r["kind"] == name}
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


@dataclass
class EfficiencyResult:
    """The training rows, the attention timing rows, the crossovers and the settings."""

    rows: list[dict[str, Any]]
    timing: list[dict[str, Any]]
    crossovers: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)


def run_efficiency(s: EfficiencySettings, device: str = "cpu", log: Log = no_log) -> EfficiencyResult:
    """Train every kind on every task and length, then time the attention alone; see the module docstring.

    Args:
        s: the settings (checked here); device: where to train; log: one line per finished run.

    Returns:
        An :class:`EfficiencyResult`.
    """
    s.check()
    rows = []
    # the task does not change a step's shapes: memory once per kind, every length in one child process
    memory = {kind: step_memory(kind, s.tasks[0], s.lengths, s) if s.memory else {} for kind in s.kinds}
    for task in s.tasks:
        for length in s.lengths:
            for kind in s.kinds:
                row = train_run(kind, task, length, s, device)
                got = memory[kind].get(length)
                row["step_memory_mib"] = None if got is None else round(got / 2**20, 1)
                rows.append(row)
                log(f"{task:5s} T={length:5d} {kind:14s} accuracy {row['accuracy']:.3f}  "
                    f"{row['seconds_per_step'] * 1000:.0f} ms/step  {row['step_memory_mib']} MiB")
    log(f"timing causal attention (1 head, width 64, fwd+bwd) at {', '.join(map(str, s.timing_lengths))}")
    timing = time_attention(tuple(dict.fromkeys(("full", *s.kinds))), s.timing_lengths, s, 2 if s.is_quick else 3)
    cross = [crossover(timing, k) for k in s.kinds if k != "full"]
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(s).items()}
    return EfficiencyResult(rows, timing, cross, settings)


def efficiency_markdown(result: EfficiencyResult) -> str:
    """``efficiency.md``: the training table, the attention timing and the crossover lengths."""
    s = result.settings
    lines = [f"# Attention kinds: quality, time and memory against length ({'quick' if s['is_quick'] else 'full'} run)",
             "", f"GPT {s['layers']} layers, width {s['d_model']}, {s['heads']} heads; {s['steps']} steps of batch "
             f"{s['batch_size']} per run; window {s['window']}, block {s['block']}, performer features {s['features']}. "
             f"Accuracy on the predictable next tokens (chance {1 / s['symbols']:.3f}); memory: peak working "
             "memory of one training step.", "",
             "| task | length | kind | accuracy | ms/step | tokens/s | step memory (MiB) |", "|---|---:|---|---:|---:|---:|---:|"]
    for r in result.rows:
        lines.append(f"| {r['task']} | {r['length']} | {r['kind']} | {r['accuracy']:.3f} | "
                     f"{r['seconds_per_step'] * 1000:.0f} | {r['tokens_per_second']} | {r['step_memory_mib']} |")
    kinds = list(dict.fromkeys(r["kind"] for r in result.timing))
    lines += ["", "Causal self-attention alone, one head of width 64, forward+backward (ms, median):", "",
              "| length | " + " | ".join(kinds) + " |", "|---:|" + "---:|" * len(kinds)]
    for n in sorted({r["length"] for r in result.timing}):
        cells = {r["kind"]: r["seconds"] for r in result.timing if r["length"] == n}
        lines.append(f"| {n} | " + " | ".join(f"{cells[k] * 1000:.1f}" for k in kinds) + " |")
    lines += ["", "Crossover: the length from which each kind is faster than SDPA (full) here:", ""]
    lines += [f"- {c['kind']}: {c['length'] if c['where'] == 'measured' else c['where']}" for c in result.crossovers]
    return "\n".join(lines) + "\n"


__all__ = ["TASKS", "EfficiencyResult", "EfficiencySettings", "TaskStream", "build_model", "crossover", "efficiency_markdown",
           "run_efficiency", "scored_targets", "step_memory", "task_batch", "train_run"]
