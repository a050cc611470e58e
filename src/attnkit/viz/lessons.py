"""The pictures of two lessons of the course: what attention costs against length, and how a model knows
positions. Plain rows and arrays in, a matplotlib ``Figure`` out; ``attnkit lesson cost`` and ``attnkit lesson
positions`` measure and compute them (``attnkit.recipes.lessons``).

Shape legend: T length (positions), D width of an encoding.

Example:
    >>> fig = cost_figure(example_cost_rows())
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['sequence length T (tokens)', 'sequence length T (tokens)']
    >>> fig = positions_figure(example_encodings())
    >>> fig.axes[0].get_title()
    'sinusoidal (Vaswani et al. 2017)'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from attnkit.viz._ticks import suptitle, wrap_title  # noqa: E402

COURSE_T = 40
"""The course's example: a 40-token sentence, a 40 x 40 matrix of scores."""


def _mib(x: float | None) -> float:
    return np.nan if x is None else x / 2**20


def _reference(ax: Any, lengths: np.ndarray, anchor_t: float, anchor_y: float) -> None:
    """A dashed ``T^2`` line through ``(anchor_t, anchor_y)``: what quadratic growth looks like."""
    ax.plot(lengths, anchor_y * (lengths / anchor_t) ** 2, ls="--", color="grey", lw=1, label="∝ T² (for reference)")


def _mark_course(ax: Any, t: float, y: float, text: str) -> None:
    ax.scatter([t], [y], s=90, facecolors="none", edgecolors="crimson", zorder=5, linewidths=1.5)
    ax.annotate(text, (t, y), xytext=(12, 24), textcoords="offset points", fontsize=8, color="crimson",
                arrowprops={"arrowstyle": "-", "color": "crimson"})


