"""How to train (``TrainConfig``) and what a run gives back (``TrainResult``).

Example:
    >>> config = TrainConfig(steps=500, lr=1e-3, schedule="warmup", warmup_steps=50)
    >>> config.steps, config.schedule, config.mode
    (500, 'warmup', 'min')
    >>> TrainConfig(steps=0)
    Traceback (most recent call last):
    ...
    ValueError: TrainConfig.steps: expected an int >= 1. Received: 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from attnkit.training.schedules import SCHEDULES


@dataclass
class TrainConfig:
    """How to train. Every field has a default; a field per knob, nothing hidden.

    Raises:
        ValueError: a field out of range, as "TrainConfig.<field>: expected ... Received: ...".

    Example:
        >>> config = TrainConfig(steps=500, lr=1e-3, schedule="warmup", warmup_steps=50, out_dir="runs/x")
        >>> config.betas, config.clip_norm
        ((0.9, 0.999), 1.0)
    """

    steps: int = 1000                   # optimiser steps to reach (in total, counting resumed ones)
    lr: float = 1e-3                    # base learning rate (noam: the paper's multiplier, 1.0 = exact)
    weight_decay: float = 0.01          # AdamW decoupled decay, on weights with >= 2 dims only
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW moment decays
    eps: float = 1e-8                   # AdamW epsilon
    clip_norm: float | None = 1.0       # clip the global gradient L2 norm to this; None = no clipping
    schedule: str = "constant"          # constant | warmup | inverse_sqrt | cosine | noam
    warmup_steps: int = 0               # linear warmup length (steps)
    min_lr_ratio: float = 0.0           # cosine: final lr as a fraction of lr
    d_model: int | None = None          # noam: model width (default: model.config.d_model)
    eval_every: int = 500               # evaluate (and checkpoint) every this many steps, and at the end
    patience: int | None = None         # stop after this many evaluations without improvement; None = never
    metric: str = "loss"                # key of evaluate()'s dict that picks the best model
    mode: str = "min"                   # "min" or "max": which direction of `metric` is better
    min_delta: float = 0.0              # an improvement must beat the best by more than this
    seed: int = 0                       # seeds python, numpy and torch at the start of a fresh run
    out_dir: str | None = None          # where logs, checkpoint/ and model/ go; None = write nothing
    log_every: int = 50                 # steps between log records (averages over the window)
    progress: bool = True               # live progress bar (rank 0, rich)
    device: str = "auto"                # auto | cpu | cuda | cuda:N | mps
    time_budget: float | None = None    # wall-clock seconds, evaluations included, summed over resumed runs; None = no limit
    resume: bool = False                # continue from out_dir/checkpoint if it exists
    restore_best: bool = True           # after fit, put the best evaluated weights back into the model
    compile: bool = False               # torch.compile the training step (falls back with a warning where it fails)
    autocast: str | None = None         # None (float32) or "bfloat16": forward and loss under torch.autocast
    max_skipped_steps: int = 10         # a non-finite loss/gradient skips the update; stop after this many skips
    keep_checkpoints: int = 1           # checkpoint/ plus the K-1 previous ones as checkpoint-<step>/ (hard links)

    def __post_init__(self) -> None:
        def need(ok: bool, what: str, got: Any) -> None:
            if not ok:
                raise ValueError(f"TrainConfig.{what}. Received: {got!r}")

        need(isinstance(self.steps, int) and self.steps >= 1, "steps: expected an int >= 1", self.steps)
        need(_finite(self.lr), "lr: expected a finite number", self.lr)
        need(self.lr > 0, "lr: expected > 0", self.lr)
        need(self.weight_decay >= 0, "weight_decay: expected >= 0", self.weight_decay)
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        need(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
             "betas: expected two numbers in [0, 1)", self.betas)
        need(self.clip_norm is None or self.clip_norm > 0, "clip_norm: expected > 0 or None", self.clip_norm)
        need(self.schedule in SCHEDULES, f"schedule: expected one of {SCHEDULES}", self.schedule)
        need(self.warmup_steps >= 0, "warmup_steps: expected >= 0", self.warmup_steps)
        need(self.eval_every >= 1, "eval_every: expected >= 1", self.eval_every)
        need(self.patience is None or self.patience >= 1, "patience: expected >= 1 or None", self.patience)
        need(self.mode in ("min", "max"), "mode: expected 'min' or 'max'", self.mode)
        need(self.log_every >= 1, "log_every: expected >= 1", self.log_every)
        need(self.time_budget is None or (_finite(self.time_budget) and self.time_budget > 0),
             "time_budget: expected a finite number > 0 or None", self.time_budget)
        need(self.clip_norm is None or _finite(self.clip_norm), "clip_norm: expected finite", self.clip_norm)
        need(_finite(self.weight_decay) and _finite(self.eps), "weight_decay, eps: expected finite numbers",
             (self.weight_decay, self.eps))
        need(self.autocast in (None, "bfloat16"), "autocast: expected None or 'bfloat16'", self.autocast)
        need(isinstance(self.max_skipped_steps, int) and self.max_skipped_steps >= 0,
             "max_skipped_steps: expected an int >= 0", self.max_skipped_steps)
        need(isinstance(self.keep_checkpoints, int) and self.keep_checkpoints >= 1,
             "keep_checkpoints: expected an int >= 1", self.keep_checkpoints)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass
class TrainResult:
    """What ``Trainer.fit`` returns.

    Attributes:
        steps: optimiser steps done (in total, counting resumed ones).
        best_metric: best value of ``config.metric`` seen (None without ``evaluate``).
        best_step: the step it was seen at.
        history: one dict per evaluation: ``{"step": ..., <metric>: ..., "train_loss": ...}``.
        elapsed: seconds of training (in total, counting resumed runs).
        stop_reason: "steps", "early_stopping", "time_budget", "stop_at" (``fit(stop_at=...)``) or
            "non_finite" (more than ``max_skipped_steps`` non-finite steps).
        final_loss: mean training loss over the last log window.
        resumed_from: the checkpoint step this run started from, or None.
        skipped_steps: steps whose update was skipped for a non-finite loss or gradient (in total).

    Example:
        >>> TrainResult(steps=10, best_metric=0.9, best_step=8).stop_reason
        'steps'
    """

    steps: int
    best_metric: float | None
    best_step: int | None
    history: list[dict[str, float]] = field(default_factory=list)
    elapsed: float = 0.0
    stop_reason: str = "steps"
    final_loss: float | None = None
    resumed_from: int | None = None
    skipped_steps: int = 0
