"""The live progress bar of the trainer (rich): steps, loss, accuracy, tokens/s, learning rate, eval metric.

Disabled (a no-op) when ``enabled=False`` (non-main ranks, ``TrainConfig.progress=False``).

Example:
    >>> with TrainProgress(total=3, enabled=False) as bar:     # enabled=True draws it on stderr
    ...     for step in range(3):
    ...         bar.advance()
    ...         bar.show({"loss": 0.5, "accuracy": 0.9, "tokens_per_s": 1e4, "lr": 1e-3})
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)


class TrainProgress:
    """A rich progress bar with a status line of training numbers; a no-op when disabled.

    Args:
        total: steps to reach.
        enabled: draw it (only on rank 0 and when asked).
        completed: steps already done (a resumed run).
        console: where to draw (default: rich's stderr console).
    """

    def __init__(self, total: int, enabled: bool = True, completed: int = 0, console: Console | None = None) -> None:
        self.enabled = enabled
        self._status = ""
        self._eval = ""
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[status]}"),
                console=console or Console(stderr=True), transient=False)
            self._task = self._progress.add_task("train", total=total, completed=completed, status="")

    def __enter__(self) -> TrainProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more steps."""
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def show(self, record: dict[str, Any]) -> None:
        """Show the latest training numbers (keys: loss, accuracy, tokens_per_s, lr; missing ones skipped)."""
        if self._progress is None:
            return
        parts = [f"loss {record['loss']:.4f}"] if "loss" in record else []
        if "accuracy" in record:
            parts.append(f"acc {100 * record['accuracy']:.1f}%")
        if "tokens_per_s" in record:
            parts.append(f"{record['tokens_per_s']:,.0f} tok/s")
        if "lr" in record:
            parts.append(f"lr {record['lr']:.2e}")
        self._status = "  ".join(parts)
        self._progress.update(self._task, status=f"{self._status}  {self._eval}".strip())

    def show_eval(self, metrics: dict[str, float], metric: str, best: float | None) -> None:
        """Show the last evaluation's chosen metric and the best so far."""
        if self._progress is None:
            return
        value = metrics.get(metric)
        self._eval = f"| {metric} {value:.4g}" + (f" (best {best:.4g})" if best is not None else "")
        self._progress.update(self._task, status=f"{self._status}  {self._eval}".strip())
