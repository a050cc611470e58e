"""The trainer every attnkit model uses: a flat loop with numbered steps.

A model trained here implements::

    def training_step(self, batch) -> tuple[Tensor, dict[str, float]]:
        # loss: a scalar tensor with a graph; stats may hold
        #   "correct", "total"  token counts (accuracy = correct / total over a log window)
        #   "tokens"            tokens in the batch (for tokens/s)
        ...

``train_data`` is any iterable of batches (each with a ``.to(device)`` method, or a tensor / dict / list /
tuple of tensors) that also has ``state_dict()`` and ``load_state_dict(state)``. Semantics the trainer
relies on:

- ``iter(train_data)`` continues from the current position; when an iterator is exhausted the trainer
  calls ``iter`` again for the next pass (epoch), so a finite source is cycled.
- ``state_dict()``, called between two ``next()`` calls of the live iterator, describes the position just
  after the last batch handed out; after ``load_state_dict(state)`` a new ``iter(train_data)`` yields
  exactly the batches that would have followed. The state should be JSON-serialisable (plain ints, lists,
  strings; RNG states as lists), else tensors/lists/dicts only (stored with torch.save, read with
  ``weights_only=True``).

The loop, per step: 1 batch, 2 forward/loss, 3 backward, 4 clip, 5 optimiser step, 6 schedule, 7 log,
8 evaluate / checkpoint / stop. Files in ``out_dir``: ``train_log.jsonl`` (one JSON object per line),
``checkpoint/`` (resumable, see ``attnkit.training.checkpoint``), ``model/`` (the best model so far, or the
final one without ``evaluate``; ``attnkit.load`` reads it). Only rank 0 writes files.

Determinism: a fresh run seeds python, numpy and torch with ``config.seed``; evaluation runs on a saved
copy of the RNG state which is put back afterwards, so how often one evaluates never changes the training
trajectory; ``resume=True`` restores weights, optimiser, scheduler, RNG states and the data position, so
N steps + resume to 2N ends with the same weights as 2N steps in one go.

Example::

    config = TrainConfig(steps=2000, lr=3e-3, schedule="cosine", warmup_steps=100, eval_every=200,
                         metric="exact_match", mode="max", patience=5, out_dir="runs/dates")
    result = Trainer(model, config, batches, evaluate=lambda m: {"exact_match": exact(m)}).fit()
    result.best_metric, result.steps
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from attnkit.errors import CheckpointError
from attnkit.models.base import (
    WEIGHTS_FILE,
    KitModel,
    atomic_write_text,
    read_model_config,
    recover_directory,
)
from attnkit.training.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from attnkit.training.progress import TrainProgress
from attnkit.training.runtime import (
    Runtime,
    all_reduce_sum,
    barrier,
    broadcast_flag,
    get_rng_state,
    move_to,
    seed_everything,
    set_rng_state,
    setup_runtime,
    shard_for_rank,
    wrap_for_training,
)
from attnkit.training.schedules import SCHEDULES, make_schedule

LOG_FILE = "train_log.jsonl"
CHECKPOINT_DIR = "checkpoint"
MODEL_DIR = "model"


@dataclass
class TrainConfig:
    """How to train. Every field has a default; a field per knob, nothing hidden.

    Example::

        TrainConfig(steps=500, lr=1e-3, schedule="warmup", warmup_steps=50, out_dir="runs/x")
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

    def __post_init__(self) -> None:
        def need(ok: bool, what: str, got: Any) -> None:
            if not ok:
                raise ValueError(f"TrainConfig.{what}. Received: {got!r}")

        need(isinstance(self.steps, int) and self.steps >= 1, "steps: expected an int >= 1", self.steps)
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
        need(self.time_budget is None or self.time_budget > 0, "time_budget: expected > 0 or None",
             self.time_budget)


