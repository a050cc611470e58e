"""The one experiment harness: seeds, mean ± standard deviation, one JSON + Markdown + PNG report per run.

An experiment plugs in as an :class:`Experiment`: a function ``run(seed) -> {table name: rows}`` (one seed's
figures, each row a dict), the :class:`Table` s it fills (which columns name a row, which are figures) and
the :class:`Panel` s of its picture. :func:`run_experiment` does the rest, the same for every experiment:

1. runs ``run(seed)`` for each seed (``--seeds 0,1,2``, parsed by :func:`parse_seeds`), with a progress line
   per seed;
2. aggregates every figure over the seeds (:func:`aggregate`): mean, sample standard deviation (``n - 1``),
   the number of seeds that gave a value and the values themselves; one seed gives no standard deviation
   and the report says ``n=1`` instead of inventing one;
3. writes ``OUT/<name>.json`` (everything, each seed's rows included), ``OUT/<name>.md`` (the tables as
   ``mean ± sd``) and ``OUT/<name>.png`` (the panels, error bars of one sd), atomically
   (``attnkit.storage``), each with the exact command line and the machine (CPU model and vector flags);
   an experiment with ``extra_figures`` also gets ``OUT/<name>-<key>.png`` per figure, linked from the Markdown.

Example (figures worked out by hand: mean of 0.5 and 0.7 is 0.6, sample sd 0.1414):
    >>> rows = aggregate([[{"model": "a", "score": 0.5}], [{"model": "a", "score": 0.7}]], ("model",), ("score",))
    >>> rows[0]["model"], round(rows[0]["score"]["mean"], 4), round(rows[0]["score"]["sd"], 4), rows[0]["score"]["n"]
    ('a', 0.6, 0.1414, 2)
    >>> format_figure(rows[0]["score"], seeds=2), format_figure(summarize([0.5]), seeds=1)
    ('0.6 ± 0.14', '0.5 (n=1)')
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnkit.errors import InputError
from attnkit.storage import atomic_write_text, write_json

Rows = list[dict[str, Any]]
"""One table's rows: dicts of key columns (names, lengths) and figure columns (numbers, or None)."""


@dataclass(frozen=True)
class Table:
    """A table of an experiment: ``keys`` name a row (the same in every seed), ``figures`` are aggregated.

    Attributes:
        name: the key in ``run(seed)``'s result and in the report.
        title: the line above the table in the Markdown report.
        keys: columns that identify a row (e.g. ``("model", "bucket")``).
        figures: numeric columns, each reported as mean ± sd over the seeds (None: no value in that seed).
        note: a line under the table in the Markdown report.
    """

    name: str
    title: str
    keys: tuple[str, ...]
    figures: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Panel:
    """One plot of the PNG: the mean of ``y`` against ``x`` (a key column) with error bars of one sd, one line
    per value of the ``series`` columns; ``where`` keeps only the rows it returns True for (default: all).
    An ``x`` column of names (not numbers) is drawn as categories, points without lines."""

    table: str
    x: str
    y: str
    series: tuple[str, ...]
    xlabel: str = ""
    ylabel: str = ""
    log_x: bool = False
    log_y: bool = False
    ylim: tuple[float, float] | None = None
    names: tuple[tuple[str, str], ...] = ()  # series value -> the name the legend shows, e.g. ("none", "no attention")
    where: Callable[[dict[str, Any]], bool] | None = None


@dataclass
class Experiment:
    """What an experiment gives the harness.

    Attributes:
        name: stem of the report files (``OUT/<name>.json``, ``.md``, ``.png``).
        title: the report's title.
        tables: the tables ``run`` fills.
        panels: the plots of the PNG.
        run: ``seed -> {table name: rows}``, one seed's figures.
        settings: the experiment's settings, written into the report.
        extra_figures: ``report -> {key: matplotlib Figure}``, pictures beyond the panels (e.g. examples),
            written as ``OUT/<name>-<key>.png``; None: none.
    """

    name: str
    title: str
    tables: tuple[Table, ...]
    panels: tuple[Panel, ...]
    run: Callable[[int], dict[str, Rows]]
    settings: dict[str, Any] = field(default_factory=dict)
    extra_figures: Callable[[dict[str, Any]], dict[str, Any]] | None = None


def parse_seeds(text: str) -> tuple[int, ...]:
    """The seeds of ``--seeds``: comma-separated distinct integers >= 0.

    Example:
        >>> parse_seeds("0, 1,2")
        (0, 1, 2)
        >>> parse_seeds("1,x")
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --seeds must be distinct comma-separated integers >= 0, e.g. 0,1,2. Received: '1,x'
    """
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        seeds = ()
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise InputError(f"--seeds must be distinct comma-separated integers >= 0, e.g. 0,1,2. Received: {text!r}")
    return seeds


