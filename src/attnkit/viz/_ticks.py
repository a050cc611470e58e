"""Token labels that stay readable on long axes: smaller fonts, rotation, and every k-th label past a limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_LABELS = 64
"""An axis shows at most this many labels; longer token lists show every k-th token (k = ceil(n / 64))."""
MAX_CHARS = 14
"""Labels longer than this are cut with '…'."""


def thin(labels: Sequence[str], max_labels: int = MAX_LABELS) -> tuple[list[int], list[str]]:
    """``(positions, labels)`` to draw: all of them up to ``max_labels``, else every k-th, cut to ``MAX_CHARS``.

    Example:
        >>> thin([f"t{i}" for i in range(200)], 50)[0][:3]
        [0, 4, 8]
    """
    n = len(labels)
    step = max(1, -(-n // max_labels))
    pos = list(range(0, n, step))
    return pos, [_cut(labels[i]) for i in pos]


def _cut(label: str) -> str:
    return label if len(label) <= MAX_CHARS else label[: MAX_CHARS - 1] + "…"


def font_size(n_shown: int) -> float:
    """Tick font size (points) for ``n_shown`` labels: 10 for a few, down to 5 for many."""
    return max(5.0, min(10.0, 10.0 - (n_shown - 16) / 10))


def set_token_ticks(ax: Any, rows: Sequence[str] | None, cols: Sequence[str] | None,
                    max_labels: int = MAX_LABELS) -> None:
    """Put row labels on the y axis and column labels on the x axis of ``ax`` (``None``: no labels).

    Column labels are rotated 90 degrees when any is longer than two characters.
    """
    if cols is not None:
        pos, text = thin(cols, max_labels)
        ax.set_xticks(pos, text, rotation=90 if any(len(c) > 2 for c in text) else 0, fontsize=font_size(len(pos)))
    else:
        ax.set_xticks([])
    if rows is not None:
        pos, text = thin(rows, max_labels)
        ax.set_yticks(pos, text, fontsize=font_size(len(pos)))
    else:
        ax.set_yticks([])


def wrap_title(text: str, width_inches: float, fontsize: float = 12.0) -> str:
    """``text`` broken into lines that fit ``width_inches`` at ``fontsize`` points (about 0.55 em a character);
    the line breaks it has are kept.

    Example:
        >>> wrap_title("a " * 40, 3.0).count("\\n") > 0, wrap_title("short\\nline", 3.0)
        (True, 'short\\nline')
    """
    import textwrap

    chars = max(12, int(width_inches * 72 / (0.55 * fontsize)))
    lines = [textwrap.fill(line, chars, break_long_words=True, break_on_hyphens=False) for line in str(text).splitlines()]
    return "\n".join(lines) or str(text)  # each given line wrapped on its own


def suptitle(fig: Any, text: str | None, fontsize: float = 11.0) -> None:
    """The figure's title, wrapped to the figure's width (long translations and captions stay on the image)."""
    if text:
        fig.suptitle(wrap_title(text, fig.get_figwidth() * 0.95, fontsize), fontsize=fontsize)
