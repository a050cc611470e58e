"""``attnkit bench [--quick] [--out DIR] [--compile] [suite ...]``: every benchmark suite in one process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attnkit.cli._options import Threads, apply_threads, flag
from attnkit.cli._run import OverwriteOut, check_out_dir, start_writing
from attnkit.cli.main import app
from attnkit.errors import InputError

_SUITES_HELP = ("Suites to run (default: functional layers models kinds): functional = attention() vs torch "
                "SDPA vs naive; layers = MultiHeadAttention vs torch and Keras; models = GPT/BERT vs transformers "
                "and bfloat16 autocast; kinds = the attention kinds and the 128..32,768-token scaling run; "
                "compile = torch.compile's speed-up.")


BENCH_NAMES = ("bench.json", "bench.md", "scaling_time.png", "scaling_memory.png")
"""What ``attnkit bench`` writes in ``--out`` (``--overwrite`` replaces these and nothing else)."""


@app.command("bench")
def bench(
    suites: Annotated[list[str] | None, typer.Argument(help=_SUITES_HELP, show_default=False)] = None,
    quick: Annotated[bool, flag("--quick", help="A short run of every suite (seconds to a minute).")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Directory to write bench.json, bench.md and the "
                                             "scaling plots into (created).")] = None,
    compile_: Annotated[bool, flag("--compile", help="Also run the compile suite: torch.compile's compile time "
                                   "and speed-up on attnkit models (minutes: compilation is slow).")] = False,
    threads: Threads = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the JSON report to this file.")] = None,
    overwrite: OverwriteOut = False,
) -> None:
    """Measure attnkit on this machine: its matmul limit first, then each suite as ratios against peers.

    Timings interleave the contenders call by call and keep medians, so a busy machine slows them alike;
    the figures are ratios, never absolute promises. Peers that are not installed (Keras, transformers,
    the MiniLM weights) and attention kinds that cannot run are reported as skipped, with the reason,
    never as zero. The models suite runs on one thread; --threads sets the others (0: torch's choice).
    """
    from attnkit.bench.run import DEFAULT_SUITES, SUITES, run_bench  # noqa: PLC0415

    names = list(suites or DEFAULT_SUITES)
    for name in names:
        if name not in SUITES:
            raise InputError(f"unknown benchmark suite {name!r}. Expected one of: {', '.join(SUITES)}")
    if compile_ and "compile" not in names:
        names.append("compile")
    if out is not None:
        check_out_dir(out, BENCH_NAMES, overwrite)
    apply_threads(threads)
    if out is not None:
        start_writing(out, BENCH_NAMES, overwrite)
    report = run_bench(names, quick=quick, out=out, echo=typer.echo)
    if json_out is not None:
        import json  # noqa: PLC0415

        from attnkit.storage import atomic_write_text  # noqa: PLC0415

        atomic_write_text(json_out, json.dumps(report, indent=1, default=str))
    if report["failed"]:
        raise typer.Exit(1)