def summarize(values: Sequence[float | None]) -> dict[str, Any]:
    """``{"mean", "sd", "n", "values"}`` of one figure over the seeds: the mean and the sample standard
    deviation of the values that are not None (``sd`` None below two values, ``mean`` None with none).

    Example:
        >>> summarize([1.0, None, 3.0])
        {'mean': 2.0, 'sd': 1.4142135623730951, 'n': 2, 'values': [1.0, None, 3.0]}
    """
    given = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return {"mean": statistics.mean(given) if given else None,
            "sd": statistics.stdev(given) if len(given) >= 2 else None,
            "n": len(given), "values": list(values)}


def aggregate(per_seed: Sequence[Rows], keys: Sequence[str], figures: Sequence[str]) -> Rows:
    """One row per key (in the order first seen): the key columns, and :func:`summarize` of each figure over
    the seeds' rows with that key (a seed without the row or the figure counts as no value; ``values`` are in
    the order of ``per_seed``)."""
    groups: dict[tuple[Any, ...], dict[int, dict[str, Any]]] = {}  # key -> seed index -> row
    for i, rows in enumerate(per_seed):
        for row in rows:
            groups.setdefault(tuple(row[k] for k in keys), {})[i] = row
    out = []
    for key, by_seed in groups.items():
        values = {f: [by_seed.get(i, {}).get(f) for i in range(len(per_seed))] for f in figures}
        out.append({**dict(zip(keys, key, strict=True)), **{f: summarize(values[f]) for f in figures}})
    return out


def number(x: float) -> str:
    """A figure as text: whole numbers with thousands separators from 1000 on (and whole values from 10 on),
    else 3-4 significant digits.

    Example:
        >>> number(8068.4), number(127.34), number(426.0), number(0.51234), number(0.0)
        ('8,068', '127.3', '426', '0.512', '0')
    """
    if x == 0:
        return "0"
    if abs(x) >= 1000 or (abs(x) >= 10 and float(x).is_integer()):
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"


def format_figure(stat: dict[str, Any], seeds: int) -> str:
    """``mean ± sd``; ``mean (n=1)`` from one value; ``(n=k)`` added when fewer than ``seeds`` gave a value;
    ``-`` for none."""
    if stat["mean"] is None:
        return "-"
    if stat["n"] == 1:
        return f"{number(stat['mean'])} (n=1)"
    sd = stat["sd"]
    text = f"{number(stat['mean'])} ± {number(sd) if abs(sd) >= 10 else f'{sd:.2g}'}"
    return text if stat["n"] == seeds else f"{text} (n={stat['n']})"


