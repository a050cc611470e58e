"""The trainer's progress: a live rich bar on a terminal, one-line records everywhere else.

On a terminal: steps, elapsed time, ETA and a status line of training numbers (loss, accuracy, tokens/s,
learning rate, the last evaluation). When the console is not a terminal (a log file, a pipe, CI), a live
bar would show nothing until the end, so ``TrainProgress`` prints a plain record every ``every`` seconds
(default ``RECORD_EVERY``, or the ``ATTNKIT_PROGRESS_EVERY`` environment variable), one per evaluation
and one at the end::

    train 400/2000 (20%)  elapsed 0:00:31  eta 0:02:04  loss 1.2345  acc 55.0%  12,345 tok/s  lr 1.00e-03
    eval step 400: exact_match 0.9120 (best 0.9120)

Disabled (a no-op) when ``enabled=False`` (non-main ranks, ``TrainConfig.progress=False``).

Example:
    >>> with TrainProgress(total=3, enabled=False) as bar:     # enabled=True draws it on stderr
    ...     for step in range(3):
    ...         bar.advance()
    ...         bar.show({"loss": 0.5, "accuracy": 0.9, "tokens_per_s": 1e4, "lr": 1e-3})
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

RECORD_EVERY = 15.0
"""Seconds between two progress records when the console is not a terminal."""


def clock(seconds: float) -> str:
    """``H:MM:SS`` of a number of seconds (negative counts as 0).

    Example:
        >>> clock(3725.4)
        '1:02:05'
    """
    s = max(0, round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def status_text(record: dict[str, Any]) -> str:
    """The training numbers of a log record (keys loss, accuracy, tokens_per_s, lr; missing ones skipped).

    Example:
        >>> status_text({"loss": 0.5, "accuracy": 0.25, "lr": 1e-3})
        'loss 0.5000  acc 25.0%  lr 1.00e-03'
    """
    parts = [f"loss {record['loss']:.4f}"] if "loss" in record else []
    if "accuracy" in record:
        parts.append(f"acc {100 * record['accuracy']:.1f}%")
    if "tokens_per_s" in record:
        parts.append(f"{record['tokens_per_s']:,.0f} tok/s")
    if "lr" in record:
        parts.append(f"lr {record['lr']:.2e}")
    return "  ".join(parts)


class TrainProgress:
    """A rich progress bar with an ETA and a status line, or periodic one-line records; a no-op when disabled.

    Args:
        total: steps to reach.
        enabled: show progress (only on rank 0 and when asked).
        completed: steps already done (a resumed run).
        console: where to show it (default: rich's stderr console); a console that is not a terminal gets
            records.
        every: seconds between records (default: ``ATTNKIT_PROGRESS_EVERY`` or ``RECORD_EVERY``).
        now: the clock (``time.perf_counter``; tests pass their own).

    Example (records on a console that is not a terminal):
        >>> import io
        >>> from rich.console import Console
        >>> ticks = iter(range(100))
        >>> bar = TrainProgress(4, console=Console(file=io.StringIO()), every=2.0, now=lambda: float(next(ticks)))
        >>> with bar:
        ...     for _ in range(4):
        ...         bar.advance()
        >>> print(bar.console.file.getvalue().strip())
        train 2/4 (50%)  elapsed 0:00:02  eta 0:00:02
        train 4/4 (100%)  elapsed 0:00:04  eta 0:00:00
    """

    def __init__(self, total: int, enabled: bool = True, completed: int = 0, console: Console | None = None,
                 every: float | None = None, now: Callable[[], float] = time.perf_counter) -> None:
        self.enabled, self.total, self.done, self._first = enabled, total, completed, completed
        self.console = console or Console(stderr=True)
        self.records = enabled and not self.console.is_terminal
        self.every = float(os.environ.get("ATTNKIT_PROGRESS_EVERY", RECORD_EVERY)) if every is None else every
        self._now = now
        self._status = self._eval = ""
        self._start = self._next = 0.0
        self._recorded = -1  # the step count of the last record
        self._progress: Progress | None = None
        if enabled and not self.records:
            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                console=self.console, transient=False)
            self._task = self._progress.add_task("train", total=total, completed=completed, status="")

    def __enter__(self) -> TrainProgress:
        self._start = self._now()
        self._next = self._start + self.every
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
        elif self.records and self._recorded != self.done:  # the closing record, unless just printed
            self._record(self._now())

    def eta(self, now: float) -> float | None:
        """Seconds left at the pace of this run so far (None before the first step)."""
        done = self.done - self._first
        return None if done <= 0 else (now - self._start) / done * max(0, self.total - self.done)

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more steps (and print a record when one is due)."""
        self.done += n
        if self._progress is not None:
            self._progress.advance(self._task, n)
        elif self.records:
            now = self._now()
            if now >= self._next:
                self._record(now)
                self._next = now + self.every

    def _record(self, now: float) -> None:
        self._recorded = self.done
        eta = self.eta(now)
        line = (f"train {self.done}/{self.total} ({100 * self.done / max(1, self.total):.0f}%)  "
                f"elapsed {clock(now - self._start)}  eta {'?' if eta is None else clock(eta)}")
        self.console.print(f"{line}  {self._status}".rstrip(), markup=False, highlight=False, soft_wrap=True)

    def show(self, record: dict[str, Any]) -> None:
        """Show the latest training numbers (keys: loss, accuracy, tokens_per_s, lr; missing ones skipped)."""
        if not self.enabled:
            return
        self._status = status_text(record)
        if self._progress is not None:
            self._progress.update(self._task, status=f"{self._status}  {self._eval}".strip())

    def show_eval(self, metrics: dict[str, float], metric: str, best: float | None) -> None:
        """Show the last evaluation's chosen metric and the best so far (a record of its own off a terminal)."""
        if not self.enabled:
            return
        value = metrics.get(metric)
        text = f"{metric} {value:.4g}" + (f" (best {best:.4g})" if best is not None else "")
        if self._progress is not None:
            self._eval = f"| {text}"
            self._progress.update(self._task, status=f"{self._status}  {self._eval}".strip())
        else:
            others = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k != metric)
            self.console.print(f"eval step {self.done}: {text}  {others}".rstrip(), markup=False, highlight=False,
                               soft_wrap=True)