@dataclass
class TrainResult:
    """What ``Trainer.fit`` returns.

    Attributes:
        steps: optimiser steps done (in total, counting resumed ones).
        best_metric: best value of ``config.metric`` seen (None without ``evaluate``).
        best_step: the step it was seen at.
        history: one dict per evaluation: ``{"step": ..., <metric>: ..., "train_loss": ...}``.
        elapsed: seconds of training (in total, counting resumed runs).
        stop_reason: "steps", "early_stopping", "time_budget" or "stop_at" (``fit(stop_at=...)``).
        final_loss: mean training loss over the last log window.
        resumed_from: the checkpoint step this run started from, or None.
    """

    steps: int
    best_metric: float | None
    best_step: int | None
    history: list[dict[str, float]] = field(default_factory=list)
    elapsed: float = 0.0
    stop_reason: str = "steps"
    final_loss: float | None = None
    resumed_from: int | None = None


class _StepModule(nn.Module):
    """Routes ``training_step`` through ``__call__`` so DistributedDataParallel sees the forward pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.model.training_step(batch)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (ndim >= 2) and none on biases, norms and scalars."""
    seen: set[int] = set()
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr, betas=config.betas,
                             eps=config.eps)


def has_model(directory: Path) -> bool:
    """True if ``directory`` holds a saved model (config and weights)."""
    return (directory / "config.json").is_file() and (directory / WEIGHTS_FILE).is_file()


