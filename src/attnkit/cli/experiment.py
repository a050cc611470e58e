"""``attnkit experiment length``: score against input length, with and without attention.

The recipe (``attnkit.experiments.run_length_experiment``) trains ``attention="none"`` and
``attention="bahdanau"`` with equal budgets on a task with a wide range of input lengths (default:
``reverse`` strings of 5-60 symbols) and scores both per input-length bucket. This command writes::

    OUT/length.json   per-bucket exact match and token accuracy of both models, plus the settings
    OUT/length.md     the same as a Markdown table
    OUT/length.png    exact match against input length, one line per model
    OUT/length_token_accuracy.png   the same for token accuracy (a smoother picture of the decline)
    OUT/<attention>/model/   the trained models (``attnkit.load``)

``attnkit experiment efficiency`` (``attnkit.experiments.run_efficiency``) trains the same small GPT
with each attention kind on a long-range (copy) and a local task at several lengths, times the attention
alone up to long lengths, and writes::

    OUT/efficiency.json   every run (accuracy, ms/step, tokens/s, step memory), the timing, the crossovers
    OUT/efficiency.md     the same as Markdown tables
    OUT/efficiency.png    accuracy, training time and memory against length, attention time with crossovers
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table

from attnkit.cli._options import Device, Seed
from attnkit.cli._run import say, set_threads
from attnkit.cli.main import experiment_app
from attnkit.errors import InputError
from attnkit.experiments.efficiency import (
    EfficiencyResult,
    EfficiencySettings,
    efficiency_markdown,
    run_efficiency,
)
from attnkit.experiments.length import (  # noqa: F401  (length_table re-exported)
    MODELS,
    LengthResult,
    LengthSettings,
    length_markdown,
    length_table,
    run_length_experiment,
)
from attnkit.storage import atomic_write_text, write_json

console = Console()


def _write(out: Path, result: LengthResult, width: int) -> None:
    """The two models, both plots, ``length.json`` and ``length.md``."""
    from attnkit.viz.plots import save_line_plot

    for attention, model in result.models.items():
        model.save(out / attention / "model")
    rows, task = result.rows, result.report["settings"]["task"]
    xs = [r["low"] + width / 2 for r in rows]
    for metric, name, title in (("exact_match", "length.png", "score against input length (equal budgets)"),
                                ("token_accuracy", "length_token_accuracy.png", "token accuracy against input length")):
        series = {m: (xs, [r.get(f"{m}_{metric}", 0.0) for r in rows]) for m in MODELS}
        save_line_plot(series, out / name, xlabel="input length (characters, bucket centre)",
                       ylabel=metric.replace("_", " "), title=f"{task}: {title}", ylim=(0.0, 1.02))
    write_json(out / "length.json", result.report)
    atomic_write_text(out / "length.md", length_markdown(rows, result.report["settings"]))


def _table(result: LengthResult) -> Table:
    table = Table(title=f"{result.report['settings']['task']}: exact match (token accuracy) by input length")
    table.add_column("length", justify="right")
    table.add_column("pairs", justify="right")
    for m in MODELS:
        table.add_column(m, justify="right")
    for r in result.rows:
        table.add_row(r["bucket"], str(r["count"]), *[f"{r.get(f'{m}_exact_match', 0):.3f} "
                                                      f"({r.get(f'{m}_token_accuracy', 0):.3f})" for m in MODELS])
    return table


@experiment_app.command("length")
def length(
    out: Annotated[Path, typer.Option("--out", help="Where to write length.json/.md/.png and the two "
                                      "models.")] = Path("attnkit-length"),
    task: Annotated[str, typer.Option("--task", help="Built-in task with variable lengths: reverse, copy, sort or "
                                      "numbers.")] = "reverse",
    min_len: Annotated[int, typer.Option("--min-len", help="Shortest input (characters; digits for "
                                         "numbers).")] = 5,
    max_len: Annotated[int, typer.Option("--max-len", help="Longest input (training and test).")] = 60,
    steps: Annotated[int, typer.Option("--steps", help="Training steps of each model (the equal budget).")] = 1500,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Pairs per batch.")] = 128,
    d_model: Annotated[int, typer.Option("--d-model", help="Decoder/annotation size (model width) of both "
                                         "models.")] = 128,
    embed_dim: Annotated[int, typer.Option("--embed-dim", help="Embedding size of both models.")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (warmup then cosine decay).")] = 3e-3,
    train_size: Annotated[int, typer.Option("--train-size", help="Training pairs.")] = 50_000,
    test_size: Annotated[int, typer.Option("--test-size", help="Held-out pairs scored per model.")] = 1_000,
    bucket_width: Annotated[int, typer.Option("--bucket-width", help="Width of the input-length buckets.")] = 10,
    seed: Seed = 0,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads for torch.")] = 1,
    quick: Annotated[bool, typer.Option("--quick", help="A tiny smoke-test run (seconds; no real gap).")] = False,
    device: Device = "auto",
) -> None:
    """Train no-attention and Bahdanau models with equal budgets; plot score against input length."""
    s = LengthSettings(task=task, min_len=min_len, max_len=max_len, steps=steps, batch_size=batch_size,
                       hidden_dim=d_model, embed_dim=embed_dim, lr=lr, train_size=train_size,
                       test_size=test_size, bucket_width=bucket_width, seed=seed)
    s = s.quick() if quick else s
    s.check()
    if threads < 1:
        raise InputError(f"--threads must be >= 1. Received: {threads}")
    torch.set_num_threads(threads)
    start = time.perf_counter()
    result = run_length_experiment(s, device=device, log=lambda m: say(m, console), section=console.rule)
    result.report["total_seconds"] = round(time.perf_counter() - start, 1)
    _write(out, result, s.bucket_width)
    console.print(_table(result))
    console.print(f"wrote {out}/length.png, length_token_accuracy.png, length.md, length.json "
                  f"({result.report['total_seconds']} s)")


def _ints(text: str | None, flag: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"{flag} must be comma-separated integers. Received: {text!r}") from None


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(x.strip() for x in text.split(",") if x.strip())


def _plot_efficiency(result: EfficiencyResult, path: Path) -> None:
    """Four panels against length: accuracy (copy solid, local dashed), ms per training step, step memory,
    and the attention's own time (log-log) with each kind's crossover marked."""
    from matplotlib.figure import Figure

    from attnkit.viz.plots import save_figure

    fig = Figure(figsize=(11, 8))
    axes = fig.subplots(2, 2)
    kinds = list(dict.fromkeys(r["kind"] for r in result.rows))
    colors = {k: f"C{i}" for i, k in enumerate(dict.fromkeys([*kinds, *(r["kind"] for r in result.timing)]))}
    panels = ((axes[0, 0], "accuracy", "accuracy (predictable tokens)"),
              (axes[0, 1], "seconds_per_step", "seconds per training step"),
              (axes[1, 0], "step_memory_mib", "step working memory (MiB)"))
    for ax, key, label in panels:
        for kind in kinds:
            for task, style in (("copy", "-"), ("local", "--")):
                pts = [(r["length"], r[key]) for r in result.rows if r["kind"] == kind and r["task"] == task
                       and r[key] is not None]
                if pts:
                    ax.plot(*zip(*pts, strict=True), style, marker="o", color=colors[kind], label=f"{kind} {task}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length")
        ax.set_ylabel(label)
    axes[0, 0].legend(fontsize=7)
    ax = axes[1, 1]
    for kind in dict.fromkeys(r["kind"] for r in result.timing):
        pts = [(r["length"], r["seconds"] * 1000) for r in result.timing if r["kind"] == kind]
        ax.plot(*zip(*pts, strict=True), marker="o", color=colors[kind], label="full (SDPA)" if kind == "full" else kind)
    for c in result.crossovers:
        if c["where"] == "measured":
            ax.axvline(c["length"], color=colors[c["kind"]], linestyle=":", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length (1 head, width 64, causal)")
    ax.set_ylabel("attention fwd+bwd (ms); dotted: crossover")
    ax.legend(fontsize=7)
    fig.suptitle("Attention kinds: quality, time and memory against length")
    fig.tight_layout()
    save_figure(fig, path)


@experiment_app.command("efficiency")
def efficiency(
    out: Annotated[Path, typer.Option("--out", help="Where to write efficiency.json/.md/.png.")] = Path(
        "attnkit-efficiency"),
    quick: Annotated[bool, typer.Option("--quick", help="A small run of about a minute or two (a smoke test).")] = False,
    kinds: Annotated[str | None, typer.Option("--kinds", help="Comma-separated kinds (default: full, "
                                              "sliding_window, block_sparse, linear, performer).")] = None,
    tasks: Annotated[str | None, typer.Option("--tasks", help="Comma-separated tasks: copy (long range), "
                                              "local.")] = None,
    lengths: Annotated[str | None, typer.Option("--lengths", help="Comma-separated training lengths "
                                                "(default 64,128,256,512; quick 64,128).")] = None,
    timing_lengths: Annotated[str | None, typer.Option("--timing-lengths", help="Comma-separated lengths of "
                                                       "the attention-only timing (default 256 .. 16384).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps of each run.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Sequences per batch.")] = None,
    d_model: Annotated[int | None, typer.Option("--d-model", help="Model width of the GPT.")] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="Attention heads.")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Blocks.")] = None,
    window: Annotated[int | None, typer.Option("--window", help="Sliding window: keys on each side.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")] = None,
    memory: Annotated[bool, typer.Option("--memory/--no-memory", help="Measure each training step's peak "
                                         "memory in a child process.")] = True,
    seed: Seed = 0,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads for torch.")] = 1,
    device: Device = "cpu",
) -> None:
    """Train a small GPT with each attention kind at several lengths; table and plot of quality, time, memory."""
    s = EfficiencySettings(seed=seed)
    s = s.quick() if quick else s
    given = {"kinds": _names(kinds), "tasks": _names(tasks), "lengths": _ints(lengths, "--lengths"),
             "timing_lengths": _ints(timing_lengths, "--timing-lengths"), "steps": steps, "batch_size": batch_size,
             "d_model": d_model, "heads": heads, "layers": layers, "window": window, "lr": lr, "memory": memory}
    s = EfficiencySettings(**{**s.__dict__, **{k: v for k, v in given.items() if v is not None}})
    s.check()
    set_threads(threads)
    start = time.perf_counter()
    result = run_efficiency(s, device=device, log=lambda m: say(m, console))
    report = {"settings": result.settings, "runs": result.rows, "timing": result.timing,
              "crossovers": result.crossovers, "total_seconds": round(time.perf_counter() - start, 1),
              "threads": torch.get_num_threads()}
    write_json(out / "efficiency.json", report)
    atomic_write_text(out / "efficiency.md", efficiency_markdown(result))
    _plot_efficiency(result, out / "efficiency.png")
    console.print(efficiency_markdown(result), soft_wrap=True, highlight=False, markup=False)
    console.print(f"wrote {out}/efficiency.png, efficiency.md, efficiency.json ({report['total_seconds']} s)")
