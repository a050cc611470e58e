"""Plots of the scaling run (matplotlib, PNG): time and working memory against length, log-log, one line
per attention path, forward and forward+backward side by side.

Example:
    >>> import tempfile, pathlib
    >>> timing = [{"path": "sdpa", "length": t, "forward_s": t * t * 1e-9, "forward_backward_s": 3 * t * t * 1e-9}
    ...           for t in (128, 256)]
    >>> memory = [{"path": "sdpa", "length": t, "mask": "none", "backward": b, "working_bytes": 1000 * t}
    ...           for t in (128, 256) for b in (False, True)]
    >>> files = scaling_plots(timing, memory, pathlib.Path(tempfile.mkdtemp()))
    >>> [f.name for f in files]
    ['scaling_time.png', 'scaling_memory.png']
"""

from __future__ import annotations

from pathlib import Path

from attnkit.storage import write_figure


def _axes_pair(title: str):
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    fig.suptitle(title)
    return plt, fig, axes


def _save(plt, fig, axes, ylabel: str, path: Path) -> Path:
    for ax, label in zip(axes, ("forward", "forward + backward"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T (tokens)")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    write_figure(fig, path, dpi=80)
    plt.close(fig)
    return path


def scaling_plots(timing: list[dict], memory: list[dict], out: Path) -> list[Path]:
    """Write ``scaling_time.png`` and ``scaling_memory.png`` into ``out``.

    Args:
        timing: rows of :func:`attnkit.bench.scaling.time_paths`.
        memory: rows of :func:`attnkit.bench.scaling.measure_memory` (only no-mask rows are drawn).
        out: an existing directory.

    Returns:
        The paths of the files written.
    """
    paths = list(dict.fromkeys(r["path"] for r in timing))
    plt, fig, axes = _axes_pair("Attention time against length (one head, width 64)")
    for ax, key in zip(axes, ("forward_s", "forward_backward_s"), strict=True):
        for p in paths:
            rows = [r for r in timing if r["path"] == p]
            ax.plot([r["length"] for r in rows], [r[key] for r in rows], marker="o", label=p)
    files = [_save(plt, fig, axes, "seconds per call", out / "scaling_time.png")]
    plt, fig, axes = _axes_pair("Attention working memory against length (peak RSS above the baseline)")
    for ax, backward in zip(axes, (False, True), strict=True):
        for p in paths:
            rows = [m for m in memory if m["path"] == p and m["mask"] == "none" and m["backward"] == backward
                    and m.get("working_bytes", 0) > 0]
            ax.plot([m["length"] for m in rows], [m["working_bytes"] / 2**20 for m in rows], marker="o", label=p)
    files.append(_save(plt, fig, axes, "MiB", out / "scaling_memory.png"))
    return files