def _is_better(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class Trainer:
    """Train ``model`` on ``train_data`` with ``config``; see the module docstring for the contract.

    Args:
        model: a ``KitModel`` with ``training_step(batch) -> (loss, stats)``.
        config: a ``TrainConfig``.
        train_data: iterable of batches with ``state_dict()`` / ``load_state_dict()``.
        evaluate: ``evaluate(model) -> {"name": value, ...}``, called in eval mode under ``torch.no_grad``
            every ``config.eval_every`` steps and at the end; must contain ``config.metric``.
    """

    def __init__(self, model: KitModel, config: TrainConfig, train_data: Iterable[Any],
                 evaluate: Callable[[KitModel], dict[str, float]] | None = None) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig. Received: {type(config).__name__}")
        if not callable(getattr(model, "training_step", None)):
            raise TypeError(f"model must implement training_step(batch) -> (loss, stats). "
                            f"Received: {type(model).__name__} without it")
        for name in ("state_dict", "load_state_dict", "__iter__"):
            if not callable(getattr(train_data, name, None)):
                raise TypeError(f"train_data must be iterable and have state_dict() / load_state_dict(). "
                                f"Received: {type(train_data).__name__} without {name}")
        self.model = model
        self.config = config
        self.train_data = train_data
        self.evaluate = evaluate
        self.runtime: Runtime | None = None

    # -- paths ----------------------------------------------------------------------------------------
    @property
    def out_dir(self) -> Path | None:
        return Path(self.config.out_dir) if self.config.out_dir else None

    # -- helpers --------------------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        if self.out_dir is None or not self.runtime or not self.runtime.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _trim_log(self, step: int) -> None:
        """On resume, drop log records written after the checkpoint (they will be written again)."""
        if self.out_dir is None or not self.runtime or not self.runtime.is_main:
            return
        path = self.out_dir / LOG_FILE
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

    def _run_evaluate(self) -> dict[str, float]:
        """Evaluate in eval mode without gradients, leaving the RNG states as they were."""
        assert self.evaluate is not None
        rng = get_rng_state()
        self.model.eval()
        try:
            with torch.no_grad():
                metrics = self.evaluate(self.model)
        finally:
            self.model.train()
            set_rng_state(*rng)
        if not isinstance(metrics, dict) or self.config.metric not in metrics:
            keys = sorted(metrics) if isinstance(metrics, dict) else type(metrics).__name__
            raise ValueError(f"evaluate() must return a dict with the metric {self.config.metric!r} "
                             f"(TrainConfig.metric). Received: {keys}")
        return {k: float(v) for k, v in metrics.items()}

    def _batches(self, data: Iterable[Any]) -> Iterator[Any]:
        while True:
            empty = True
            for batch in data:
                empty = False
                yield batch
            if empty:
                raise ValueError("train_data yielded no batches. Expected at least one batch per pass.")

    # -- the loop -------------------------------------------------------------------------------------
    def fit(self, resume: bool | None = None, stop_at: int | None = None) -> TrainResult:
        """Train until ``config.steps``, early stopping or the time budget; returns a ``TrainResult``.

        Args:
            resume: override ``config.resume``: continue from ``out_dir/checkpoint`` when it exists (a run
                with no checkpoint yet starts fresh).
            stop_at: end this call after this step, as if the run were interrupted there (a checkpoint is
                written; ``stop_reason`` is ``"stop_at"``). Schedules still span ``config.steps``, so a
                later ``fit(resume=True)`` continues exactly as an uninterrupted run would.
        """
        cfg, model = self.config, self.model
        resume = cfg.resume if resume is None else resume
        if stop_at is not None and not (isinstance(stop_at, int) and 1 <= stop_at <= cfg.steps):
            raise ValueError(f"stop_at must be an int in [1, config.steps={cfg.steps}]. Received: {stop_at!r}")
        end = cfg.steps if stop_at is None else stop_at
        rt = self.runtime = setup_runtime(cfg.device)
        out = self.out_dir
        ckpt_dir = out / CHECKPOINT_DIR if out is not None else None

        model.to(rt.device)
        model.train()
        step_module = wrap_for_training(_StepModule(model), rt)
        optimizer = build_optimizer(model, cfg)
        d_model = cfg.d_model if cfg.d_model is not None else getattr(model.config, "d_model", None)
        factor = make_schedule(cfg.schedule, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
                               d_model=d_model, min_ratio=cfg.min_lr_ratio)
        scheduler = LambdaLR(optimizer, lambda done: factor(done + 1))  # done = updates so far
        data: Any = shard_for_rank(self.train_data, rt)  # rank r keeps batches r, r + W, ... of the stream

        step, best, best_step, bad_evals, spent = 0, None, None, 0, 0.0
        history: list[dict[str, float]] = []
        resumed_from = None
        best_state: dict[str, torch.Tensor] | None = None
        if resume and ckpt_dir is not None and rt.is_main:
            recover_directory(ckpt_dir)  # a kill between the two renames of a save
        barrier(rt)
        if resume and ckpt_dir is not None and has_checkpoint(ckpt_dir):
            ckpt = load_checkpoint(ckpt_dir)
            ckpt.load_model_weights(model)
            try:
                optimizer.load_state_dict(ckpt.optimizer)
                if ckpt.state.get("scheduler") is not None:
                    scheduler.load_state_dict(ckpt.state["scheduler"])
            except (ValueError, KeyError, RuntimeError) as err:
                raise CheckpointError(f"optimiser/scheduler state in {ckpt_dir} does not fit this model: {err}") from err
            data.load_state_dict(ckpt.data_state)
            set_rng_state(ckpt.rng_json, ckpt.rng_tensors)
            st = ckpt.state
            step, best, best_step = ckpt.step, st.get("best"), st.get("best_step")
            bad_evals, spent, history = st.get("bad_evals", 0), st.get("elapsed", 0.0), st.get("history", [])
            resumed_from = step
            self._trim_log(step)
        else:
            seed_everything(cfg.seed)

        def checkpoint() -> None:
            if ckpt_dir is not None and rt.is_main:
                state = {"step": step, "best": best, "best_step": best_step, "bad_evals": bad_evals,
                         "elapsed": spent + (time.perf_counter() - start), "history": history,
                         "train_config": asdict(cfg)}
                save_checkpoint(ckpt_dir, model, optimizer, scheduler, state, data.state_dict())
            barrier(rt)

        start = time.perf_counter()
        window = {"loss": 0.0, "correct": 0.0, "total": 0.0, "tokens": 0.0, "steps": 0.0}
        window_start = start
        final_loss: float | None = None
        stop_reason = "steps"
        last_saved = step
        batches = self._batches(data)
        progress = TrainProgress(cfg.steps, enabled=cfg.progress and rt.is_main, completed=step)
        if resumed_from is None:
            if out is not None and rt.is_main and (out / LOG_FILE).exists():
                atomic_write_text(out / LOG_FILE, "")  # a fresh run starts a fresh log
            self._log({"event": "start", "step": 0, "train_config": asdict(cfg), "world_size": rt.world_size})
        else:
            self._log({"event": "resume", "step": step})

        with progress:
            while step < end:
                # 1. batch: next batch from the stream, on the device
                batch = move_to(next(batches), rt.device)
                # 2. forward and loss
                loss, stats = step_module(batch)
                if not torch.isfinite(loss.detach()):
                    raise FloatingPointError(f"training loss is {loss.item()} at step {step + 1}")
                # 3. backward
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                # 4. clip the global gradient norm
                grad_norm = None
                if cfg.clip_norm is not None:
                    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm))
                # 5. optimiser step
                optimizer.step()
                # 6. schedule: lr for the next update
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step()
                step += 1
                # 7. log: averages over the window since the last record
                window["loss"] += float(loss.detach())
                window["steps"] += 1
                for k in ("correct", "total", "tokens"):
                    window[k] += float(stats.get(k, 0.0)) if stats else 0.0
                progress.advance()
                if step % cfg.log_every == 0 or step == end:
                    now = time.perf_counter()
                    w = all_reduce_sum(window, rt)
                    final_loss = w["loss"] / max(1.0, w["steps"])
                    record = {"event": "train", "step": step, "loss": final_loss, "lr": lr,
                              "elapsed": round(spent + now - start, 3)}
                    if w["total"] > 0:
                        record["accuracy"] = w["correct"] / w["total"]
                    if w["tokens"] > 0:
                        record["tokens_per_s"] = w["tokens"] / max(1e-9, now - window_start)
                    if grad_norm is not None:
                        record["grad_norm"] = grad_norm
                    self._log(record)
                    progress.show(record)
                    window = dict.fromkeys(window, 0.0)
                    window_start = now
                # 8. evaluate, keep the best, checkpoint, decide whether to stop
                over_time = cfg.time_budget is not None and spent + time.perf_counter() - start >= cfg.time_budget
                over_time = broadcast_flag(over_time, rt) if cfg.time_budget is not None else False
                last = step >= end or over_time
                if step % cfg.eval_every == 0 or last:
                    paused = time.perf_counter()
                    stop_early = False
                    if self.evaluate is not None and rt.is_main:
                        metrics = self._run_evaluate()
                        value = metrics[cfg.metric]
                        improved = _is_better(value, best, cfg.mode, cfg.min_delta)
                        if improved:
                            best, best_step, bad_evals = value, step, 0
                            if out is not None:
                                model.save(out / MODEL_DIR)
                            if cfg.restore_best:
                                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                        else:
                            bad_evals += 1
                        entry = {"step": step, **metrics}
                        if final_loss is not None:
                            entry["train_loss"] = final_loss
                        history.append(entry)
                        self._log({"event": "eval", "improved": improved, **entry})
                        progress.show_eval(metrics, cfg.metric, best)
                        stop_early = cfg.patience is not None and bad_evals >= cfg.patience
                    stop_early = broadcast_flag(stop_early, rt)
                    checkpoint()
                    last_saved = step
                    window_start += time.perf_counter() - paused  # tokens/s counts training time only
                    if stop_early:
                        stop_reason = "early_stopping"
                        break
                if over_time:
                    stop_reason = "time_budget"
                    break
            if stop_reason == "steps" and step < cfg.steps:
                stop_reason = "stop_at"

        if last_saved != step:
            checkpoint()
        elapsed = spent + time.perf_counter() - start
        if self.evaluate is None and out is not None and rt.is_main:
            model.save(out / MODEL_DIR)
        if cfg.restore_best and best_step is not None and best_step != step:
            if best_state is not None:
                model.load_state_dict(best_state)
            elif rt.is_main and out is not None and has_model(out / MODEL_DIR):  # best from an earlier run
                meta = read_model_config(out / MODEL_DIR)
                model.load_weights(out / MODEL_DIR / WEIGHTS_FILE, tied=meta.get("tied") or {})
        self._log({"event": "stop", "step": step, "reason": stop_reason, "elapsed": round(elapsed, 3),
                   "best": best, "best_step": best_step})
        barrier(rt)
        return TrainResult(steps=step, best_metric=best, best_step=best_step, history=history, elapsed=elapsed,
                           stop_reason=stop_reason, final_loss=final_loss, resumed_from=resumed_from)
