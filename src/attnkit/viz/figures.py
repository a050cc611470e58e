"""Pictures of multi-head models (matplotlib, Agg): a layers x heads grid, heatmaps side by side, and one
token's attention as bars or as highlighted text. Write any of them with ``plots.save_figure`` (PNG, or SVG
for a ``.svg`` path).

Shape legend: L layers, H heads, T tokens (Tq queries, Tk keys).

Example:
    >>> import tempfile, torch
    >>> from attnkit.viz.plots import save_figure
    >>> w = torch.softmax(torch.randn(2, 3, 5, 5), -1)                      # (L, H, T, T) of one input
    >>> fig = heads_grid_figure(w, list("abcde"))
    >>> len(fig.axes)                                                       # 2 x 3 heatmaps and a colour bar
    7
    >>> save_figure(token_figure(w[0, 0, 2], list("abcde"), query="c"), f"{tempfile.mkdtemp()}/c.svg").suffix
    '.svg'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from attnkit.viz._checks import as_matrix, labels_for  # noqa: E402
from attnkit.viz._ticks import set_token_ticks, suptitle  # noqa: E402
from attnkit.viz.words import words_figure  # noqa: E402


def _stack(weights: Any) -> np.ndarray:
    """``(L, H, T, T)`` float64 from a tensor/array, or from a per-layer tuple of ``(H, T, T)`` / ``(1, H, T, T)``."""
    if isinstance(weights, (list, tuple)):
        weights = [w.detach().cpu().double().numpy() if hasattr(w, "detach") else np.asarray(w) for w in weights]
        weights = [w[0] if w.ndim == 4 else w for w in weights]
    if hasattr(weights, "detach"):
        weights = weights.detach().cpu().double().numpy()
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"Expected weights of shape (L, H, Tq, Tk) for one input. Received: {tuple(w.shape)}")
    return w


def _pick(n: int, chosen: Sequence[int] | None, what: str) -> list[int]:
    if chosen is None:
        return list(range(n))
    bad = [i for i in chosen if not 0 <= i < n]
    if bad:
        raise ValueError(f"Expected {what} indices in [0, {n - 1}]. Received: {bad}")
    return list(chosen)


def heads_grid_figure(weights: Any, labels: Sequence[Any] | None = None, *, col_labels: Sequence[Any] | None = None,
                      layers: Sequence[int] | None = None, heads: Sequence[int] | None = None,
                      title: str | None = None, cmap: str = "viridis", cell_inches: float = 1.6) -> Figure:
    """A grid of heatmaps: one row per layer, one column per head.

    Args:
        weights: ``(L, H, Tq, Tk)`` of one input, or the per-layer tuple of ``(1, H, Tq, Tk)`` a model returns.
        labels: ``Tq`` row tokens (also the columns unless ``col_labels``), drawn on the outer axes only.
        layers, heads: indices to draw (default all).
        cell_inches: size of one heatmap.

    Returns:
        The ``Figure``; ``fig.axes[r * len(heads) + c].images[0]`` holds layer ``layers[r]``, head ``heads[c]``;
        the last axes is the shared colour bar (0 to 1).
    """
    w = _stack(weights)  # (L, H, Tq, Tk)
    L, H, tq, tk = w.shape
    rows_l, cols_h = _pick(L, layers, "layer"), _pick(H, heads, "head")
    rows = labels_for(labels, tq, "row") if labels is not None else None
    cols = labels_for(col_labels if col_labels is not None else labels, tk, "column") \
        if (col_labels is not None or labels is not None) else None
    n_r, n_c = len(rows_l), len(cols_h)
    fig = Figure(figsize=(1.2 + cell_inches * n_c, 1.0 + cell_inches * n_r), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_r, n_c, squeeze=False)
    for r, layer in enumerate(rows_l):
        for c, head in enumerate(cols_h):
            ax = axes[r][c]
            ax.imshow(w[layer, head], cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
            set_token_ticks(ax, rows if c == 0 else None, cols if r == n_r - 1 else None, max_labels=24)
            ax.tick_params(length=0, labelsize=7)
            if r == 0:
                ax.set_title(f"head {head}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"layer {layer}", fontsize=8)
    fig.colorbar(axes[0][0].images[0], ax=axes.ravel().tolist(), shrink=min(1.0, 0.9 / n_r + 0.1), pad=0.02,
                 label="attention weight")
    fig.supxlabel("attended token (key)", fontsize=9)
    fig.supylabel("attending token (query), per layer", fontsize=9)
    suptitle(fig, title)
    return fig


def heatmaps_figure(matrices: Mapping[str, Any], labels: Sequence[Any] | None = None, *,
                    col_labels: Sequence[Any] | None = None, title: str | None = None, cmap: str = "viridis",
                    inches: float | None = None, xlabel: str = "attended token (key)",
                    ylabel: str = "attending token (query)") -> Figure:
    """Heatmaps side by side with their own colour scales, e.g. ``{"raw, last layer": A, "rollout": R}``.

    The figure is sized from the matrix so that cells stay square for any ``Tq x Tk`` (an alignment of 3
    output words over 20 input words is a wide strip, not a square of slivers), each colour bar is as tall as
    its matrix, and the labels' font follows the cell size.

    Args:
        matrices: name -> ``(Tq, Tk)`` weights; all the same shape.
        labels: ``Tq`` row tokens (also the columns unless ``col_labels``).
        inches: size of one cell (default from the token count: 0.12-0.45 inch).
        xlabel, ylabel: the axis titles.

    Example:
        >>> import numpy as np
        >>> fig = heatmaps_figure({"a": np.full((3, 20), 0.05)}, list("abc"), col_labels=[f"w{i}" for i in range(20)])
        >>> w, h = fig.get_size_inches(); bool(w > 2 * h)                       # a wide matrix, a wide picture
        True
    """
    mats = {name: as_matrix(m, name) for name, m in matrices.items()}
    if not mats:
        raise ValueError("Expected at least one name -> (Tq, Tk) matrix. Received: {}")
    tq, tk = next(iter(mats.values())).shape
    for name, m in mats.items():
        if m.shape != (tq, tk):
            raise ValueError(f"Expected every matrix of shape {(tq, tk)}. Received: {name!r} {m.shape}")
    rows = labels_for(labels, tq, "row")
    cols = labels_for(col_labels if col_labels is not None else labels, tk, "column")
    cell = inches or min(0.45, max(0.12, 7.0 / max(tq, tk)))
    fontsize = min(10.0, max(6.0, cell * 72 * 0.75))
    margin = min(1.4, 0.2 + 0.07 * fontsize / 10 * max(len(t) for t in [*rows, *cols]))  # label room
    width = len(mats) * (cell * tk + 0.9) + margin + 0.6
    fig = Figure(figsize=(max(3.5, width), cell * tq + margin + 1.2), layout="constrained")
    FigureCanvasAgg(fig)
    for k, (name, m) in enumerate(mats.items()):
        ax = fig.add_subplot(1, len(mats), k + 1)
        image = ax.imshow(m, cmap=cmap, vmin=0.0, vmax=max(float(m.max()), 1e-12), aspect="auto",
                          interpolation="nearest")
        set_token_ticks(ax, rows, cols)
        ax.tick_params(length=0, labelsize=fontsize)
        ax.xaxis.tick_top()
        ax.xaxis.set_label_position("top")
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_title(name, fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, aspect=max(4, min(25, 4 * tq)), label="weight")
    suptitle(fig, title)
    return fig


def token_figure(weights: Any, labels: Sequence[Any] | None = None, *, query: str | None = None,
                 style: str = "bars", color: str = "#3b528b", title: str | None = None) -> Figure:
    """One token's attention ``(Tk,)`` over the others: horizontal bars, or the text with each token shaded.

    Args:
        weights: ``(Tk,)`` weights of one query (a row of a ``(Tq, Tk)`` matrix).
        labels: ``Tk`` tokens.
        query: the attending token, for the title.
        style: ``"bars"`` (one labelled bar per token with its value written at its end; ``axes[0].patches``
            hold the heights) or ``"text"`` (tokens written in reading order on a box shaded by weight, with a
            colour scale from 0 to the largest weight: ``attnkit.viz.words.words_figure``).
        title: the title (default ``attention of 'query'``).
    """
    w = as_matrix(np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights).reshape(1, -1))[0]
    toks = labels_for(labels, len(w), "column")
    if style not in ("bars", "text"):
        raise ValueError(f"Expected style 'bars' or 'text'. Received: {style!r}")
    if style == "text":  # the words on a colour scale from 0 to the largest weight, as explanations are drawn
        return words_figure(w, toks, per_line=12, label="word weight",
                            title=title or (f"attention of {query!r}" if query is not None else None))
    fig = _bars_figure(w, toks, color)
    suptitle(fig, title or (f"attention of {query!r}" if query is not None else None))
    return fig


def _bars_figure(w: np.ndarray, toks: list[str], color: str) -> Figure:
    """Horizontal bars, one per token, the weight written at the end of each and on the x axis."""
    fig = Figure(figsize=(5.5, min(24.0, 1.4 + 0.24 * len(w))), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(range(len(w)), w, color=color)
    ax.invert_yaxis()
    set_token_ticks(ax, toks, None, max_labels=96)
    ax.xaxis.set_major_locator(MaxNLocator(5))  # set_token_ticks cleared the x ticks
    if len(w) <= 64:
        for i, v in enumerate(w):
            ax.text(v, i, f" {v:.2f}", va="center", fontsize=7)
    ax.set_xlim(0, max(float(w.max()), 1e-12) * 1.18)
    ax.set_xlabel("attention weight")
    ax.set_ylabel("attended token")
    return fig


__all__ = ["heads_grid_figure", "heatmaps_figure", "token_figure"]
