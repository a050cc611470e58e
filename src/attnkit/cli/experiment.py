"""``attnkit experiment length``: score against input length, with and without attention.

The recipe (``attnkit.training.recipes.run_length_experiment``) trains ``attention="none"`` and
``attention="bahdanau"`` with equal budgets on a task with a wide range of input lengths (default:
``reverse`` strings of 5-60 symbols) and scores both per input-length bucket. This command writes::

    OUT/length.json   per-bucket exact match and token accuracy of both models, plus the settings
    OUT/length.md     the same as a Markdown table
    OUT/length.png    exact match against input length, one line per model
    OUT/length_token_accuracy.png   the same for token accuracy (a smoother picture of the decline)
    OUT/<attention>/model/   the trained models (``attnkit.load``)
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
from attnkit.cli._run import say
from attnkit.cli.main import experiment_app
from attnkit.errors import InputError
from attnkit.storage import atomic_write_text, write_json
from attnkit.training.recipes.length import (  # noqa: F401  (length_table re-exported)
    MODELS,
    LengthResult,
    LengthSettings,
    length_markdown,
    length_table,
    run_length_experiment,
)

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
    hidden_dim: Annotated[int, typer.Option("--hidden-dim", help="Decoder/annotation size of both models.")] = 128,
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
                       hidden_dim=hidden_dim, embed_dim=embed_dim, lr=lr, train_size=train_size,
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
