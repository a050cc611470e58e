"""The trainer's time budget: the whole run, its last evaluation and checkpoint included, fits in it.

A budget checked only against the time already spent is overrun by what comes after the last step: one
more evaluation and the checkpoint after it. ``TimeBudget`` measures those costs as the run goes: a step
(a running average), an evaluation (the slowest so far) and the saving after it (the slowest so far, at
least an estimate made before the first step). After each step the trainer asks ``out_of_time(now)``:
true when one more step and then the end (``1.1 x evaluation + saving``) would pass the deadline. Until
an evaluation has been timed, ``FIRST_RESERVE`` of the budget is kept for the end instead.

The deadline is ``started + seconds - spent``: ``started`` is when the budget began (the CLI passes the
moment the command started, so reading the data counts), ``spent`` the seconds of earlier runs of a
resumed training.

Example:
    >>> budget = TimeBudget(10.0, started=0.0)
    >>> budget.out_of_time(now=7.0)       # no evaluation timed yet: 2.5 s (a quarter) is kept for the end
    False
    >>> budget.out_of_time(now=7.6)
    True
    >>> budget.step_took(0.5); budget.ended(evaluation=1.0, saving=0.2)
    >>> budget.reserve(), budget.out_of_time(now=8.0), budget.out_of_time(now=8.3)
    (1.3, False, True)
"""

from __future__ import annotations

import io
import time

import torch

FIRST_RESERVE = 0.25
"""Share of the budget kept for the last evaluation and saving until an evaluation has been timed."""
EVAL_MARGIN = 1.1
"""The slowest evaluation so far times this is kept for the last one."""


class TimeBudget:
    """What is left of ``seconds`` of wall-clock time, and whether one more step still fits.

    Args:
        seconds: the budget (``TrainConfig.time_budget``).
        started: ``time.perf_counter()`` when it began (None: now).
        spent: seconds already spent by earlier runs of the same training (resume).
    """

    def __init__(self, seconds: float, started: float | None = None, spent: float = 0.0) -> None:
        self.seconds = float(seconds)
        self.deadline = (time.perf_counter() if started is None else started) + self.seconds - spent
        self.step = self.evaluation = self.saving = 0.0
        self.timed = False  # an evaluation (and the saving after it) has been timed

    def estimate_saving(self, model: torch.nn.Module) -> None:
        """A first estimate of the saving after an evaluation: four in-memory saves of the weights (the model,
        and the checkpoint's weights and two Adam moments)."""
        start = time.perf_counter()
        torch.save(model.state_dict(), io.BytesIO())
        self.saving = max(self.saving, 4 * (time.perf_counter() - start))

    def step_took(self, seconds: float) -> None:
        """Count one training step (a running average: the last steps weigh most)."""
        self.step = seconds if self.step == 0.0 else 0.8 * self.step + 0.2 * seconds

    def ended(self, evaluation: float, saving: float) -> None:
        """Count an evaluation and the saving after it (the slowest of each is kept)."""
        self.evaluation, self.saving, self.timed = max(self.evaluation, evaluation), max(self.saving, saving), True

    def reserve(self) -> float:
        """Seconds kept for the end of the run: the last evaluation and the saving after it."""
        if self.timed:
            return round(EVAL_MARGIN * self.evaluation + self.saving, 9)
        return max(FIRST_RESERVE * self.seconds, self.saving)

    def out_of_time(self, now: float | None = None) -> bool:
        """True when one more step and the end of the run would pass the deadline."""
        now = time.perf_counter() if now is None else now
        return now + self.step + self.reserve() >= self.deadline


__all__ = ["EVAL_MARGIN", "FIRST_RESERVE", "TimeBudget"]
