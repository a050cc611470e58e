"""Attention and alignment heatmaps in the terminal (rich), with token labels on rows and columns.

Rows are queries (output / target tokens), columns are keys (input / source tokens): the matrix
``weights[i, j]`` = how much output token ``i`` attended to input token ``j``, shape ``(Tq, Tk)``.
Each cell is two shade characters ``' ░▒▓█'`` chosen by the value (so the picture survives without
colour, e.g. piped to a file) coloured along a viridis-like ramp. When a column label is longer than a
cell (words rather than characters), the columns are numbered and a key under the table names them
(``columns: 0 uno · 1 dos · 2 tres``), so words are read as words, not one letter per line.

Example:
    >>> w = [[0.9, 0.1, 0.0], [0.0, 0.3, 0.7]]
    >>> print(heatmap_text(w, row_labels=["2", "1"], col_labels=["a", "b", "c"]))  # doctest: +NORMALIZE_WHITESPACE
       a b c
    2 │██
    1 │  ░░▓▓

``print_heatmap(w, ["2", "1"], ["uno", "dos", "tres"], title="alignment")`` draws it in colour, with
numbered columns and their key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from attnkit.viz._checks import as_matrix, labels_for, value_range

SHADES = " ░▒▓█"
"""Shade characters from lowest to highest value; value v in [lo, hi] picks SHADES[round(4 * (v - lo) / (hi - lo))]."""

# Viridis anchor colours (matplotlib's viridis at 0, .25, .5, .75, 1), interpolated linearly.
_RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)
_MAX_LABEL = 12


def shade_index(value: float, lo: float, hi: float) -> int:
    """Index into ``SHADES`` for ``value`` on the range ``[lo, hi]`` (clamped)."""
    x = min(1.0, max(0.0, (value - lo) / (hi - lo)))
    return int(round(x * (len(SHADES) - 1)))


def _colour(x: float) -> str:
    pos = min(1.0, max(0.0, x)) * (len(_RAMP) - 1)
    i = min(int(pos), len(_RAMP) - 2)
    r, g, b = _RAMP[i] + (pos - i) * (_RAMP[i + 1] - _RAMP[i])
    return f"rgb({int(r)},{int(g)},{int(b)})"


def _short(label: str) -> str:
    return label if len(label) <= _MAX_LABEL else label[: _MAX_LABEL - 1] + "…"


def heatmap_table(weights: Any, row_labels: Sequence[Any] | None = None, col_labels: Sequence[Any] | None = None,
                  *, title: str | None = None, show_values: bool = False, vmin: float | None = None,
                  vmax: float | None = None) -> RenderableType:
    """A rich renderable (the title line, then a ``Table``) drawing ``weights`` ``(Tq, Tk)`` with row labels (``Tq``) and column labels (``Tk``).

    Args:
        weights: tensor / array / nested list ``(Tq, Tk)``, finite.
        row_labels: ``Tq`` tokens (the outputs / queries); default ``0..Tq-1``.
        col_labels: ``Tk`` tokens (the inputs / keys); default ``0..Tk-1``.
        title: shown above the table.
        show_values: write each value as a two-digit percentage (``"87"``, ``"##"`` for 100) instead of shades
            (cells three characters wide).
        vmin, vmax: colour range (default ``[0, 1]`` for weights that lie there, else the data's range).

    Raises:
        ValueError: not 2-D, empty, non-finite, or label counts that differ from the shape.
    """
    m = as_matrix(weights)
    tq, tk = m.shape
    rows = [_short(s) for s in labels_for(row_labels, tq, "row")]
    cols = [_short(s) for s in labels_for(col_labels, tk, "column")]
    lo, hi = value_range(m, vmin, vmax)
    numbered = any(len(c) > (3 if show_values else 2) for c in cols)
    cell = max(3 if show_values else 2, len(str(tk - 1)) if numbered else 0)
    table = Table(show_edge=False, box=None, pad_edge=False, padding=(0, 0), show_lines=False,
                  collapse_padding=True)
    table.add_column("", justify="right", no_wrap=True)
    for j, c in enumerate(cols):
        table.add_column(Text(str(j) if numbered else c), justify="right" if show_values else "center", width=cell,
                         no_wrap=True)
    for label, row in zip(rows, m, strict=True):
        cells: list[Text | str] = [Text(label, style="bold") + Text(" │", style="dim")]
        for v in row:
            x = (v - lo) / (hi - lo)
            if show_values:
                pct = int(round(100 * min(1.0, max(0.0, x))))
                cells.append(Text(" ##" if pct >= 100 else f" {pct:2d}", style=_colour(x)))
            else:
                cells.append(Text(SHADES[shade_index(v, lo, hi)] * cell, style=_colour(x)))
        table.add_row(*cells)
    parts: list[RenderableType] = [Text(title, style="italic")] if title else []  # a title never wraps to the table
    parts.append(table)
    if numbered:
        parts.append(Text("columns: " + " · ".join(f"{j} {c}" for j, c in enumerate(cols)), style="dim"))
    return parts[0] if len(parts) == 1 else Group(*parts)


def print_heatmap(weights: Any, row_labels: Sequence[Any] | None = None, col_labels: Sequence[Any] | None = None,
                  *, title: str | None = None, show_values: bool = False, console: Console | None = None,
                  vmin: float | None = None, vmax: float | None = None) -> None:
    """Print ``heatmap_table(...)`` to ``console`` (default: a new rich console on stdout)."""
    (console or Console()).print(heatmap_table(weights, row_labels, col_labels, title=title,
                                               show_values=show_values, vmin=vmin, vmax=vmax))


def heatmap_text(weights: Any, row_labels: Sequence[Any] | None = None, col_labels: Sequence[Any] | None = None,
                 *, title: str | None = None, show_values: bool = False, width: int = 200,
                 vmin: float | None = None, vmax: float | None = None) -> str:
    """The heatmap as plain text without colour codes (for logs, files and tests)."""
    console = Console(record=True, width=width, color_system=None, file=_Null(), force_terminal=False)
    console.print(heatmap_table(weights, row_labels, col_labels, title=title, show_values=show_values,
                                vmin=vmin, vmax=vmax))
    return console.export_text()


class _Null:
    """A write-only sink (the recorded console's own output is discarded)."""

    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass
