"""Pictures as PNG files with matplotlib's Agg backend (no display needed): alignment heatmaps with
token labels, and line plots such as score against input length.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot global state), and files are
written through a temporary file and an atomic rename.

Example:
    >>> import tempfile, torch
    >>> out = tempfile.mkdtemp()
    >>> weights = torch.softmax(torch.randn(4, 10), dim=-1)          # (Tq, Tk)
    >>> save_alignment_png(weights, ["2", "0", "2", "1"], list("1 mar 2021"), f"{out}/align.png",
    ...                    title="Bahdanau", figsize=(5, 3), dpi=80).name
    'align.png'
    >>> path = save_line_plot({"attention": ([10, 20, 40], [0.99, 0.98, 0.97]),
    ...                        "no attention": ([10, 20, 40], [0.95, 0.70, 0.31])},
    ...                       f"{out}/length.png", xlabel="input length", ylabel="exact match")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)  # no display; a no-op if the application chose a backend already
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from attnkit.viz._checks import as_matrix, labels_for, value_range  # noqa: E402
from attnkit.viz._ticks import set_token_ticks, suptitle, wrap_title  # noqa: E402

INCH_PER_TOKEN = 0.35
"""Default heatmap size: this many inches per token, plus margins for the labels."""


def default_figsize(tq: int, tk: int) -> tuple[float, float]:
    """``(width, height)`` in inches for a ``(Tq, Tk)`` heatmap: ``(1.8 + 0.35 Tk, 1.4 + 0.35 Tq)`` clamped to
    ``[3, 24] x [2.5, 24]``."""
    w = min(24.0, max(3.0, 1.8 + INCH_PER_TOKEN * tk))
    h = min(24.0, max(2.5, 1.4 + INCH_PER_TOKEN * tq))
    return (w, h)


def alignment_figure(weights: Any, row_labels: Sequence[Any] | None = None,
                     col_labels: Sequence[Any] | None = None, *, title: str | None = None,
                     cmap: str = "viridis", figsize: tuple[float, float] | None = None, annotate: bool = False,
                     vmin: float | None = None, vmax: float | None = None, xlabel: str = "input tokens",
                     ylabel: str = "output tokens", gold: tuple[Any, Any] | None = None) -> Figure:
    """A heatmap ``Figure`` of ``weights`` ``(Tq, Tk)``: rows = outputs (``row_labels``), columns = inputs.

    Args:
        weights: tensor / array / nested list ``(Tq, Tk)``.
        row_labels: ``Tq`` output tokens; col_labels: ``Tk`` input tokens (default: indices).
        title: figure title.
        cmap: matplotlib colour map name.
        figsize: inches; default ``default_figsize(Tq, Tk)``.
        annotate: write each value in its cell.
        vmin, vmax: colour range (default ``[0, 1]`` for weights there, else the data's range).
        gold: ``(sure, possible)`` bool ``(Tq, Tk)`` each, the true links when they are known (e.g.
            :func:`attnkit.data.gold_alignment` placed on the model's token grid): sure links are drawn as
            squares around their cells, possible-only links as dots, and the legend says so.

    Example:
        >>> import torch
        >>> sure = torch.eye(3, dtype=torch.bool)
        >>> fig = alignment_figure(torch.eye(3), list("abc"), list("xyz"), gold=(sure, sure | sure.roll(1, 1)))
        >>> [len(c.get_offsets()) for c in fig.axes[0].collections]   # 3 sure squares, 3 possible dots
        [3, 3]
    """
    m = as_matrix(weights)
    tq, tk = m.shape
    rows = labels_for(row_labels, tq, "row")
    cols = labels_for(col_labels, tk, "column")
    lo, hi = value_range(m, vmin, vmax)
    fig = Figure(figsize=figsize or default_figsize(tq, tk), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(m, cmap=cmap, vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
    set_token_ticks(ax, rows, cols)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(length=0)
    if annotate:
        for i in range(tq):
            for j in range(tk):
                x = (m[i, j] - lo) / (hi - lo)
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if x > 0.6 else "white")
    if gold is not None:
        _draw_gold(ax, gold, m.shape)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="attention weight")
    suptitle(fig, title)
    return fig


def _draw_gold(ax: Any, gold: tuple[Any, Any], shape: tuple[int, int]) -> None:
    """Mark the true links on a heatmap: squares on sure cells, dots on possible-only ones, and a legend."""
    sure, possible = (as_matrix(g).astype(bool) for g in gold)
    if sure.shape != shape or possible.shape != shape:
        raise ValueError(f"Expected gold links of the weights' shape {shape}. Received: sure {sure.shape}, "
                         f"possible {possible.shape}")
    only = possible & ~sure
    for cells, style in ((sure, dict(marker="s", s=120, facecolors="none", edgecolors="white", linewidths=1.5,
                                     label="gold link (sure)")),
                         (only, dict(marker="o", s=12, c="white", label="gold link (possible)"))):
        rows, cols = np.nonzero(cells)
        ax.scatter(cols, rows, **style)
    legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=7, frameon=False)
    for handle in legend.legend_handles:  # white on the heatmap, black on the page
        handle.set_edgecolor("black")
        if handle.get_label() != "gold link (sure)":
            handle.set_facecolor("black")


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Write ``fig`` atomically (temporary file, then rename): SVG when ``path`` ends in ``.svg``, else PNG at
    ``figsize * dpi`` pixels."""
    path = Path(path)
    fmt = "svg" if path.suffix.lower() == ".svg" else "png"
    from attnkit.storage import (
        write_figure,  # the one writer (fsync, rename, links replaced, the user's umask)
    )

    write_figure(fig, path, dpi=dpi, format=fmt)
    return path


def save_alignment_png(weights: Any, row_labels: Sequence[Any] | None, col_labels: Sequence[Any] | None,
                       path: str | os.PathLike[str], *, title: str | None = None, dpi: int = 100,
                       figsize: tuple[float, float] | None = None, cmap: str = "viridis",
                       annotate: bool = False, gold: tuple[Any, Any] | None = None) -> Path:
    """Save an alignment heatmap PNG of ``round(figsize * dpi)`` pixels; returns the path.

    Example::

        save_alignment_png(alignment, out_tokens, in_tokens, "demo/alignment_0.png", title="dates",
                           gold=(sure, possible))   # the true links drawn over the weights, when known
    """
    fig = alignment_figure(weights, row_labels, col_labels, title=title, cmap=cmap, figsize=figsize,
                           annotate=annotate, gold=gold)
    return save_figure(fig, path, dpi=dpi)


def line_figure(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str, ylabel: str,
                title: str | None = None, figsize: tuple[float, float] = (6.0, 4.0),
                ylim: tuple[float, float] | None = None) -> Figure:
    """A line plot with one marked line per ``name -> (xs, ys)`` entry and a legend.

    Raises:
        ValueError: no series, or a series whose ``xs`` and ``ys`` differ in length.
    """
    if not series:
        raise ValueError("series must hold at least one name -> (xs, ys) entry. Received: {}")
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, (xs, ys) in series.items():
        xs, ys = list(xs), list(ys)
        if len(xs) != len(ys):
            raise ValueError(f"series {name!r}: xs and ys must have the same length. "
                             f"Received: {len(xs)} xs, {len(ys)} ys")
        ax.plot(xs, ys, marker="o", label=str(name))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(wrap_title(title, figsize[0] * 0.9))
    return fig


def save_line_plot(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | os.PathLike[str],
                   *, xlabel: str, ylabel: str, title: str | None = None, dpi: int = 100,
                   figsize: tuple[float, float] = (6.0, 4.0), ylim: tuple[float, float] | None = None) -> Path:
    """Save ``line_figure(...)`` as a PNG (e.g. exact match against input length, one line per model)."""
    fig = line_figure(series, xlabel=xlabel, ylabel=ylabel, title=title, figsize=figsize, ylim=ylim)
    return save_figure(fig, path, dpi=dpi)
