"""What every training recipe returns: a run whose inputs are all checked and nothing written yet.

A recipe (``prepare_seq2seq``, ``prepare_gpt``, ...) reads the data, builds or resumes the model and
returns a ``PreparedRun``; the caller (the CLI) prints ``summary``, writes its own files, then calls
``fit()``. So every input problem is reported before the first byte is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from attnkit.errors import InputError
from attnkit.training.trainer import TrainConfig, Trainer, TrainResult

Log = Callable[[str], None]
"""Where a recipe reports progress lines (``print``, a rich console's ``print``, or ``no_log``)."""


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
            ``config.time_budget`` counts reading the data too; None: when training starts.

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
        """Train with ``attnkit.training.Trainer`` (the budget counted from ``started``); its ``TrainResult``."""
        return Trainer(self.model, self.config, self.stream, evaluate=self.evaluate, started=self.started).fit()


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