def machine() -> str:
    """The machine of the report: CPU model, cores and vector flags, torch's version and threads."""
    import torch

    from attnkit.machine import cpu_description

    return f"{cpu_description()}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def run_experiment(exp: Experiment, seeds: Sequence[int], out: Path, command: str,
                   log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run ``exp`` once per seed, aggregate, write ``OUT/<name>.json``, ``.md`` and ``.png``; return the report.

    Args:
        exp: the experiment.
        seeds: the seeds (each passed to ``exp.run``).
        out: the directory of the report (created).
        command: the exact command line, written into the report.
        log: where the progress lines go.

    Returns:
        The JSON report: experiment, title, command, machine, seeds, settings, ``tables`` (aggregated rows),
        ``per_seed`` (each seed's rows), ``seconds`` per seed and ``total_seconds``.
    """
    start, per_seed, seconds = time.perf_counter(), {}, {}
    for i, seed in enumerate(seeds):
        log(f"seed {seed} ({i + 1}/{len(seeds)})")
        began = time.perf_counter()
        per_seed[seed] = exp.run(seed)
        seconds[seed] = round(time.perf_counter() - began, 1)
        left = (time.perf_counter() - start) / (i + 1) * (len(seeds) - i - 1)
        log(f"seed {seed} done in {seconds[seed]:.1f} s" + (f"; about {left:.0f} s left" if left else ""))
    tables = {t.name: aggregate([per_seed[s].get(t.name, []) for s in seeds], t.keys, t.figures) for t in exp.tables}
    report = {"experiment": exp.name, "title": exp.title, "command": command, "machine": machine(),
              "seeds": list(seeds), "settings": exp.settings, "tables": tables,
              "per_seed": {str(s): per_seed[s] for s in seeds}, "seconds": {str(s): seconds[s] for s in seeds},
              "total_seconds": round(time.perf_counter() - start, 1)}
    write_report(exp, report, out)
    return report


def write_report(exp: Experiment, report: dict[str, Any], out: Path) -> list[Path]:
    """``OUT/<name>.json``, ``.md`` and ``.png`` of a report (and ``OUT/<name>-<key>.png`` per extra figure);
    returns their paths."""
    from attnkit.viz.plots import save_figure

    paths = [out / f"{exp.name}.json", out / f"{exp.name}.md", out / f"{exp.name}.png"]
    extras = exp.extra_figures(report) if exp.extra_figures is not None else {}
    write_json(paths[0], report)
    atomic_write_text(paths[1], markdown(exp, report, tuple(f"{exp.name}-{key}.png" for key in extras)))
    save_figure(figure(exp, report), paths[2])
    for key, fig in extras.items():
        paths.append(out / f"{exp.name}-{key}.png")
        save_figure(fig, paths[-1])
    return paths


def markdown(exp: Experiment, report: dict[str, Any], pictures: Sequence[str] = ()) -> str:
    """The Markdown report: title, command, machine, seeds, every table as mean ± sd, the picture (and the
    ``pictures``, file names beside the report)."""
    seeds = report["seeds"]
    lines = [f"# {exp.title}", "", f"Command: `{report['command']}`", "", f"Machine: {report['machine']}", "",
             f"Seeds: {', '.join(map(str, seeds))} (n={len(seeds)}); every figure is the mean ± the sample standard "
             f"deviation over the seeds" + (" (one seed: no standard deviation, marked n=1)" if len(seeds) == 1
                                            else "") + f". Total time {report['total_seconds']} s.", ""]
    for t in exp.tables:
        if not report["tables"][t.name]:
            lines += [f"## {t.title}", "", "Not measured in this run.", ""]
            continue
        lines += [f"## {t.title}", "", "| " + " | ".join((*t.keys, *t.figures)) + " |",
                  "|" + "---|" * len(t.keys) + "---:|" * len(t.figures)]
        for row in report["tables"][t.name]:
            cells = [str(row[k]) for k in t.keys] + [format_figure(row[f], len(seeds)) for f in t.figures]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", t.note, ""] if t.note else [""]
    settings = ", ".join(f"{k}={v}" for k, v in report["settings"].items())
    lines += [f"Settings: {settings}.", "", f"![{exp.title}]({exp.name}.png)", ""]
    lines += [line for name in pictures for line in (f"![{name}]({name})", "")]
    return "\n".join(lines)


def figure(exp: Experiment, report: dict[str, Any]) -> Any:
    """The panels of ``exp`` as one matplotlib figure: means with error bars of one standard deviation."""
    from matplotlib.figure import Figure

    cols = min(2, len(exp.panels))
    nrows = max(1, math.ceil(len(exp.panels) / max(cols, 1)))
    fig = Figure(figsize=(5.5 * max(cols, 1), 4 * nrows))
    axes = fig.subplots(nrows, max(cols, 1), squeeze=False).ravel()
    for ax, panel in zip(axes, exp.panels, strict=False):
        series: dict[str, list[tuple[float, float, float]]] = {}
        for row in report["tables"][panel.table]:
            if panel.where is not None and not panel.where(row):
                continue
            stat = row[panel.y]
            if stat["mean"] is not None:
                name = dict(panel.names).get(" ".join(str(row[k]) for k in panel.series),
                                             " ".join(str(row[k]) for k in panel.series))
                series.setdefault(name, []).append((row[panel.x], stat["mean"], stat["sd"] or 0.0))
        for name, points in series.items():
            categories = any(isinstance(p[0], str) for p in points)
            xs, ys, sds = zip(*(points if categories else sorted(points)), strict=True)
            ax.errorbar(xs, ys, yerr=sds, marker="o", capsize=3, label=name, linestyle="none" if categories else "-")
            if categories:
                ax.tick_params(axis="x", labelrotation=60, labelsize=7)
        ax.set_xlabel(panel.xlabel or panel.x)
        ax.set_ylabel(panel.ylabel or panel.y)
        if panel.log_x:
            ax.set_xscale("log", base=2)
        if panel.log_y:
            ax.set_yscale("log")
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=7)
    for ax in axes[len(exp.panels):]:
        ax.set_visible(False)
    from attnkit.viz._ticks import wrap_title

    title = f"{exp.title} (mean ± sd over seeds {', '.join(map(str, report['seeds']))})"
    fig.suptitle(wrap_title(title, fig.get_figwidth() * 0.95))
    fig.tight_layout()
    return fig


__all__ = ["Experiment", "Panel", "Rows", "Table", "aggregate", "format_figure", "machine", "markdown", "number",
           "parse_seeds", "run_experiment", "summarize", "write_report"]
