"""What every training recipe returns: a run whose inputs are all checked and nothing written yet.

A recipe (``prepare_seq2seq``, ``prepare_gpt``, ...) reads the data, builds or resumes the model and
returns a ``PreparedRun``; the caller (the CLI) prints ``summary``, writes its own files, then calls
``fit()``. So every input problem is reported before the first byte is written.

``--time-budget`` holds for the whole run: ``BudgetGuard`` measures what an evaluation, the saving after it
and one step cost, and ends training early enough that the last evaluation and checkpoint still fit.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch

from attnkit.errors import InputError
from attnkit.training.trainer import TrainConfig, Trainer, TrainResult

Log = Callable[[str], None]
"""Where a recipe reports progress lines (``print``, a rich console's ``print``, or ``no_log``)."""

STOP_NOW = 1e-9
"""The ``time_budget`` the guard gives the trainer to make it stop after the current step."""
FIRST_RESERVE = 0.25
"""Share of the budget kept for the last evaluation and saving until an evaluation has been timed."""


def no_log(message: str) -> None:
    """A ``Log`` that drops every message.

    Example:
        >>> no_log("nothing is printed")
    """


@dataclass
class PreparedRun:
    """A model, its data and its ``TrainConfig``, checked and ready; ``fit()`` trains.

    Attributes:
        model: the model to train (fresh, or resumed from ``config.out_dir/checkpoint``).
        config: the trainer's settings (``metric`` / ``mode`` set by the recipe).
        stream: the training batches (a resumable stream).
        evaluate: ``model -> {metric: value}`` run at each evaluation, or None.
        summary: one line describing the model and the data, for the user.
        best_line: ``result -> text`` describing the best evaluation for the closing line (None: the
            caller's default).
        started: ``time.perf_counter()`` when the run began (the CLI: when the command started), so that
            ``config.time_budget`` counts reading the data too; None: when ``fit()`` is called.

    Example:
        >>> from attnkit.training import TrainConfig
        >>> run = PreparedRun(model=None, config=TrainConfig(steps=2), stream=iter([]), evaluate=None,
        ...                   summary="training nothing")
        >>> run.summary, run.config.steps
        ('training nothing', 2)
    """

    model: Any
    config: TrainConfig
    stream: Any
    evaluate: Callable[[Any], dict[str, float]] | None
    summary: str
    best_line: Callable[[TrainResult], str | None] | None = None
    started: float | None = None

    def fit(self) -> TrainResult:
        """Train with ``attnkit.training.Trainer``; returns its ``TrainResult``.

        With ``config.time_budget`` (one process) a ``BudgetGuard`` ends training early enough that the
        whole run, last evaluation and saving included, fits in the budget.
        """
        config, stream, evaluate = self.config, self.stream, self.evaluate
        if config.time_budget is not None and int(os.environ.get("WORLD_SIZE", "1")) == 1:
            config = replace(config)  # the guard lowers this copy's time_budget to stop the trainer
            guard = BudgetGuard(config, self.started)
            guard.time_saving(self.model)
            stream, evaluate = guard.wrap_stream(stream), guard.wrap_evaluate(evaluate)
        return Trainer(self.model, config, stream, evaluate=evaluate).fit()


class BudgetGuard:
    """Ends training so that the whole run fits in ``config.time_budget`` seconds.

    The trainer checks its budget after each step and then evaluates and checkpoints once more, so a
    budget alone is overrun by an evaluation and a save. The guard measures the cost of a step (between
    two batches), of an evaluation (the slowest so far) and of the saving that follows it; before handing
    out a batch it checks ``now + step + reserve`` against the deadline, where ``reserve`` is 1.1 times the
    slowest evaluation plus the saving (``FIRST_RESERVE`` of the budget until an evaluation has been
    timed), and when that passes it sets the trainer's ``time_budget`` to ``STOP_NOW`` so the trainer
    stops after this step.

    Args:
        config: the ``TrainConfig`` the trainer will read (its ``time_budget`` is changed in place).
        started: ``time.perf_counter()`` when the budget began (None: now).

    Example:
        >>> guard = BudgetGuard(TrainConfig(time_budget=10.0), started=time.perf_counter() - 8.0)
        >>> guard.before_step()                      # 8 s spent of 10 s, 2.5 s kept: stop after this step
        >>> guard.config.time_budget == STOP_NOW
        True
    """

    def __init__(self, config: TrainConfig, started: float | None = None) -> None:
        self.config = config
        self.deadline = (time.perf_counter() if started is None else started) + float(config.time_budget or 0.0)
        self.budget = float(config.time_budget or 0.0)
        self.step_cost = self.eval_cost = self.save_cost = 0.0
        self.evaluated = False  # an evaluation has been timed
        self._last: float | None = None  # when the last batch was handed out
        self._eval_end: float | None = None  # when the last evaluation ended (its saving follows)

    def time_saving(self, model: Any) -> None:
        """Estimate the saving after an evaluation from one in-memory save of the weights."""
        start = time.perf_counter()
        torch.save(model.state_dict(), io.BytesIO())
        self.save_cost = 4 * (time.perf_counter() - start)  # model + checkpoint (weights, two Adam moments)

    def before_step(self) -> None:
        """Measure the last step (or the saving after an evaluation); stop the trainer if time runs out."""
        now = time.perf_counter()
        if self._eval_end is not None:
            self.save_cost = max(self.save_cost, now - self._eval_end)
            self._eval_end = None
        elif self._last is not None:
            step = now - self._last
            self.step_cost = step if self.step_cost == 0.0 else 0.8 * self.step_cost + 0.2 * step
        self._last = now
        if self.evaluated:
            reserve = 1.1 * self.eval_cost + self.save_cost
        else:
            reserve = max(FIRST_RESERVE * self.budget, self.save_cost)
        if now + self.step_cost + reserve >= self.deadline:
            self.config.time_budget = STOP_NOW

    def wrap_stream(self, stream: Any) -> Any:
        """``stream`` with ``before_step`` called as each batch is handed out."""
        return _GuardedStream(stream, self)

    def wrap_evaluate(self, evaluate: Callable[[Any], dict[str, float]] | None) -> Any:
        """``evaluate`` timed (the slowest evaluation so far is the one reserved for the end)."""
        if evaluate is None:
            return None

        def timed(model: Any) -> dict[str, float]:
            start = time.perf_counter()
            try:
                return evaluate(model)
            finally:
                self._eval_end = time.perf_counter()
                self.eval_cost, self.evaluated = max(self.eval_cost, self._eval_end - start), True
                self._last = None  # the next interval is not a step

        return timed


class _GuardedStream:
    """A resumable batch stream that calls ``guard.before_step()`` before each batch it hands out."""

    def __init__(self, stream: Any, guard: BudgetGuard) -> None:
        self.stream, self.guard = stream, guard

    def __iter__(self) -> Iterator[Any]:
        for batch in self.stream:
            self.guard.before_step()
            yield batch

    def state_dict(self) -> Any:
        return self.stream.state_dict()

    def load_state_dict(self, state: Any) -> None:
        self.stream.load_state_dict(state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def check_choice(flag: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """``InputError`` "FLAG must be one of ... Received: ..." unless ``value`` is in ``allowed``.

    Example:
        >>> check_choice("--cell", "rnn", ("gru", "lstm"))
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --cell must be one of gru, lstm. Received: 'rnn'
    """
    if value not in allowed:
        raise InputError(f"{flag} must be one of {', '.join(map(str, allowed))}. Received: {value!r}")
