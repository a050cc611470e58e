"""``attnkit demo``: train a Bahdanau encoder-decoder on the dates task in about a minute and show it.

What it does (``make demo`` runs it):

1. generates the ``dates`` task (dates in six languages and many formats -> ISO 8601); the test split's
   dates never appear in training, in any format;
2. trains a small character-level Bahdanau model (bidirectional GRU encoder, GRU decoder) with AdamW,
   warmup and cosine decay, evaluating exact match on a validation split as it goes;
3. scores the held-out test split (greedy and beam search), prints a few translations with their
   alignment heatmaps, and trains the fixed-context model (``attention="none"``) with the same number of
   steps for contrast;
4. writes ``OUT/model/`` (``attnkit.load`` reads it), ``OUT/alignment_*.png``, ``OUT/summary.json`` (held-out
   exact match under ``exact_match``) and ``OUT/summary.md``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import typer
from rich.console import Console
from rich.table import Table

from attnkit.cli.main import app
from attnkit.cli.seq2seq import (
    RunSpec,
    build_model,
    build_tokenizers,
    load_split,
    predict,
    print_alignment,
    score,
    train_model,
    translate_detailed,
)
from attnkit.errors import InputError
from attnkit.models.base import atomic_write_text
from attnkit.training import TrainConfig

console = Console()
CONTRAST_DEADLINE = 140.0  # seconds since the start by which the contrast model must stop training


@dataclass
class DemoSettings:
    """The demo's recipe (``--quick`` shrinks it to a smoke test)."""

    train_size: int = 20_000  # training pairs
    valid_size: int = 500  # validation pairs decoded at each evaluation
    test_size: int = 2_000  # held-out pairs scored at the end
    embed_dim: int = 32
    hidden_dim: int = 64  # 32 units per encoder direction
    attention_dim: int = 64
    batch_size: int = 256
    lr: float = 5e-3
    warmup: int = 50
    steps: int = 1000  # cosine schedule length; training usually stops far earlier (patience)
    eval_every: int = 100
    patience: int = 2  # evaluations without improvement before stopping (1.0 cannot be improved)
    time_budget: float = 90.0  # seconds of training for the attention model
    contrast: bool = True  # also train attention="none" with the same number of steps
    examples: int = 4  # translations shown with heatmaps


QUICK = DemoSettings(train_size=1_000, valid_size=50, test_size=100, embed_dim=16, hidden_dim=32,
                     attention_dim=32, batch_size=64, steps=20, eval_every=10, patience=None,
                     time_budget=30.0, examples=2)


def _pick_examples(pairs: list[tuple[str, str]], n: int, max_chars: int) -> list[tuple[str, str]]:
    """``n`` test pairs spread over the range of source lengths up to ``max_chars`` (so heatmaps fit)."""
    ordered = sorted(pairs, key=lambda p: (len(p[0]), p[0]))
    ordered = [p for p in ordered if len(p[0]) <= max_chars] or ordered[:1]
    if n <= 1:
        return ordered[-1:]
    picks = [ordered[round(q * (len(ordered) - 1))] for q in [(i + 1) / n for i in range(n)]]
    seen, out = set(), []
    for p in picks:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _train_one(attention: str, s: DemoSettings, train, valid, steps: int, budget: float, seed: int,
               device: str, label: str):
    src_tok, tgt_tok = build_tokenizers(RunSpec(data="dates", seed=seed), train)
    model = build_model(src_tok, tgt_tok, train, attention=attention, embed_dim=s.embed_dim,
                        hidden_dim=s.hidden_dim, attention_dim=s.attention_dim, seed=seed)
    console.print(f"[bold]{label}[/]: {model.num_parameters():,} parameters, up to {steps} steps "
                  f"(batch {s.batch_size}) or {budget:.0f} s")
    config = TrainConfig(steps=steps, lr=s.lr, schedule="cosine", warmup_steps=min(s.warmup, steps),
                         min_lr_ratio=0.05, weight_decay=0.0, eval_every=s.eval_every, patience=s.patience,
                         metric="exact_match", mode="max", seed=seed, out_dir=None, device=device,
                         time_budget=budget, log_every=10, restore_best=False)  # keep the last (ties: later)
    result = train_model(model, train, valid, config, s.batch_size, seed, bucket_size=None)  # mixed batches
    return model, result


