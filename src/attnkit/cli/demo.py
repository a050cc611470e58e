"""``attnkit demo``: train a Bahdanau encoder-decoder on the dates task in about a minute and show it.

``make demo`` runs it. The recipe (data, training, scores, contrast model) is
``attnkit.recipes.run_demo``; this command prints its progress, the alignment heatmaps and the
final table, and writes ``OUT/model/`` (``attnkit.load`` reads it), ``OUT/alignment_*.png``,
``OUT/summary.json`` (held-out exact match under ``exact_match``, the attention's alignment error rate
per link rule under ``alignment_error_rate``) and ``OUT/summary.md``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from attnkit.cli._options import DEFAULT_THREADS, Device, Seed, Threads, apply_threads, flag
from attnkit.cli._run import OverwriteOut, check_out_dir, say, start_writing
from attnkit.cli.main import app
from attnkit.cli.seq2seq import print_alignment
from attnkit.recipes.demo import DemoResult, DemoSettings, demo_markdown, demo_settings, run_demo
from attnkit.storage import atomic_write_text, write_json

console = Console()
QUICK_NOTE = ("[yellow]--quick is a smoke test[/]: a tiny model trained for seconds, only to check that everything "
              "runs. Flat heatmaps and outputs like 19-0-0-0 are expected; run `attnkit demo` without --quick "
              "(about a minute) to see attention align the dates.")


def _settings(quick: bool, steps: int | None, time_budget: float | None, contrast: bool) -> DemoSettings:
    s = demo_settings(quick, steps, time_budget, contrast)
    s.example_chars = max(10, (console.width - 12) // 2 - 2)  # heatmaps that fit the terminal
    return s


DEMO_NAMES = ("model", "alignment_*.png", "summary.json", "summary.md")
"""What ``attnkit demo`` writes in ``--out`` (``--overwrite`` replaces these and nothing else)."""


def _write(out: Path, demo: DemoResult) -> list[str]:
    """Write the model, one PNG per example, ``summary.json`` and ``summary.md``; returns the PNG names."""
    from attnkit.viz.plots import save_alignment_png

    pngs = []
    for k, item in enumerate(demo.examples, start=1):
        path = out / f"alignment_{k}.png"
        save_alignment_png(item["alignment"], item["rows"], item["cols"], path,
                           title=f"{item['input']} -> {item['output']}", gold=item.get("gold"))
        pngs.append(path.name)
    demo.model.save(out / "model")
    demo.summary["alignment_pngs"] = pngs
    write_json(out / "summary.json", demo.summary)
    atomic_write_text(out / "summary.md", demo_markdown(demo.summary))
    return pngs


def _table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"held-out dates (never seen in training), seed {summary['seed']}")
    for col in ("model", "steps", "train s", "exact match", "AER (argmax)"):
        table.add_column(col, justify="right")
    table.add_row("Bahdanau", str(summary["steps"]), f"{summary['train_seconds']:.1f}",
                  f"{summary['exact_match']:.4f}", f"{summary['alignment_error_rate']['argmax']:.4f}")
    if summary["contrast"]:
        c = summary["contrast"]
        table.add_row("no attention", str(c["steps"]), f"{c['train_seconds']:.1f}", f"{c['exact_match']:.4f}", "-")
    return table


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where to write model/, the PNGs and the "
                                      "summary.")] = Path("attnkit-demo"),
    quick: Annotated[bool, flag("--quick", help="A tiny smoke-test run (seconds; low accuracy).")] = False,
    steps: Annotated[int | None, typer.Option("--steps", help="Override the number of training steps.")] = None,
    time_budget: Annotated[float | None, typer.Option("--time-budget", help="Seconds of training for the "
                                                      "attention model (the contrast model gets the "
                                                      "same).")] = None,
    contrast: Annotated[bool, flag("--contrast/--no-contrast", help="Also train the no-attention model "
                                           "with the same number of steps, for comparison.")] = True,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = DEFAULT_THREADS,
    overwrite: OverwriteOut = False,
) -> None:
    """Train a Bahdanau model on dates to >= 99.5% held-out exact match, show alignments, save it all."""
    start = time.perf_counter()
    s = _settings(quick, steps, time_budget, contrast)
    apply_threads(threads)
    check_out_dir(out, DEMO_NAMES, overwrite)  # before a minute of training, not after
    console.rule("[bold]attnkit demo: dates -> ISO 8601 with Bahdanau attention")
    if quick:
        console.print(QUICK_NOTE)
    result = run_demo(s, seed=seed, device=device, log=lambda m: say(m, console),
                      section=lambda m: console.rule(f"[bold]{m}"), show=lambda item: print_alignment(item, console))
    result.summary["total_seconds"] = round(time.perf_counter() - start, 2)
    start_writing(out, DEMO_NAMES, overwrite)
    pngs = _write(out, result)
    console.print(_table(result.summary))
    console.print(f"wrote {out}/model/, {', '.join(pngs)}, summary.json, summary.md "
                  f"(seed {seed}, {result.summary['total_seconds']:.1f} s in all)")
    if quick:
        console.print(QUICK_NOTE)