def cost_figure(rows: Sequence[Mapping[str, Any]], *, note: str = "", title: str | None = None) -> Figure:
    """Memory of the scores and time of one attention call against the length ``T``, log-log, beside ``T^2``.

    Args:
        rows: one dict per length: ``length``; ``computed_bytes`` (``B * H * T * T * 4``: the float32 scores
            held at once); ``measured_bytes`` (the peak memory measured above the inputs, or None where not
            measured); ``seconds`` (median time of one call, or None where the length was not timed).
        note: a line under the plots, e.g. why lengths past a cap were not timed.
        title: the figure's title.
    """
    rows = sorted(rows, key=lambda r: r["length"])
    t = np.array([r["length"] for r in rows], dtype=np.float64)
    fig = Figure(figsize=(11.0, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    mem, time = fig.subplots(1, 2)
    computed = np.array([_mib(r["computed_bytes"]) for r in rows])
    mem.plot(t, computed, marker="o", label="scores held in memory (computed: T × T × 4 bytes per head)")
    measured = np.array([_mib(r.get("measured_bytes")) for r in rows])
    if np.isfinite(measured).any():
        mem.plot(t, measured, marker="s", ls=":", label="peak memory measured (scores, softmax, output)")
        last = np.flatnonzero(np.isfinite(measured))[-1]
        _reference(mem, t, t[last], measured[last])  # does the measured memory grow as T²?
    else:
        _reference(mem, t, t[0], computed[0])
    mem.set_ylabel("memory (MiB)")
    mem.set_title("memory of the attention scores")
    seconds = np.array([np.nan if r.get("seconds") is None else r["seconds"] * 1e3 for r in rows])
    timed = np.isfinite(seconds)
    time.plot(t[timed], seconds[timed], marker="o", label="one attention call (median, measured)")
    guess = np.array([np.nan if r.get("predicted_seconds") is None else r["predicted_seconds"] * 1e3 for r in rows])
    if np.isfinite(guess).any():
        time.plot(t, guess, marker="o", ls="none", mfc="none", color="C0", label="not timed: T² from the last timed")
    if timed.any():
        _reference(time, t, t[timed][-1], seconds[timed][-1])
    time.set_ylabel("time (ms)")
    time.set_title("time of one attention call")
    for ax in (mem, time):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T (tokens)")
        ax.grid(True, which="both", alpha=0.3)
    course = [r for r in rows if r["length"] == COURSE_T]
    if course:
        scores = COURSE_T * COURSE_T
        _mark_course(mem, COURSE_T, _mib(course[0]["computed_bytes"]),
                     f"the course's 40 × 40: {scores:,} scores, {scores * 4 / 1000:.1f} kB")
        if course[0].get("seconds") is not None:
            _mark_course(time, COURSE_T, course[0]["seconds"] * 1e3, "40 × 40")
    mem.legend(fontsize=7, loc="upper left")
    time.legend(fontsize=7, loc="upper left")
    if note:
        fig.supxlabel(wrap_title(note, fig.get_figwidth() * 0.95, 8), fontsize=8, color="#444")
    suptitle(fig, title or "Attention compares every token with every other: T² scores")
    return fig


def similarity_by_distance(encoding: Any, max_distance: int | None = None) -> np.ndarray:
    """``(K,)``: the mean cosine similarity of the encodings of two positions ``k`` apart, ``k = 0 .. K-1``.

    ``s(k) = mean_p cos(E[p], E[p + k])`` over the positions ``p`` of ``E`` ``(T, D)``; ``K = T`` by default.

    Example:
        >>> similarity_by_distance(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])).tolist()
        [1.0, 0.0, 1.0]
    """
    e = np.asarray(encoding, dtype=np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)  # (T, D) unit rows
    k_max = len(e) if max_distance is None else min(len(e), max_distance + 1)
    return np.array([float(np.mean(np.sum(e[: len(e) - k] * e[k:], axis=1))) for k in range(k_max)])


def positions_figure(encodings: Mapping[str, Any], *, notes: Mapping[str, str] | None = None,
                     title: str | None = None, max_distance: int = 64) -> Figure:
    """Each encoding as a heatmap (position x dimension) and, below, similarity against distance.

    Args:
        encodings: name -> ``(T, D)`` array: the vector each position adds (sinusoidal, learned) or, for RoPE,
            a fixed vector rotated to each position (so ``cos(E[m], E[n])`` is what RoPE does to a dot product).
        notes: name -> a line under its heatmap (e.g. where the learned embedding comes from).
        max_distance: the largest distance on the similarity plot.
    """
    names = list(encodings)
    fig = Figure(figsize=(4.2 * len(names), 8.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplot_mosaic([names, ["similarity"] * len(names)], height_ratios=[1.3, 1.0])
    curves = {}
    for k, name in enumerate(names):
        e = np.asarray(encodings[name], dtype=np.float64)
        ax = axes[name]
        top, q99 = float(np.abs(e).max()), float(np.quantile(np.abs(e), 0.99))
        lim = max(q99 if top > 1.5 * q99 else top, 1e-12)  # a few outliers do not wash the picture out
        image = ax.imshow(e, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(f"dimension (of {e.shape[1]})" + (f"\n{notes[name]}" if notes and name in notes else ""),
                      fontsize=8)
        ax.set_ylabel("position")
        clipped = " (clipped at the 99th percentile)" if lim < np.abs(e).max() - 1e-12 else ""
        fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, label="value" + clipped)
        curves[name] = similarity_by_distance(e, max_distance)
        axes["similarity"].plot(range(len(curves[name])), curves[name], marker=".", ls=("-", "--", ":")[k % 3],
                                lw=2.5 - 0.6 * (k % 3), label=name)
    sim_ax = axes["similarity"]
    same = [f"{a} and {b}" for i, a in enumerate(names) for b in names[i + 1:]
            if len(curves[a]) == len(curves[b]) and np.allclose(curves[a], curves[b], atol=1e-6)]
    if same:
        sim_ax.text(0.01, 0.03, f"{'; '.join(same)}: the same curve, the mean of cos(k θ_i)", ha="left",
                    transform=sim_ax.transAxes, fontsize=8, color="#444")
    sim_ax.axhline(0.0, color="grey", lw=0.8)
    sim_ax.set_xlabel("distance between the two positions |m − n|")
    sim_ax.set_ylabel("cosine similarity (dot product of unit vectors)")
    sim_ax.set_title("how alike two positions look to a dot product, against their distance", fontsize=10)
    sim_ax.grid(alpha=0.3)
    sim_ax.legend(fontsize=8)
    suptitle(fig, title or "Positional encodings: what each position adds, and what a dot product sees of it")
    return fig


def example_cost_rows() -> list[dict[str, Any]]:
    """Rows of the form ``cost_figure`` reads, worked out by hand (for examples and tests)."""
    return [{"length": t, "computed_bytes": 4 * t * t, "measured_bytes": 12 * t * t if t <= 1024 else None,
             "seconds": 1e-9 * t * t if t <= 4096 else None} for t in (40, 128, 1024, 4096, 16384)]


def example_encodings() -> dict[str, np.ndarray]:
    """Small encodings of the form ``positions_figure`` reads (for examples and tests)."""
    pos = np.arange(32)[:, None] / 10000 ** (np.arange(0, 16, 2)[None, :] / 16)  # (T, D/2)
    sinus = np.stack([np.sin(pos), np.cos(pos)], -1).reshape(32, 16)
    return {"sinusoidal (Vaswani et al. 2017)": sinus,
            "learned (random here)": np.random.default_rng(0).normal(0, 0.02, (32, 16))}


__all__ = ["COURSE_T", "cost_figure", "example_cost_rows", "example_encodings", "positions_figure",
           "similarity_by_distance"]
