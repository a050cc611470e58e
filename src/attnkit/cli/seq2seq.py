"""``attnkit train seq2seq``, ``attnkit translate`` and ``attnkit evaluate``.

The recipe (data, tokenizers, model, training, decoding, scores) is
``attnkit.recipes.seq2seq``; the run directory is handled by ``attnkit.cli._run``. This module
only parses options.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from attnkit.cli import _run
from attnkit.cli._options import (
    DEFAULT_THREADS,
    BatchSize,
    Beam,
    Data,
    Device,
    EvalEvery,
    Lr,
    MaxLen,
    MinLen,
    ModelDir,
    OnError,
    Out,
    Overwrite,
    Patience,
    Quiet,
    Resume,
    Schedule,
    Seed,
    Steps,
    TestMaxLen,
    Threads,
    TimeBudget,
    TokenizerScheme,
    TrainSize,
    ValidSize,
    VocabLimit,
    Warmup,
    apply_threads,
    flag,
)
from attnkit.cli._run import RUN_FILE, check_run_dir, resolve_model_dir, say
from attnkit.cli.main import app, train_app
from attnkit.data.reading import batched, check_input_file, iter_lines
from attnkit.errors import CheckpointError, InputError
from attnkit.models.seq2seq import ATTENTIONS, Seq2Seq
from attnkit.recipes.alignment import alignment_scores, check_alignable
from attnkit.recipes.seq2seq import (
    RunSpec,
    load_split,
    predict,
    prepare_seq2seq,
    score,
    translate_detailed,
)
from attnkit.storage import read_model_config, write_json
from attnkit.training.runtime import resolve_device

out_console = Console()

TRANSLATORS: tuple[str, ...] = ("seq2seq", "transformer")
"""Model kinds ``translate`` and ``evaluate`` accept: each has ``translate``, ``encode_texts`` and ``generate``."""


def load_seq2seq(path: str | Path) -> Seq2Seq:
    """Load a saved sequence-to-sequence model (a run directory or its ``model/``) with its tokenizers.

    Any model_type in ``TRANSLATORS`` is accepted (``Seq2Seq`` or ``Transformer``); others get a clear error.
    """
    from attnkit.io import load

    directory = resolve_model_dir(path)
    model_type = read_model_config(directory)["model_type"]
    if model_type not in TRANSLATORS:
        raise CheckpointError(f"{str(directory)!r} holds a {model_type!r} model; this command needs a "
                              f"sequence-to-sequence model ({', '.join(TRANSLATORS)})")
    model = load(directory)
    for name in ("source", "target"):
        if name not in model.tokenizers:
            raise CheckpointError(f"model directory {str(directory)!r} is incomplete: no tokenizer_{name}.json")
    return model


def print_alignment(item: dict[str, Any], target: Console | None = None) -> None:
    """Print one translation and its alignment heatmap (rows = output tokens, columns = input tokens)."""
    from attnkit.viz.terminal import heatmap_table

    c = target or out_console
    c.print(f"[bold]{item['input']}[/] -> [bold green]{item['output']}[/]")
    if item["alignment"] is not None and item["alignment"].numel():
        c.print(heatmap_table(item["alignment"], item["rows"], item["cols"]))


# ----------------------------------------------------------------------------------------------------------
# attnkit train seq2seq
# ----------------------------------------------------------------------------------------------------------

LocalWindowSize = Annotated[int, typer.Option("--local-window", help="Half-width W of the luong-local-m and "
                                              "luong-local-p windows [p - W, p + W] (local-m: p = the decoder "
                                              "step).")]
InputFeeding = Annotated[bool, flag("--input-feeding/--no-input-feeding", help="Luong attention only: feed the "
                                    "previous attentional state o_{i-1} to the decoder cell beside the previous "
                                    "word (Luong et al. 2015); --no-input-feeding reads the word only.")]



@train_app.command("seq2seq")
def train_seq2seq(
    data: Data,
    out: Out,
    attention: Annotated[str, typer.Option("--attention", help=f"Attention: {', '.join(ATTENTIONS)}. 'none' is "
                                           "the fixed-context encoder-decoder.")] = "bahdanau",
    cell: Annotated[str, typer.Option("--cell", help="Recurrent cell of encoder and decoder: gru or lstm.")] = "gru",
    tokenizer: TokenizerScheme = None,
    vocab_size: VocabLimit = None,
    steps: Steps = 2000,
    batch_size: BatchSize = 128,
    lr: Lr = 3e-3,
    schedule: Schedule = "cosine",
    warmup: Warmup = 100,
    embed_dim: Annotated[int, typer.Option("--embed-dim", help="Embedding size E.")] = 64,
    d_model: Annotated[int, typer.Option("--d-model", help="Model width D: decoder state and annotation size "
                                         "(half per encoder direction; even).")] = 128,
    attention_dim: Annotated[int, typer.Option("--attention-dim", help="Bahdanau alignment-model size A.")] = 128,
    local_window: LocalWindowSize = 10,
    input_feeding: InputFeeding = True,
    layers: Annotated[int, typer.Option("--layers", help="Stacked bidirectional encoder layers.")] = 1,
    dropout: Annotated[float, typer.Option("--dropout", help="Dropout on embeddings and the readout.")] = 0.0,
    train_size: TrainSize = None,
    valid_size: ValidSize = 500,
    min_len: MinLen = None,
    max_len: MaxLen = None,
    test_max_len: TestMaxLen = None,
    bucket_size: Annotated[int | None, typer.Option("--bucket-size", help="Group batches by input length within "
                                                    "chunks of N batches (faster for very mixed lengths; "
                                                    "default: random batches).")] = None,
    eval_every: EvalEvery = 200,
    patience: Patience = None,
    time_budget: TimeBudget = None,
    seed: Seed = 0,
    resume: Resume = False,
    overwrite: Overwrite = False,
    on_error: OnError = "raise",
    device: Device = "auto",
    quiet: Quiet = False,
    threads: Threads = DEFAULT_THREADS,
) -> None:
    """Train an RNN encoder-decoder (with or without attention) and save it in --out."""
    started = time.perf_counter()
    apply_threads(threads)
    check_run_dir(out, resume, overwrite)
    config = _run.train_config(out, steps=steps, lr=lr, schedule=schedule, warmup=warmup, eval_every=eval_every,
                               patience=patience, seed=seed, quiet=quiet, device=device, time_budget=time_budget,
                               resume=resume)
    spec = _run.resume_spec(out, resume, RunSpec(data=data, seed=seed, tokenizer=tokenizer, vocab_size=vocab_size,
                                                 min_len=min_len, max_len=max_len, test_max_len=test_max_len,
                                                 on_error=on_error), "data")
    model = {"attention": attention, "cell": cell, "embed_dim": embed_dim, "hidden_dim": d_model,
             "attention_dim": attention_dim, "encoder_layers": layers, "dropout": dropout,
             "local_window": local_window, "input_feeding": input_feeding}
    _run.check_resume_model(out, resume, model, {"hidden_dim": "d_model", "encoder_layers": "layers"})
    run = prepare_seq2seq(spec, config, model, batch_size=batch_size, train_size=train_size,
                          valid_size=valid_size, bucket_size=bucket_size, log=say)
    run.started = started
    _run.run_training(out, spec, run, overwrite=overwrite)


# ----------------------------------------------------------------------------------------------------------
# attnkit translate
# ----------------------------------------------------------------------------------------------------------


TRANSLATE_BATCH = 64
"""Inputs translated and printed at a time: memory stays bounded whatever the size of ``--file``."""


def _inputs(texts: list[str] | None, file: Path | None) -> Iterator[str]:
    """The arguments, then every line of ``--file`` as it is read (one pass: ``--file`` may be a pipe); blank
    lines stay (as blank outputs). ``InputError`` before anything is yielded when there is no text at all."""
    stream: Iterator[str] = iter(texts or [])
    if file is not None:
        stream = itertools.chain(stream, iter_lines(check_input_file(file, "--file"), "--file"))
    blanks = 0
    for first in stream:
        if first.strip():
            return itertools.chain([""] * blanks, [first], stream)
        blanks += 1
    raise InputError("nothing to translate: give texts as arguments or --file")


def _translate_lines(model: Seq2Seq, items: list[str], beam: int) -> list[dict[str, Any] | None]:
    """``translate_detailed`` of the non-blank items, in order; None where an item is blank."""
    keep = [i for i, t in enumerate(items) if t.strip()]
    done = translate_detailed(model, [items[i] for i in keep], beam_size=beam)
    results: list[dict[str, Any] | None] = [None] * len(items)
    for i, item in zip(keep, done, strict=True):
        results[i] = item
    return results


def png_paths(png: Path, count: int, first: int = 0, total: int | None = None) -> list[Path]:
    """Where ``--png FILE`` writes pictures ``first + 1 .. first + count`` of ``total`` (default ``count``):
    FILE itself for one in all, else FILE_1.png, FILE_2.png, ...

    Example:
        >>> [p.name for p in png_paths(Path("out/align.png"), 2)]
        ['align_1.png', 'align_2.png']
        >>> [p.name for p in png_paths(Path("out/align.png"), 1, first=2, total=3)]
        ['align_3.png']
    """
    if (count if total is None else total) == 1:
        return [png]
    return [png.with_name(f"{png.stem}_{k}{png.suffix or '.png'}") for k in range(first + 1, first + count + 1)]


def _write_pngs(png: Path, results: list[dict[str, Any] | None], first: int = 0, total: int | None = None) -> None:
    """One alignment picture per translated input (``attnkit.viz.plots.save_alignment_png``)."""
    from attnkit.viz.plots import save_alignment_png

    items = [r for r in results if r is not None]
    if any(r["alignment"] is None for r in items):
        raise InputError("--png: this model has no attention (--attention none), so no alignment to draw")
    if png.exists() and png.is_dir():
        raise InputError(f"--png {str(png)!r} is a directory. Expected a file name such as alignment.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    for item, path in zip(items, png_paths(png, len(items), first, total), strict=True):
        save_alignment_png(item["alignment"], item["rows"], item["cols"], path,
                           title=f"{item['input']} -> {item['output']}")
        say(f"wrote {path}")


def _warn_inputs(model: Seq2Seq, items: list[str], first: int = 0) -> None:
    """Warn about inputs longer than the model's source limit and tokens outside its vocabulary (inputs
    numbered from ``first + 1``)."""
    limit, src_tok = model.config.max_src_len, model.tokenizers["source"]
    too_long = [first + i + 1 for i, t in enumerate(items) if len(src_tok.encode(t)) > limit]
    if too_long:
        say(f"warning: input(s) {too_long} longer than {limit} tokens were truncated")
    unknown = src_tok.unknown_counts(items)
    if unknown:
        shown = ", ".join(f"{k!r} x{v}" for k, v in unknown.most_common(10))
        say(f"note: {sum(unknown.values())} token(s) outside the vocabulary read as <unk>: {shown}")


@app.command("translate")
def translate_cmd(
    model_dir: ModelDir,
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to translate.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Also translate every line of this file (one "
                                              "output line per input line; a blank line stays blank).")] = None,
    beam: Beam = 1,
    heatmap: Annotated[bool, flag("--heatmap/--no-heatmap", help="Print the alignment heatmap (--no-heatmap: "
                                  "outputs only, one per line).")] = True,
    png: Annotated[Path | None, typer.Option("--png", help="Also draw each alignment into a PNG: this file for "
                                             "one input, FILE_1.png, FILE_2.png, ... for several.")] = None,
    device: Device = "auto",
    threads: Threads = DEFAULT_THREADS,
) -> None:
    """Translate texts with a saved seq2seq model and show where it looked (alignment heatmap)."""
    apply_threads(threads)
    items = _inputs(texts, file)
    if beam < 1:
        raise InputError(f"--beam must be >= 1. Received: {beam}")
    model = load_seq2seq(model_dir).to(resolve_device(device))
    regular = file is None or file.is_file()  # a pipe is read once: its pictures are numbered
    total = None if png is None else sum(1 for t in _inputs(texts, file) if t.strip()) if regular else 0
    done = pictures = 0
    for batch in batched(items, TRANSLATE_BATCH):  # translated and printed as they are read
        _warn_inputs(model, batch, first=done)  # numbers inputs as given (blank lines: never too long nor unknown)
        results = _translate_lines(model, batch, beam)
        if png is not None:
            _write_pngs(png, results, first=pictures, total=total)
            pictures += sum(r is not None for r in results)
        for item in results:
            if item is None:
                out_console.print("", markup=False, highlight=False)
            elif heatmap:
                print_alignment(item)
            else:
                out_console.print(item["output"], markup=False, highlight=False, soft_wrap=True)
        done += len(batch)


# ----------------------------------------------------------------------------------------------------------
# attnkit evaluate
# ----------------------------------------------------------------------------------------------------------


def _evaluation_spec(directory: Path, data: str | None, seed: int | None, on_error: str) -> RunSpec:
    """The run's own ``run.json`` (beside or inside the model directory), overridden by the options."""
    spec = RunSpec.read(directory.parent / RUN_FILE) or RunSpec.read(directory / RUN_FILE)
    if spec is None:
        if data is None:
            raise InputError(f"no run.json beside {str(directory)!r}: give --data")
        spec = RunSpec(data=data)
    if data is not None and data != spec.data:
        spec = RunSpec(data=data, seed=spec.seed)
    if seed is not None:
        spec.seed = seed
    spec.on_error = on_error
    return spec


