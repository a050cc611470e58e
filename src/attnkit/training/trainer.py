"""The trainer every attnkit model uses: a flat loop with numbered steps.

A model trained here implements::

    def training_step(self, batch) -> tuple[Tensor, dict[str, float]]:
        # loss: a scalar tensor with a graph; stats may hold
        #   "correct", "total"  token counts (accuracy = correct / total over a log window)
        #   "tokens"            tokens in the batch (for tokens/s)
        ...

``train_data`` is any iterable of batches (each with a ``.to(device)`` method, or a tensor / dict / list /
tuple of tensors) that also has ``state_dict()`` and ``load_state_dict(state)``; a plain
``torch.utils.data.DataLoader`` or list of batches trains too, with resume off and no checkpoint
(``attnkit.training.plain_data``). Semantics the trainer relies on:

- ``iter(train_data)`` continues from the current position; when an iterator is exhausted the trainer
  calls ``iter`` again for the next pass (epoch), so a finite source is cycled.
- ``state_dict()``, called between two ``next()`` calls of the live iterator, describes the position just
  after the last batch handed out; after ``load_state_dict(state)`` a new ``iter(train_data)`` yields
  exactly the batches that would have followed. The state should be JSON-serialisable (plain ints, lists,
  strings; RNG states as lists), else tensors/lists/dicts only (stored with torch.save, read with
  ``weights_only=True``).

The loop, per step: 1 batch, 2 forward/loss, 3 backward, 4 clip, 5 optimiser step, 6 schedule, 7 log,
8 evaluate / checkpoint / stop. Numerical safety (``attnkit.training.numerics``): a step whose loss (on any
rank) or gradient norm is not finite makes no update and is counted (``TrainResult.skipped_steps``, a
``"skip"`` log record); more than ``config.max_skipped_steps`` end the run (``stop_reason="non_finite"``).
Under ``torchrun`` every rank reads the same stream of global batches and trains on its rows of each
(``attnkit.training.rank_split``; ``global_batch_size`` makes the stream's batch size b x N), and each
rank's loss is weighted by its share of the items (``stats["total"]``) before DDP averages the gradients,
so N processes with b rows each take exactly the steps of one process with batch N*b, the ragged last
batch of an epoch included. Files in ``out_dir``: ``train_log.jsonl`` (one JSON object per line),
``checkpoint/`` (resumable, see ``attnkit.training.checkpoint``), ``model/`` (the best model so far, or the
final one without ``evaluate``; ``attnkit.load`` reads it). Only rank 0 writes files.

Time budget: ``config.time_budget`` holds for the whole run, its last evaluation and checkpoint included,
counted from ``Trainer(..., started=)`` (default: the start of ``fit``) and summed over resumed runs; the
trainer measures a step, an evaluation and the saving after it, and stops when one more step would leave
too little time for them (``attnkit.training.budget``; rank 0 decides, every rank follows).

Determinism: a fresh run seeds python, numpy and torch with ``config.seed``; evaluation runs on a saved
copy of the RNG state which is put back afterwards, so how often one evaluates never changes the training
trajectory; ``resume=True`` restores weights, optimiser, scheduler, RNG states and the data position, so
N steps + resume to 2N ends with the same weights as 2N steps in one go.

The loop is ``Trainer.fit``; its steps share a ``RunState`` (``attnkit.training.run_state``). A typical call
(``Trainer``'s docstring has a runnable example)::

    config = TrainConfig(steps=2000, lr=3e-3, schedule="cosine", warmup_steps=100, eval_every=200,
                         metric="exact_match", mode="max", patience=5, out_dir="runs/dates")
    result = Trainer(model, config, batches, evaluate=lambda m: {"exact_match": exact(m)}).fit()
    result.best_metric, result.steps
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from attnkit.errors import CheckpointError
from attnkit.models.base import KitModel
from attnkit.storage import WEIGHTS_FILE, atomic_write_text, read_model_config, recover_directory
from attnkit.training.budget import TimeBudget
from attnkit.training.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from attnkit.training.config import TrainConfig, TrainResult
from attnkit.training.numerics import autocast, grad_norm, rank_weight
from attnkit.training.optim import StepModule, build_optimizer
from attnkit.training.plain_data import RESUME_OFF_NOTE, PlainBatches, is_resumable
from attnkit.training.progress import TrainProgress
from attnkit.training.rank_split import RankPart, shard_for_rank
from attnkit.training.run_state import LOG_FILE, RunState, append_log, trim_log
from attnkit.training.runtime import (
    Runtime,
    all_reduce_sum,
    barrier,
    broadcast_best,
    broadcast_flag,
    get_rng_state,
    move_to,
    seed_everything,
    set_rng_state,
    setup_runtime,
    wrap_for_training,
)
from attnkit.training.schedules import make_schedule

CHECKPOINT_DIR = "checkpoint"
MODEL_DIR = "model"


def has_model(directory: Path) -> bool:
    """True if ``directory`` holds a saved model (config and weights).

    Example:
        >>> has_model(Path("/no/such/dir"))
        False
    """
    return (directory / "config.json").is_file() and (directory / WEIGHTS_FILE).is_file()


class Trainer:
    """Train ``model`` on ``train_data`` with ``config``; see the module docstring for the contract.

    ``fit`` is a flat loop over named steps that share one :class:`RunState`: ``_start`` (fresh or from
    the checkpoint), then per step ``_train_step`` (batch, forward, backward, clip, optimiser, schedule),
    ``_log_window``, ``_maybe_evaluate`` (evaluate, keep the best, checkpoint, decide to stop), and
    ``_finish`` (last checkpoint, final model, best weights back, stop record).

    Args:
        model: a ``KitModel`` with ``training_step(batch) -> (loss, stats)``.
        config: a ``TrainConfig``.
        train_data: iterable of batches with ``state_dict()`` / ``load_state_dict()`` (resumable), or a plain
            ``torch.utils.data.DataLoader`` / list of batches: it trains the same, but resume is off and no
            checkpoint is written (a one-line warning says so; ``attnkit.training.plain_data``).
        evaluate: ``evaluate(model) -> {"name": value, ...}``, called in eval mode under ``torch.no_grad``
            every ``config.eval_every`` steps and at the end; must contain ``config.metric``.
        started: ``time.perf_counter()`` when ``config.time_budget`` began (the CLI: when the command started,
            so reading the data counts); None: when ``fit`` starts. The trainer ends the run early enough that
            its last evaluation and checkpoint fit in the budget too (``attnkit.training.budget``).

    Example (any module with ``training_step`` trains; ``out_dir=None`` writes nothing):
        >>> import torch
        >>> class Regression(torch.nn.Module):
        ...     config = None                              # a KitModel has its config dataclass here
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.linear = torch.nn.Linear(3, 1)
        ...     def training_step(self, batch):
        ...         x, y = batch                           # (B, 3), (B,)
        ...         return torch.nn.functional.mse_loss(self.linear(x).squeeze(-1), y), {}
        >>> class Stream(list):                            # resumable: state_dict / load_state_dict
        ...     def state_dict(self): return {}
        ...     def load_state_dict(self, state): pass
        >>> x = torch.randn(8, 3)
        >>> config = TrainConfig(steps=4, lr=0.1, eval_every=2, progress=False, device="cpu")
        >>> result = Trainer(Regression(), config, Stream([(x, x.sum(-1))]),
        ...                  evaluate=lambda m: {"loss": 1.0}).fit()
        >>> result.steps, result.best_step, result.stop_reason, len(result.history)
        (4, 2, 'steps', 2)
    """

    def __init__(self, model: KitModel, config: TrainConfig, train_data: Iterable[Any],
                 evaluate: Callable[[KitModel], dict[str, float]] | None = None,
                 started: float | None = None) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig. Received: {type(config).__name__}")
        if not callable(getattr(model, "training_step", None)):
            raise TypeError(f"model must implement training_step(batch) -> (loss, stats). "
                            f"Received: {type(model).__name__} without it")
        if not is_resumable(train_data):  # a DataLoader, a list of batches: trains, without resume
            if not isinstance(train_data, PlainBatches):
                name = type(train_data).__name__
                train_data = PlainBatches(train_data)
                warnings.warn(RESUME_OFF_NOTE.format(name=name), UserWarning, stacklevel=2)
        self.model = model
        self.config = config
        self.train_data = train_data
        self.evaluate = evaluate
        self.started = started
        self.runtime: Runtime | None = None

    # -- paths and files ------------------------------------------------------------------------------
    @property
    def out_dir(self) -> Path | None:
        """``config.out_dir`` as a path, or None (write nothing)."""
        return Path(self.config.out_dir) if self.config.out_dir else None

    @property
    def _writes(self) -> bool:
        """True in the process that writes files: rank 0, with an ``out_dir``."""
        return self.out_dir is not None and self.runtime is not None and self.runtime.is_main

    @property
    def _checkpoint_dir(self) -> Path | None:
        """``out_dir/checkpoint``, or None: nothing to write, or a source that cannot resume (no checkpoint)."""
        if self.out_dir is None or not is_resumable(self.train_data):
            return None
        return self.out_dir / CHECKPOINT_DIR

    def _write_log(self, record: dict[str, Any]) -> None:
        if self._writes:
            append_log(self.out_dir, record)  # type: ignore[arg-type]

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
        """The batches of ``data`` pass after pass (a finite source is cycled).

        One empty pass is allowed: a source resumed at the very end of an epoch has nothing left in it.
        """
        empty_passes = 0
        while True:
            empty = True
            for batch in data:
                empty = False
                yield batch
            empty_passes = empty_passes + 1 if empty else 0
            if empty_passes >= 2:
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

        Returns:
            A ``TrainResult`` (steps, best metric and step, history, elapsed seconds, stop reason, ...).
        """
        run = self._start(self.config.resume if resume is None else resume, stop_at)  # 0. set up
        with run.progress:
            while run.step < run.end and run.stop_reason is None:
                loss, stats, real = self._train_step(run)  # 1-6. batch, forward, backward, clip, update, schedule
                self._log_window(run, loss, stats, real)    # 7. log the averages of the window
                self._maybe_evaluate(run)             # 8. evaluate, keep the best, checkpoint, stop?
        return self._finish(run)                      # 9. last checkpoint, final model, best weights back

    def _start(self, resume: bool, stop_at: int | None) -> RunState:
        """Step 0: runtime, model on its device, optimiser, schedule, data shard; then resume or seed."""
        cfg, model = self.config, self.model
        if stop_at is not None and not (isinstance(stop_at, int) and 1 <= stop_at <= cfg.steps):
            raise ValueError(f"stop_at must be an int in [1, config.steps={cfg.steps}]. Received: {stop_at!r}")
        rt = self.runtime = setup_runtime(cfg.device)
        model.to(rt.device)
        model.train()
        run = RunState(end=cfg.steps if stop_at is None else stop_at)
        run.step_module = wrap_for_training(StepModule(model), rt)
        if cfg.compile:  # torch.compile the step; warns and runs eagerly where compilation fails
            from attnkit.training.compile import compile_model
            run.step_module = compile_model(run.step_module)
        run.optimizer = build_optimizer(model, cfg)
        d_model = cfg.d_model if cfg.d_model is not None else getattr(model.config, "d_model", None)
        factor = make_schedule(cfg.schedule, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
                               d_model=d_model, min_ratio=cfg.min_lr_ratio)
        run.scheduler = LambdaLR(run.optimizer, lambda done: factor(done + 1))  # done = updates so far
        run.data = shard_for_rank(self.train_data, rt)  # rank r takes its rows of every global batch
        if not (resume and self._resume(run)):
            seed_everything(cfg.seed)
        run.start = run.window_start = time.perf_counter()
        if cfg.time_budget is not None:
            run.budget = TimeBudget(cfg.time_budget, run.start if self.started is None else self.started, run.spent)
            if self._writes:
                run.budget.estimate_saving(model)
        run.batches = self._batches(run.data)
        run.progress = TrainProgress(cfg.steps, enabled=cfg.progress and rt.is_main, completed=run.step)
        if run.resumed_from is None:
            if self._writes and (self.out_dir / LOG_FILE).exists():  # type: ignore[operator]
                atomic_write_text(self.out_dir / LOG_FILE, "")  # type: ignore[operator]  # a fresh log
            self._write_log({"event": "start", "step": 0, "train_config": asdict(cfg),
                             "world_size": rt.world_size})
        else:
            self._write_log({"event": "resume", "step": run.step})
        return run

    def _resume(self, run: RunState) -> bool:
        """Load ``out_dir/checkpoint`` into the model, optimiser, scheduler, data, RNGs and ``run``.

        Returns False (nothing loaded) when there is no checkpoint yet.
        """
        rt, ckpt_dir = self.runtime, self._checkpoint_dir
        assert rt is not None
        if ckpt_dir is None:
            return False
        if rt.is_main:
            recover_directory(ckpt_dir)  # a kill between the two renames of a save
        barrier(rt)
        if not has_checkpoint(ckpt_dir):
            return False
        ckpt = load_checkpoint(ckpt_dir)
        ckpt.load_model_weights(self.model)
        try:
            run.optimizer.load_state_dict(ckpt.optimizer)
            if ckpt.state.get("scheduler") is not None:
                run.scheduler.load_state_dict(ckpt.state["scheduler"])
        except (ValueError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"optimiser/scheduler state in {ckpt_dir} does not fit this model: {err}") from err
        try:
            run.data.load_state_dict(ckpt.data_state)
        except ValueError as err:
            raise CheckpointError(f"the data position in {ckpt_dir} does not fit this run's data: {err}. The batch "
                                  f"size of a run is --batch-size times the number of processes: resume with the "
                                  f"same product (e.g. 1 x 32 for a run of 2 x 16)") from err
        set_rng_state(ckpt.rng_json, ckpt.rng_tensors)
        run.restore(ckpt.state, ckpt.step)
        if rt.is_main:
            trim_log(self.out_dir, run.step)  # type: ignore[arg-type]
        return True

    def _train_step(self, run: RunState) -> tuple[torch.Tensor, dict[str, Any], bool]:
        """Steps 1-6 of one optimiser step; returns the loss, the model's stats and False for a stand-in row.

        A non-finite loss (on any rank) or gradient norm skips the update (counted in ``run.skipped``; the
        batch is used up, the schedule moves on); past ``config.max_skipped_steps`` skips the run stops.
        """
        cfg, rt = self.config, self.runtime
        assert rt is not None
        began = time.perf_counter()
        # 1. batch: this rank's rows of the next global batch, on the device
        part: RankPart = next(run.batches)
        batch = move_to(part.batch, rt.device)
        # 2. forward and loss (bfloat16 autocast when configured)
        with autocast(cfg.autocast, rt.device):
            loss, stats = run.step_module(batch)
        # 3. backward, each rank's loss weighted by its share of the items (DDP averages the gradients)
        finite, weight = rank_weight(loss, stats, rt, part.real)
        run.optimizer.zero_grad(set_to_none=True)
        (loss * weight if weight != 1.0 else loss).backward()
        # 4. global gradient norm, clipped to clip_norm (the norm logged is the one before clipping)
        run.grad_norm = grad_norm(self.model.parameters(), cfg.clip_norm)
        # 5. optimiser step, unless the loss or the gradient is not finite
        if finite and math.isfinite(run.grad_norm):
            run.optimizer.step()
        else:
            self._skip(run, loss)
        # 6. schedule: lr for the next update
        run.lr = run.optimizer.param_groups[0]["lr"]
        run.scheduler.step()
        run.step += 1
        if run.budget is not None:
            run.budget.step_took(time.perf_counter() - began)
        return loss, stats, part.real

    def _skip(self, run: RunState, loss: torch.Tensor) -> None:
        """Count a step with a non-finite loss or gradient (no update); stop after too many."""
        run.optimizer.zero_grad(set_to_none=True)
        run.skipped += 1
        self._write_log({"event": "skip", "step": run.step + 1, "loss": float(loss.detach()),
                         "grad_norm": run.grad_norm, "skipped": run.skipped})
        if run.skipped > self.config.max_skipped_steps:
            run.stop_reason = "non_finite"

    def _log_window(self, run: RunState, loss: torch.Tensor, stats: dict[str, Any], real: bool = True) -> None:
        """Step 7: add the step to the window (not a stand-in row's, ``real`` False); every ``log_every``
        steps write its averages over ranks."""
        value = float(loss.detach())
        if real and math.isfinite(value):  # a skipped step (non-finite loss) is reported by its own record
            run.add_to_window(value, stats)
        run.progress.advance()
        if run.step % self.config.log_every != 0 and run.step != run.end:
            return
        now = time.perf_counter()
        w = all_reduce_sum(run.window, self.runtime)  # type: ignore[arg-type]
        run.final_loss = w["loss"] / max(1.0, w["steps"])
        record = {"event": "train", "step": run.step, "loss": run.final_loss, "lr": run.lr,
                  "elapsed": round(run.elapsed(now), 3)}
        if w["total"] > 0:
            record["accuracy"] = w["correct"] / w["total"]
        if w["tokens"] > 0:
            record["tokens_per_s"] = w["tokens"] / max(1e-9, now - run.window_start)
        if run.grad_norm is not None:
            record["grad_norm"] = run.grad_norm
        if run.skipped:
            record["skipped"] = run.skipped
        self._write_log(record)
        run.progress.show(record)
        run.reset_window(now)

    def _maybe_evaluate(self, run: RunState) -> None:
        """Step 8: on eval steps and the last one evaluate, keep the best and checkpoint; set a stop reason.

        Every rank takes the same decisions: the time budget and early stopping are rank 0's, broadcast. The
        budget stops the run when one more step would leave too little time for this last evaluation and
        checkpoint (their cost is measured each time they run).
        """
        cfg, rt = self.config, self.runtime
        assert rt is not None
        over_time = run.budget is not None and broadcast_flag(run.budget.out_of_time(), rt)
        if run.step % cfg.eval_every == 0 or run.step >= run.end or over_time:
            paused = time.perf_counter()
            stop_early = False
            if self.evaluate is not None and rt.is_main:
                stop_early = self._evaluate_and_keep_best(run)
            stop_early = broadcast_flag(stop_early, rt)
            evaluated = time.perf_counter()
            self._checkpoint(run)
            now = time.perf_counter()
            if run.budget is not None:
                run.budget.ended(evaluation=evaluated - paused, saving=now - evaluated)
            run.window_start += now - paused  # tokens/s counts training time only
            if stop_early:
                run.stop_reason = "early_stopping"
                return
        if over_time and run.stop_reason is None:
            run.stop_reason = "time_budget"

    def _evaluate_and_keep_best(self, run: RunState) -> bool:
        """Evaluate (rank 0), save the model when it improved; returns True when patience has run out."""
        cfg = self.config
        metrics = self._run_evaluate()
        improved = run.is_better(metrics[cfg.metric], cfg.mode, cfg.min_delta)
        if improved:
            run.best, run.best_step, run.bad_evals = metrics[cfg.metric], run.step, 0
            if self.out_dir is not None:
                self.model.save(self.out_dir / MODEL_DIR)
            if cfg.restore_best:
                run.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            run.bad_evals += 1
        entry = {"step": run.step, **metrics}
        if run.final_loss is not None:
            entry["train_loss"] = run.final_loss
        run.history.append(entry)
        self._write_log({"event": "eval", "improved": improved, **entry})
        run.progress.show_eval(metrics, cfg.metric, run.best)
        return cfg.patience is not None and run.bad_evals >= cfg.patience

    def _checkpoint(self, run: RunState) -> None:
        """Write ``out_dir/checkpoint`` (rank 0, atomically), then wait for every rank."""
        ckpt_dir = self._checkpoint_dir
        assert self.runtime is not None
        if ckpt_dir is not None and self.runtime.is_main:
            save_checkpoint(ckpt_dir, self.model, run.optimizer, run.scheduler,
                            run.trainer_state(asdict(self.config)), run.data.state_dict(),
                            keep=self.config.keep_checkpoints)
        barrier(self.runtime)
        run.last_saved = run.step

    def _finish(self, run: RunState) -> TrainResult:
        """Step 9: checkpoint if needed, save the final model (no ``evaluate``), put the best weights back."""
        cfg, rt, out = self.config, self.runtime, self.out_dir
        assert rt is not None
        if run.stop_reason is None:
            run.stop_reason = "steps" if run.step >= cfg.steps else "stop_at"
        if run.last_saved != run.step:
            self._checkpoint(run)
        elapsed = run.elapsed()
        if self.evaluate is None and out is not None and rt.is_main:
            self.model.save(out / MODEL_DIR)
        if cfg.restore_best and run.best_step is not None and run.best_step != run.step:
            if run.best_state is not None:
                self.model.load_state_dict(run.best_state)
            elif rt.is_main and out is not None and has_model(out / MODEL_DIR):  # best from an earlier run
                meta = read_model_config(out / MODEL_DIR)
                self.model.load_weights(out / MODEL_DIR / WEIGHTS_FILE, tied=meta.get("tied") or {})
        self._write_log({"event": "stop", "step": run.step, "reason": run.stop_reason,
                         "elapsed": round(elapsed, 3), "best": run.best, "best_step": run.best_step,
                         "skipped": run.skipped})
        best, best_step = broadcast_best(run.best, run.best_step, rt)  # rank 0 evaluated: every rank reports it
        return TrainResult(steps=run.step, best_metric=best, best_step=best_step, history=run.history,
                           elapsed=elapsed, stop_reason=run.stop_reason, final_loss=run.final_loss,
                           resumed_from=run.resumed_from, skipped_steps=run.skipped)
