"""A row (or grid) of labelled panels: the one figure of the step-by-step lessons (``attnkit lesson steps``,
``qkv``, ``keras``, ``decoding``, ``masks``, ``mlm``).

Each panel says what it draws: a :class:`MatrixPanel` is a heatmap with its row and column labels, its axis
names and a named colour scale (or, for masks and layouts, a legend of its two values); a :class:`CurvePanel`
is a line or bar plot with named axes. :func:`panels_figure` lays them out, each with its own title, under a
wrapped title and over a wrapped note. Arrays in, a matplotlib ``Figure`` out; nothing here knows a model.

Shape legend: R rows, C columns of a matrix panel.

Example:
    >>> import numpy as np
    >>> fig = panels_figure([MatrixPanel("weights", np.full((2, 3), 1 / 3), rows=["a", "b"], cols=["x", "y", "z"],
    ...                                  xlabel="key", ylabel="query", scale="weight"),
    ...                      CurvePanel("sum", {"row sums": ([0, 1], [1.0, 1.0])}, xlabel="query", ylabel="sum")],
    ...                     title="two panels")
    >>> [ax.get_title() for ax in fig.axes[:1]], fig.axes[0].get_xlabel()
    (['weights'], 'key')
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import AutoLocator  # noqa: E402

from attnkit.viz._ticks import set_token_ticks, suptitle, wrap_title  # noqa: E402

PANEL_INCHES = (4.4, 4.0)
"""Width and height of one panel (labels included)."""
CATEGORY_COLOURS = ("#f2f2f2", "#2b6cb0", "#dd6b20", "#38a169", "#805ad5")
"""The colours of a categorical panel's values 0, 1, 2, ... (0: light grey, the "nothing here" value)."""


@dataclass
class MatrixPanel:
    """A heatmap ``(R, C)`` with its labels.

    Args:
        title: the panel's title (wrapped).
        values: ``(R, C)`` numbers (a 1-D array is drawn as one row).
        rows, cols: tick labels (None: numbered by matplotlib).
        xlabel, ylabel: what the columns and rows are.
        scale: the colour bar's name (e.g. ``"weight a_ij"``).
        diverging: a blue-white-red scale centred on 0 (for signed values such as states and scores).
        vmin, vmax: the scale's ends (None: the data's).
        cells: ``(R, C)`` text written in each cell (None: the value when the matrix is small, else nothing).
        categories: names of the values ``0 .. n-1`` (a mask, a layout): ``n`` colours, named on the colour bar
            (``scale`` then names what they are, e.g. ``"mask"``).
        scale_format: the colour bar's number format (e.g. ``"%.0e"`` for tiny differences), or None.
    """

    title: str
    values: Any
    rows: Sequence[str] | None = None
    cols: Sequence[str] | None = None
    xlabel: str = ""
    ylabel: str = ""
    scale: str = "value"
    diverging: bool = False
    vmin: float | None = None
    vmax: float | None = None
    cells: Sequence[Sequence[str]] | None = None
    categories: Sequence[str] | None = None
    scale_format: str | None = None

    def draw(self, fig: Figure, ax: Any) -> None:
        """Draw on ``ax`` (its colour bar or legend beside it)."""
        v = np.atleast_2d(np.asarray(self.values, dtype=np.float64))  # (R, C)
        if self.categories:
            colours = CATEGORY_COLOURS[: len(self.categories)]
            cmap, lo, hi = ListedColormap(colours), -0.5, len(colours) - 0.5
        elif self.diverging:
            lim = self.vmax if self.vmax is not None else max(float(np.nanmax(np.abs(v))), 1e-12)
            cmap, lo, hi = "RdBu_r", -lim, lim
        else:
            cmap, lo, hi = "viridis", self.vmin, self.vmax
        image = ax.imshow(v, aspect="auto", cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        set_token_ticks(ax, self.rows, self.cols)
        if self.rows is None:
            ax.set_yticks(range(v.shape[0]) if v.shape[0] <= 16 else ax.get_yticks())
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        if self.cells is not None or not self.categories:
            _write_cells(ax, v, self.cells, image)
        if self.categories:  # a colour bar with one named step per value
            bar = fig.colorbar(image, ax=ax, fraction=0.06, pad=0.03, ticks=range(len(colours)), label=self.scale)
            bar.ax.set_yticklabels([wrap_title(c, 1.1, 7) for c in self.categories], fontsize=7)
        else:
            fig.colorbar(image, ax=ax, fraction=0.06, pad=0.03, label=self.scale, format=self.scale_format)


def _write_cells(ax: Any, v: np.ndarray, cells: Sequence[Sequence[str]] | None, image: Any) -> None:
    """Each cell's text (given, or its value when the matrix has at most 10 x 10 cells), dark on light."""
    if cells is None and (v.shape[0] > 10 or v.shape[1] > 10):
        return
    norm = image.norm
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            text = cells[i][j] if cells is not None else f"{v[i, j]:.2f}"
            if not text:
                continue
            shade = norm(v[i, j]) if np.isfinite(v[i, j]) else 0.0
            dark = image.cmap(shade)[:3]
            light = sum(dark) / 3 > 0.55
            ax.text(j, i, text, ha="center", va="center", fontsize=7 if len(text) <= 5 else 6,
                    color="black" if light else "white")


@dataclass
class CurvePanel:
    """Lines (or bars) with named axes.

    Args:
        title: the panel's title.
        series: name -> ``(x, y)``.
        xlabel, ylabel: the axes' names.
        xticks: labels for the x positions ``0 .. n-1`` (e.g. tokens), or None.
        bars: draw bars instead of lines (one series: the values of one distribution).
        marks: ``(x, y, text)`` points to mark and name.
        legend_at: where the legend goes (matplotlib's ``loc``).
    """

    title: str
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]]
    xlabel: str = ""
    ylabel: str = ""
    xticks: Sequence[str] | None = None
    bars: bool = False
    marks: list[tuple[float, float, str]] = field(default_factory=list)
    legend_at: str = "best"

    def draw(self, fig: Figure, ax: Any) -> None:
        """Draw on ``ax``."""
        n = max(len(self.series), 1)
        for k, (name, (x, y)) in enumerate(self.series.items()):
            x = np.asarray(x, dtype=np.float64)
            if self.bars:
                width = 0.8 / n
                ax.bar(x + (k - (n - 1) / 2) * width, y, width=width, label=name)
            else:
                ax.plot(x, y, marker="o", ls=("-", "--", ":")[k % 3], label=name)
        for x, y, text in self.marks:
            ax.annotate(text, (x, y), xytext=(6, 8), textcoords="offset points", fontsize=7, color="crimson")
        if self.xticks is not None:
            set_token_ticks(ax, None, self.xticks)
            ax.yaxis.set_major_locator(AutoLocator())  # set_token_ticks cleared the y axis: numbers back
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc=self.legend_at)


