"""What a benchmark suite hands back: a ``Section`` of tables, the peers it skipped, and its figures.

Every number a suite measured sits in ``Section.figures`` (a flat ``name -> float`` dict), so a smoke
test can check that each one was really measured (finite, positive) without knowing the suite. A peer
that is not installed is listed in ``Section.skipped`` with the reason, and has no figure at all: it is
never reported as zero.

Example:
    >>> s = Section("demo", "A demo")
    >>> s.table("Times", ["case", "ms"], [["a", 1.5]])
    >>> s.figures["a ms"] = 1.5
    >>> s.skip("keras", "keras is not installed")
    >>> print(s.markdown().splitlines()[0])
    ## A demo
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Table:
    """One Markdown table: a title, column names, rows of cells (numbers or text) and notes under it."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """The table as Markdown (floats with 3 significant digits, text as is).

        Example:
            >>> print(Table("T", ["a", "b"], [[1, 0.12345]]).markdown())
            ### T
            <BLANKLINE>
            | a | b |
            |---|---|
            | 1 | 0.123 |
        """
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(format_cell(c) for c in row) + " |" for row in self.rows]
        if self.notes:
            lines += [""] + self.notes
        return "\n".join(lines)


@dataclass
class Section:
    """The result of one suite: tables, skipped peers (with reasons), notes and every measured figure."""

    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # the suite's raw measurements, for the JSON and plots

    def table(self, title: str, columns: list[str], rows: list[list[Any]], notes: list[str] | None = None) -> None:
        """Append a table."""
        self.tables.append(Table(title, columns, rows, list(notes or [])))

    def skip(self, what: str, reason: str) -> None:
        """Record that ``what`` was not measured, and why (printed as ``- skipped: what (reason)``)."""
        self.skipped.append(f"{what} ({reason})")

    def markdown(self) -> str:
        """The section as Markdown: title, skipped peers, the tables, then the notes."""
        parts = [f"## {self.title}"]
        if self.skipped:
            parts.append("\n".join(f"- skipped: {s}" for s in self.skipped))
        parts += [t.markdown() for t in self.tables]
        parts += self.notes
        return "\n\n".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form of the section."""
        return asdict(self)


def format_cell(cell: Any) -> str:
    """Format one table cell: floats to 3 significant digits (no exponent below 1e6), rest with ``str``.

    Example:
        >>> [format_cell(x) for x in (1234.5678, 0.012345, 2, "x", None)]
        ['1235', '0.0123', '2', 'x', '-']
    """
    if cell is None:
        return "-"
    if isinstance(cell, float):
        if not math.isfinite(cell):
            return str(cell)
        if abs(cell) >= 100:
            return f"{cell:.0f}"
        return f"{cell:.3g}"
    return str(cell)


def fit_exponent(lengths: list[float], values: list[float]) -> float:
    """Least-squares slope of ``log(value)`` against ``log(length)``: ``value ~ c * length ** slope``.

    Args:
        lengths: at least two distinct positive lengths.
        values: positive measurements, one per length.

    Returns:
        The fitted exponent (about 2 for a cost quadratic in the length, 1 for a linear one).

    Example:
        >>> round(fit_exponent([128, 256, 512], [1.0, 4.0, 16.0]), 6)
        2.0
    """
    if len(lengths) != len(values) or len(set(lengths)) < 2:
        raise ValueError(f"Expected at least two distinct lengths with one value each. "
                         f"Received: lengths {lengths}, values {values}")
    if min(values) <= 0:
        raise ValueError(f"Expected positive values to fit a power law. Received: {values}")
    xs = [math.log(x) for x in lengths]
    ys = [math.log(y) for y in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