def _markdown(summary: dict[str, Any]) -> str:
    lines = ["# attnkit demo: dates -> ISO 8601 with Bahdanau attention", "",
             f"Held-out test split: {summary['test_size']} dates never seen in training (in any format).", "",
             "| model | steps | training time (s) | exact match (greedy) | exact match (beam 3) |",
             "|---|---:|---:|---:|---:|"]
    rows = [summary] + ([summary["contrast"]] if summary.get("contrast") else [])
    for r in rows:
        beam = f"{r['exact_match_beam']:.4f}" if r.get("exact_match_beam") is not None else "-"
        lines.append(f"| {r['attention']} | {r['steps']} | {r['train_seconds']:.1f} | {r['exact_match']:.4f} "
                     f"| {beam} |")
    lines += ["", f"Token accuracy {summary['token_accuracy']:.4f}, BLEU {summary['bleu']:.2f} "
              f"(character-level). Whole command: {summary['total_seconds']:.1f} s.", "",
              "## Examples", "", "| input | output | reference |", "|---|---|---|"]
    lines += [f"| {e['input']} | {e['output']} | {e['reference']} |" for e in summary["examples"]]
    lines += ["", "Alignment heatmaps: " + ", ".join(f"`{p}`" for p in summary["alignment_pngs"]), "",
              "Load the model: `attnkit.load(\"model\")`, then `model.translate([\"4 de marzo de 2031\"])`.", ""]
    return "\n".join(lines)


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("attnkit-demo"), "--out", help="Where to write model/, the PNGs and the summary."),
    quick: bool = typer.Option(False, "--quick", help="A tiny smoke-test run (seconds; low accuracy)."),
    steps: int | None = typer.Option(None, "--steps", help="Override the number of training steps."),
    time_budget: float | None = typer.Option(None, "--time-budget", help="Seconds of training for the "
                                             "attention model (the contrast model gets the same)."),
    contrast: bool = typer.Option(True, "--contrast/--no-contrast", help="Also train the no-attention model "
                                  "with the same number of steps, for comparison."),
    seed: int = typer.Option(0, "--seed", help="Seed of data, initialisation and sampling."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    threads: int = typer.Option(1, "--threads", help="CPU threads for torch. 1 is fastest for this small "
                                "model, and far faster than more when other programs share the cores."),
) -> None:
    """Train a Bahdanau model on dates to >= 99.5% held-out exact match, show alignments, save it all."""
    start = time.perf_counter()
    s = DemoSettings(**asdict(QUICK if quick else DemoSettings()))
    if steps is not None:
        if steps < 1:
            raise InputError(f"--steps must be >= 1. Received: {steps}")
        s.steps = steps
    if time_budget is not None:
        if time_budget <= 0:
            raise InputError(f"--time-budget must be > 0. Received: {time_budget}")
        s.time_budget = time_budget
    s.contrast = contrast
    if threads < 1:
        raise InputError(f"--threads must be >= 1. Received: {threads}")
    torch.set_num_threads(threads)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} exists and is not a directory")

    console.rule("[bold]attnkit demo: dates -> ISO 8601 with Bahdanau attention")
    spec = RunSpec(data="dates", seed=seed)
    train = load_split(spec, "train", s.train_size)
    valid = load_split(spec, "validation", s.valid_size)
    test = load_split(spec, "test", s.test_size)
    console.print(f"data: {len(train)} training pairs, {len(valid)} validation, {len(test)} held-out test "
                  f"(test dates never appear in training). e.g. {train[0][0]!r} -> {train[0][1]!r}")

    model, result = _train_one("bahdanau", s, train, valid, s.steps, s.time_budget, seed, device,
                               "Bahdanau attention")
    test_src = [p[0] for p in test]
    preds = predict(model, test_src)
    scores = score(model, test, preds, buckets=10)
    beam_preds = predict(model, test_src, beam_size=3)
    beam_em = score(model, test, beam_preds)["exact_match"]
    train_seconds = result.elapsed
    console.print(f"held-out exact match: [bold green]{scores['exact_match']:.4f}[/] greedy, {beam_em:.4f} "
                  f"beam 3 ({result.steps} steps, {train_seconds:.1f} s of training)")

    # Translations with their alignments.
    examples = _pick_examples(test, s.examples, max_chars=max(10, (console.width - 12) // 2 - 2))
    detailed = translate_detailed(model, [src for src, _ in examples])
    from attnkit.viz.plots import save_alignment_png

    out.mkdir(parents=True, exist_ok=True)
    pngs = []
    for k, item in enumerate(detailed, start=1):
        print_alignment(item, console)
        path = out / f"alignment_{k}.png"
        save_alignment_png(item["alignment"], item["rows"], item["cols"], path,
                           title=f"{item['input']} -> {item['output']}")
        pngs.append(path.name)
    model.save(out / "model")

    summary: dict[str, Any] = {
        "task": "dates", "attention": "bahdanau", "exact_match": scores["exact_match"],
        "exact_match_beam": beam_em, "beam_size": 3, "token_accuracy": scores["token_accuracy"],
        "bleu": scores["bleu"], "by_length": scores["by_length"], "test_size": len(test),
        "train_size": len(train), "steps": result.steps, "train_seconds": round(train_seconds, 2),
        "stop_reason": result.stop_reason, "parameters": model.num_parameters(),
        "model_config": asdict(model.config), "validation_history": result.history, "seed": seed,
        "torch_threads": torch.get_num_threads(), "quick": quick,
        "examples": [{"input": d["input"], "output": d["output"], "reference": ref}
                     for d, (_, ref) in zip(detailed, examples, strict=True)],
        "alignment_pngs": pngs, "model_dir": "model", "contrast": None,
    }

    if s.contrast:
        console.rule("[bold]the same budget without attention (one fixed context vector)")
        # Same number of steps; the clock budget is capped so the whole command stays well under 3 minutes.
        budget = max(10.0, min(s.time_budget, CONTRAST_DEADLINE - (time.perf_counter() - start)))
        base, base_result = _train_one("none", s, train, valid, result.steps, budget, seed, device,
                                       "no attention")
        base_preds = predict(base, test_src)
        base_scores = score(base, test, base_preds)
        summary["contrast"] = {"attention": "none", "exact_match": base_scores["exact_match"],
                               "token_accuracy": base_scores["token_accuracy"], "steps": base_result.steps,
                               "train_seconds": round(base_result.elapsed, 2),
                               "parameters": base.num_parameters()}
        console.print(f"no attention, same steps: held-out exact match {base_scores['exact_match']:.4f}")

    summary["total_seconds"] = round(time.perf_counter() - start, 2)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "summary.md", _markdown(summary))

    table = Table(title="held-out dates (never seen in training)")
    for col in ("model", "steps", "train s", "exact match"):
        table.add_column(col, justify="right")
    table.add_row("Bahdanau", str(result.steps), f"{train_seconds:.1f}", f"{scores['exact_match']:.4f}")
    if summary["contrast"]:
        c = summary["contrast"]
        table.add_row("no attention", str(c["steps"]), f"{c['train_seconds']:.1f}", f"{c['exact_match']:.4f}")
    console.print(table)
    console.print(f"wrote {out}/model/, {', '.join(pngs)}, summary.json, summary.md "
                  f"({summary['total_seconds']:.1f} s in all)")