def _print_scores(result: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("exact match", f"{result['exact_match']:.4f}")
    table.add_row("token accuracy", f"{result['token_accuracy']:.4f}")
    table.add_row("BLEU", f"{result['bleu']:.2f}")
    out_console.print(table)
    lengths = Table(title="exact match by input length (characters)")
    for col in ("length", "pairs", "exact match"):
        lengths.add_column(col, justify="right")
    for row in result["by_length"]:
        lengths.add_row(row["bucket"], str(row["count"]), f"{row['exact_match']:.4f}")
    out_console.print(lengths)
    if "alignment_error_rate" in result:
        aer = Table(title="alignment error rate against the gold links (teacher-forced; lower is better)")
        aer.add_column("links from attention")
        aer.add_column("AER", justify="right")
        aer.add_column("exact match", justify="right")
        for rule, value in result["alignment_error_rate"].items():
            aer.add_row(rule, f"{value:.4f}", f"{result['exact_match']:.4f}")
        out_console.print(aer)


@app.command("evaluate")
def evaluate_cmd(
    model_dir: ModelDir,
    data: Annotated[str | None, typer.Option("--data", help="Task or TSV file (GPT/BERT: a text file scored "
                                             "as a whole; default: the run's own held-out data, from "
                                             "run.json).")] = None,
    split: Annotated[str, typer.Option("--split", help="train, validation or test (seq2seq).")] = "test",
    size: Annotated[int | None, typer.Option("--size", help="Pairs to score (files: the whole split if "
                                             "larger).")] = 1000,
    beam: Beam = 1,
    seed: Annotated[int | None, typer.Option("--seed", help="Split seed (default: the run's seed; another seed "
                                             "may put training items in the test split).")] = None,
    buckets: Annotated[int, typer.Option("--bucket-width", help="Width of the input-length buckets "
                                         "(characters).")] = 10,
    on_error: OnError = "raise",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the scores to this JSON "
                                                  "file.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="GPT/BERT: blocks or sentence pairs per "
                                            "batch.")] = 32,
    alignment: Annotated[bool, flag("--alignment", help="Also the alignment error rate of the model's attention "
                                    "against the task's gold links, per link rule (built-in tasks; Seq2Seq "
                                    "with attention or Transformer).")] = False,
    device: Device = "auto",
    threads: Threads = DEFAULT_THREADS,
) -> None:
    """Score a saved model on held-out data.

    Sequence-to-sequence runs: exact match, token accuracy, BLEU, and exact match per input length; with
    --alignment, the AER of its attention against the gold links, per rule (argmax, argmax shifted one
    step, threshold), from one teacher-forced pass over the references.
    GPT runs: perplexity (and loss, next-token accuracy); BERT runs: masked-LM accuracy (and next-sentence
    accuracy) — on the run's held-out text, or on the whole --data file.
    """
    from attnkit.cli.lm import evaluate_text_run, is_text_model

    apply_threads(threads)
    if beam < 1:
        raise InputError(f"--beam must be >= 1. Received: {beam}")
    if buckets < 1:
        raise InputError(f"--bucket-width must be >= 1. Received: {buckets}")
    directory = resolve_model_dir(model_dir)
    if is_text_model(directory):
        if alignment:
            raise InputError("--alignment applies to sequence-to-sequence runs, not to GPT/BERT runs")
        evaluate_text_run(directory, data, batch_size, device, json_out)
        return
    model = load_seq2seq(directory).to(resolve_device(device))
    spec = _evaluation_spec(directory, data, seed, on_error)
    if alignment:
        check_alignable(model, spec.data)
    pairs = load_split(spec, split, size, log=say)
    unknown = model.tokenizers["source"].count_unknown([s for s, _ in pairs])
    if unknown:
        say(f"note: {unknown} source token(s) outside the vocabulary read as <unk>")
    result = score(model, pairs, predict(model, [s for s, _ in pairs], beam_size=beam), buckets=buckets)
    result.update(data=spec.data, split=split, beam=beam, unknown_tokens=unknown)
    if alignment:
        result["alignment_error_rate"] = alignment_scores(model, pairs, spec.data)
    _print_scores(result, f"{spec.data} / {split}: {len(pairs)} pairs, beam {beam}")
    if json_out is not None:
        write_json(json_out, result)


__all__ = ["TRANSLATORS", "evaluate_cmd", "load_seq2seq", "print_alignment", "train_seq2seq", "translate_cmd"]
