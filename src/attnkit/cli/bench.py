"""``attnkit bench``: the benchmark suites, measured as ratios against peers in one run."""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from attnkit.cli.main import app
from attnkit.errors import InputError

SUITES = {
    "functional": "attnkit.bench.functional",  # attention() vs torch SDPA vs naive; chunked additive memory
    "layers": "attnkit.bench.layers",  # MultiHeadAttention vs torch.nn.MultiheadAttention vs Keras
    "models": "attnkit.bench.models",  # GPT / BERT vs Hugging Face transformers
}


@app.command("bench")
def bench(
    suite: str = typer.Argument("functional", help=f"Which suite to run: {', '.join(SUITES)}."),
    quick: bool = typer.Option(False, "--quick", help="A short run with fewer sizes and repeats."),
    json_out: Path = typer.Option(None, "--json", help="Also write the results as JSON to this file."),
) -> None:
    """Run a benchmark suite and print its table of time (and memory) ratios against the peers.

    Timings interleave the contenders call by call and keep medians, so a busy machine slows them alike;
    the figures are ratios, never absolute promises. Peers that are not installed (Keras, transformers)
    are reported as missing.
    """
    if suite not in SUITES:
        raise InputError(f"unknown benchmark suite {suite!r}. Expected one of: {', '.join(SUITES)}")
    try:
        module = importlib.import_module(SUITES[suite])
    except ModuleNotFoundError as exc:
        raise InputError(f"suite {suite!r} needs a package that is not installed: {exc.name}") from None
    argv = (["--quick"] if quick else []) + (["--json", str(json_out)] if json_out else [])
    code = module.main(argv)
    if code:
        raise typer.Exit(code)
