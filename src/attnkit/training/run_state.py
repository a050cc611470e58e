"""What ``Trainer.fit`` changes while it runs: the run state, the log window and the train log file.

``RunState`` holds every number and object the steps of the loop share (step, best metric, early-stopping
count, timers, optimiser, scheduler, data); the steps of ``Trainer.fit`` read and update it and nothing
else, so each step is a short method with one argument. ``RunState.trainer_state()`` is what a
checkpoint stores and ``RunState.restore(state)`` reads it back.

Example:
    >>> run = RunState(step=3, best=0.5, best_step=2, spent=10.0)
    >>> run.add_to_window(loss=2.0, stats={"correct": 3, "total": 4, "tokens": 4})
    >>> run.add_to_window(loss=1.0, stats={})
    >>> run.window["loss"], run.window["steps"], run.window["correct"]
    (3.0, 2.0, 3.0)
    >>> sorted(run.trainer_state(train_config={}))
    ['bad_evals', 'best', 'best_step', 'elapsed', 'history', 'skipped', 'step', 'train_config']
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attnkit.storage import append_text, atomic_write_text

LOG_FILE = "train_log.jsonl"
WINDOW_KEYS = ("loss", "correct", "total", "tokens", "steps")  # summed over a log window


def _empty_window() -> dict[str, float]:
    return dict.fromkeys(WINDOW_KEYS, 0.0)


@dataclass
class RunState:
    """The state of one ``fit`` call, shared by the steps of the loop.

    Attributes:
        step: optimiser steps done (in total, counting resumed ones).
        end: the step this call stops at (``config.steps`` or ``fit(stop_at=...)``).
        best, best_step: best value of the metric so far and the step it was seen at.
        bad_evals: evaluations since the last improvement (early stopping).
        history: one dict per evaluation.
        spent: seconds spent by earlier runs (resume); ``start``: ``time.perf_counter()`` at this start.
        resumed_from: the checkpoint step this call started from, or None.
        best_state: a copy of the best weights (``restore_best``), or None.
        window, window_start: sums since the last log record and when that window began.
        final_loss: mean loss of the last log window; ``grad_norm``, ``lr``: of the last step.
        last_saved: step of the last checkpoint.
        skipped: steps whose update was skipped (non-finite loss or gradient), in total.
        stop_reason: None while running, then "steps", "early_stopping", "time_budget", "stop_at" or
            "non_finite".
        optimizer, scheduler, step_module, data, batches, progress: the objects the steps use.
        budget: the ``TimeBudget`` of ``config.time_budget``, or None.
    """

    step: int = 0
    end: int = 0
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    spent: float = 0.0
    start: float = field(default_factory=time.perf_counter)
    resumed_from: int | None = None
    best_state: dict[str, torch.Tensor] | None = None
    window: dict[str, float] = field(default_factory=_empty_window)
    window_start: float = 0.0
    final_loss: float | None = None
    grad_norm: float | None = None
    lr: float = 0.0
    last_saved: int = 0
    skipped: int = 0
    stop_reason: str | None = None
    optimizer: Any = None
    scheduler: Any = None
    step_module: Any = None
    data: Any = None
    batches: Any = None
    progress: Any = None
    budget: Any = None

    def elapsed(self, now: float | None = None) -> float:
        """Seconds of training in total: earlier runs plus this one up to ``now`` (default: now)."""
        return self.spent + (time.perf_counter() if now is None else now) - self.start

    def add_to_window(self, loss: float, stats: dict[str, Any] | None) -> None:
        """Add one step's loss and counts (``correct``, ``total``, ``tokens``) to the log window."""
        self.window["loss"] += loss
        self.window["steps"] += 1
        for k in ("correct", "total", "tokens"):
            self.window[k] += float(stats.get(k, 0.0)) if stats else 0.0

    def reset_window(self, now: float) -> None:
        """Start a new log window at ``now``."""
        self.window = _empty_window()
        self.window_start = now

    def is_better(self, value: float, mode: str, min_delta: float) -> bool:
        """True if ``value`` beats ``best`` by more than ``min_delta`` in direction ``mode``; NaN never does."""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value < self.best - min_delta if mode == "min" else value > self.best + min_delta

    def trainer_state(self, train_config: dict[str, Any]) -> dict[str, Any]:
        """The JSON object a checkpoint stores (``save_checkpoint``'s ``state``)."""
        return {"step": self.step, "best": self.best, "best_step": self.best_step, "bad_evals": self.bad_evals,
                "elapsed": self.elapsed(), "history": self.history, "skipped": self.skipped,
                "train_config": train_config}

    def restore(self, state: dict[str, Any], step: int) -> None:
        """Take step, best metric, early-stopping count, elapsed time and history from a checkpoint."""
        self.step, self.best, self.best_step = step, state.get("best"), state.get("best_step")
        self.bad_evals, self.spent = state.get("bad_evals", 0), state.get("elapsed", 0.0)
        self.history = state.get("history", [])
        self.skipped = state.get("skipped", 0)
        self.resumed_from = self.last_saved = step


def append_log(out_dir: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``out_dir/train_log.jsonl``.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> append_log(d, {"event": "train", "step": 1}); append_log(d, {"event": "train", "step": 2})
        >>> trim_log(d, step=1); (d / LOG_FILE).read_text()
        '{"event": "train", "step": 1}\\n'
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    append_text(out_dir / LOG_FILE, json.dumps(record) + "\n")


def trim_log(out_dir: Path, step: int) -> None:
    """Drop the records after ``step`` (a resumed run writes them again) and lines cut short by a kill."""
    path = out_dir / LOG_FILE
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:  # a line cut short by a killed run
            continue
    atomic_write_text(path, "".join(s + "\n" for s in kept))
