"""``attnkit experiment length``: score against input length, with and without attention.

Bahdanau et al. 2015 (Fig. 2) show that an encoder-decoder that squeezes the source into one fixed
vector degrades as sentences grow, while the attention model holds its score. This command measures
that claim on a task with a wide range of input lengths (default: ``reverse`` strings of 5-60
symbols, whose information grows with the length): it trains ``attention="none"`` and
``attention="bahdanau"`` with the same architecture sizes, data, steps and schedule, scores both on
the same held-out test split per input-length bucket, and writes::

    OUT/length.json   per-bucket exact match and token accuracy of both models, plus the settings
    OUT/length.md     the same as a Markdown table
    OUT/length.png    exact match against input length, one line per model
    OUT/length_token_accuracy.png   the same for token accuracy (a smoother picture of the decline)
    OUT/<attention>/model/   the trained models (``attnkit.load``)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
import typer
from rich.console import Console
from rich.table import Table

from attnkit.cli.main import experiment_app
from attnkit.cli.seq2seq import RunSpec, build_model, build_tokenizers, load_split, predict, train_model
from attnkit.data import BUILTIN_TASKS
from attnkit.errors import InputError
from attnkit.models.base import atomic_write_text
from attnkit.training import TrainConfig
from attnkit.training.metrics import by_length_bucket

console = Console()
MODELS: tuple[str, ...] = ("none", "bahdanau")


def length_table(sources: list[str], refs: list[str], preds: dict[str, list[str]], width: int) -> list[dict[str, Any]]:
    """Rows ``{"bucket", "count", "<model>_exact_match", "<model>_token_accuracy"}`` per length bucket."""
    rows: dict[str, dict[str, Any]] = {}
    for name, p in preds.items():
        for metric in ("exact_match", "token_accuracy"):
            for b in by_length_bucket(sources, p, refs, width, metric=metric, length="chars"):
                row = rows.setdefault(b.label, {"bucket": b.label, "low": b.low, "count": b.count})
                row[f"{name}_{metric}"] = b.score
    return sorted(rows.values(), key=lambda r: r["low"])


def _markdown(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    head = " | ".join(f"{m} exact match | {m} token accuracy" for m in MODELS)
    lines = [f"# Score against input length: {settings['task']}, equal budgets", "",
             f"{settings['steps']} steps of batch {settings['batch_size']} each, hidden size "
             f"{settings['hidden_dim']}; test inputs of {settings['min_len']}-{settings['max_len']} characters.", "",
             f"| input length | pairs | {head} |", "|---|---:|" + "---:|" * (2 * len(MODELS))]
    for r in rows:
        cells = " | ".join(f"{r.get(f'{m}_exact_match', 0):.3f} | {r.get(f'{m}_token_accuracy', 0):.3f}"
                           for m in MODELS)
        lines.append(f"| {r['bucket']} | {r['count']} | {cells} |")
    return "\n".join(lines) + "\n"


@experiment_app.command("length")
def length(
    out: Path = typer.Option(Path("attnkit-length"), "--out", help="Where to write length.json/.md/.png and "
                             "the two models."),
    task: str = typer.Option("reverse", "--task", help="Built-in task with variable lengths: reverse, copy, "
                             "sort or numbers."),
    min_len: int = typer.Option(5, "--min-len", help="Shortest input (characters; digits for numbers)."),
    max_len: int = typer.Option(60, "--max-len", help="Longest input (training and test)."),
    steps: int = typer.Option(1500, "--steps", help="Training steps of each model (the equal budget)."),
    batch_size: int = typer.Option(128, "--batch-size", help="Pairs per batch."),
    hidden_dim: int = typer.Option(128, "--hidden-dim", help="Decoder/annotation size of both models."),
    embed_dim: int = typer.Option(32, "--embed-dim", help="Embedding size of both models."),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate (warmup then cosine decay)."),
    train_size: int = typer.Option(50_000, "--train-size", help="Training pairs."),
    test_size: int = typer.Option(1_000, "--test-size", help="Held-out pairs scored per model."),
    bucket_width: int = typer.Option(10, "--bucket-width", help="Width of the input-length buckets."),
    seed: int = typer.Option(0, "--seed", help="Seed of data, initialisation and sampling."),
    threads: int = typer.Option(1, "--threads", help="CPU threads for torch."),
    quick: bool = typer.Option(False, "--quick", help="A tiny smoke-test run (seconds; no real gap)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
) -> None:
    """Train no-attention and Bahdanau models with equal budgets; plot score against input length."""
    if task not in BUILTIN_TASKS or task == "dates":
        raise InputError(f"--task must be one of reverse, copy, sort, numbers. Received: {task!r}")
    if quick:
        steps, batch_size, hidden_dim, embed_dim = 12, 32, 16, 8
        train_size, test_size, max_len = 500, 60, min(max_len, 20)
    for name, value in (("--steps", steps), ("--batch-size", batch_size), ("--threads", threads),
                        ("--bucket-width", bucket_width), ("--min-len", min_len)):
        if value < 1:
            raise InputError(f"{name} must be >= 1. Received: {value}")
    if max_len < min_len:
        raise InputError(f"--max-len must be >= --min-len. Received: --min-len {min_len}, --max-len {max_len}")
    torch.set_num_threads(threads)
    start = time.perf_counter()
    spec = RunSpec(data=task, seed=seed, min_len=min_len, max_len=max_len)
    train = load_split(spec, "train", train_size)
    valid = load_split(spec, "validation", 200 if not quick else 20)
    test = load_split(spec, "test", test_size)
    sources, refs = [s for s, _ in test], [t for _, t in test]
    console.print(f"{task}: inputs of {min_len}-{max_len}, {len(train)} training pairs, {len(test)} test pairs; "
                  f"{steps} steps per model")
    preds: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    for attention in MODELS:
        src_tok, tgt_tok = build_tokenizers(spec, train)
        model = build_model(src_tok, tgt_tok, train, attention=attention, embed_dim=embed_dim,
                            hidden_dim=hidden_dim, attention_dim=hidden_dim, seed=seed)
        console.rule(f"attention={attention}: {model.num_parameters():,} parameters")
        config = TrainConfig(steps=steps, lr=lr, schedule="cosine", warmup_steps=min(100, steps // 10),
                             min_lr_ratio=0.05, weight_decay=0.0, eval_every=max(1, steps // 5), seed=seed,
                             metric="exact_match", mode="max", out_dir=None, device=device, log_every=10)
        result = train_model(model, train, valid, config, batch_size, seed, bucket_size=8)  # lengths 5-60
        seconds[attention] = round(result.elapsed, 1)
        preds[attention] = predict(model, sources)
        model.save(out / attention / "model")
    rows = length_table(sources, refs, preds, bucket_width)
    settings = {"task": task, "min_len": min_len, "max_len": max_len, "steps": steps, "batch_size": batch_size,
                "hidden_dim": hidden_dim, "embed_dim": embed_dim, "lr": lr, "train_size": len(train),
                "test_size": len(test), "seed": seed, "train_seconds": seconds, "quick": quick}
    overall = {m: sum(p == r for p, r in zip(preds[m], refs, strict=True)) / len(refs) for m in MODELS}
    result_json = {"settings": settings, "exact_match": overall, "buckets": rows,
                   "total_seconds": round(time.perf_counter() - start, 1)}
    from attnkit.viz.plots import save_line_plot

    out.mkdir(parents=True, exist_ok=True)
    series = {m: ([r["low"] + bucket_width / 2 for r in rows], [r.get(f"{m}_exact_match", 0.0) for r in rows])
              for m in MODELS}
    save_line_plot(series, out / "length.png", xlabel="input length (characters, bucket centre)",
                   ylabel="exact match", title=f"{task}: score against input length (equal budgets)",
                   ylim=(0.0, 1.02))
    tokens = {m: (xs, [r.get(f"{m}_token_accuracy", 0.0) for r in rows]) for m, (xs, _) in series.items()}
    save_line_plot(tokens, out / "length_token_accuracy.png", xlabel="input length (characters, bucket centre)",
                   ylabel="token accuracy", title=f"{task}: token accuracy against input length", ylim=(0.0, 1.02))
    atomic_write_text(out / "length.json", json.dumps(result_json, indent=2) + "\n")
    atomic_write_text(out / "length.md", _markdown(rows, settings))
    table = Table(title=f"{task}: exact match (token accuracy) by input length")
    table.add_column("length", justify="right")
    table.add_column("pairs", justify="right")
    for m in MODELS:
        table.add_column(m, justify="right")
    for r in rows:
        table.add_row(r["bucket"], str(r["count"]), *[f"{r.get(f'{m}_exact_match', 0):.3f} "
                                                      f"({r.get(f'{m}_token_accuracy', 0):.3f})" for m in MODELS])
    console.print(table)
    console.print(f"wrote {out}/length.png, length_token_accuracy.png, length.md, length.json ({result_json['total_seconds']} s)")