def panels_figure(panels: Sequence[MatrixPanel | CurvePanel], *, title: str, note: str = "",
                  columns: int | None = None) -> Figure:
    """The panels side by side (``columns`` per row, default all in one row), each titled.

    Args:
        panels: what to draw, in order (left to right, then down).
        title: the figure's title (wrapped to its width).
        note: a line under the panels (wrapped): what the picture is made from, what is untrained.
        columns: panels per row.
    """
    if not panels:
        raise ValueError("Expected at least one panel. Received: none")
    cols = min(columns or len(panels), len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(PANEL_INCHES[0] * cols, PANEL_INCHES[1] * rows + 0.9), layout="constrained")
    FigureCanvasAgg(fig)
    fig.get_layout_engine().set(wspace=0.06, hspace=0.04)  # room for each panel's colour bar and its names
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        panel.draw(fig, ax)
        ax.set_title(wrap_title(panel.title, PANEL_INCHES[0] * 0.95, 9), fontsize=9)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if note:
        fig.supxlabel(wrap_title(note, fig.get_figwidth() * 0.95, 8), fontsize=8, color="#444")
    suptitle(fig, title)
    return fig


def save_palette_png(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a 256-colour PNG (median-cut palette, no dithering) at its own size and dpi, atomically:
    about a third of the bytes of a full-colour PNG, the same picture to the eye (heatmaps and text need few
    colours).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> path = save_palette_png(panels_figure(example_panels(), title="t"), Path(tempfile.mkdtemp()) / "p.png")
        >>> Image.open(path).mode
        'P'
    """
    from PIL import Image

    from attnkit.storage import write_image

    fig.canvas.draw()
    rgb = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])  # (H, W, 3)
    write_image(rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE), path)
    return Path(path)


def example_panels() -> list[MatrixPanel | CurvePanel]:
    """One panel of each kind (for examples and tests)."""
    w = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    return [MatrixPanel("weights", w, rows=["q1", "q2"], cols=["k1", "k2", "k3"], xlabel="key", ylabel="query",
                        scale="weight"),
            MatrixPanel("states", w - 0.4, xlabel="dimension", ylabel="position", scale="value", diverging=True),
            MatrixPanel("mask", w > 0.15, rows=["q1", "q2"], cols=["k1", "k2", "k3"], xlabel="key", ylabel="query",
                        categories=("masked", "may attend")),
            CurvePanel("log p", {"greedy": ([0, 1, 2], [-0.1, -0.3, -0.4])}, xlabel="step", ylabel="log p")]


__all__ = ["CATEGORY_COLOURS", "CurvePanel", "MatrixPanel", "PANEL_INCHES", "example_panels", "panels_figure",
           "save_palette_png"]
