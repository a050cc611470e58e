"""``attnkit train seq2seq``, ``attnkit translate`` and ``attnkit evaluate``.

A training run writes into ``--out DIR``::

    DIR/run.json            how the data was made (task or file, seed, lengths, tokenizer), read by evaluate
    DIR/model/              the best model so far (``attnkit.load(DIR/model)``)
    DIR/checkpoint/         everything ``--resume`` needs
    DIR/train_log.jsonl     one JSON record per log / evaluation

The helpers here (``RunSpec``, ``load_split``, ``build_tokenizers``, ``build_model``, ``train_model``,
``predict``, ``score``) are shared by ``attnkit demo`` and ``attnkit experiment length``; ``train transformer``
also uses the run-directory ones (``check_run_dir``, ``run_spec``, ``write_spec``, ``done_message``) and
``length_limits``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import typer
from rich.console import Console
from rich.table import Table

from attnkit.cli.main import app, train_app
from attnkit.data import BUILTIN_TASKS, Tokenizer, encode_pairs, load_pairs, tokenizer_options
from attnkit.data.batches import BatchStream
from attnkit.errors import CheckpointError, InputError
from attnkit.models.base import read_model_config
from attnkit.models.seq2seq import ATTENTIONS, CELLS, Seq2Seq, Seq2SeqConfig
from attnkit.training import TrainConfig, Trainer, TrainResult
from attnkit.training.metrics import bleu, by_length_bucket, exact_match, token_accuracy

RUN_FILE = "run.json"
console = Console(stderr=True)
out_console = Console()


# ----------------------------------------------------------------------------------------------------------
# Shared recipe
# ----------------------------------------------------------------------------------------------------------


@dataclass
class RunSpec:
    """How a run's data is made; saved as ``run.json`` so ``evaluate`` rebuilds the same splits."""

    data: str = "dates"  # built-in task name or TSV path
    seed: int = 0  # split and sampling seed
    tokenizer: str | None = None  # char | word | bpe (None: the task's default)
    vocab_size: int | None = None  # BPE / word vocabulary limit
    min_len: int | None = None  # length bounds of numbers / toy tasks
    max_len: int | None = None
    test_max_len: int | None = None
    on_error: str = "raise"  # malformed TSV lines: raise | skip

    @classmethod
    def read(cls, path: Path) -> RunSpec | None:
        """``run.json`` of a run directory, or None when there is none."""
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def load_split(spec: RunSpec, split: str, size: int | None) -> list[tuple[str, str]]:
    """``(source, target)`` pairs of one split; user-file problems become ``InputError`` (exit 2)."""
    if spec.on_error not in ("raise", "skip"):
        raise InputError(f"--on-error must be 'raise' or 'skip'. Received: {spec.on_error!r}")
    builtin = spec.data in BUILTIN_TASKS
    kwargs: dict[str, Any] = {"size": size, "seed": spec.seed}
    if builtin:
        kwargs.update(min_len=spec.min_len, max_len=spec.max_len, test_max_len=spec.test_max_len)
    else:
        kwargs["on_error"] = spec.on_error
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs = load_pairs(spec.data, split, **kwargs)
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}", soft_wrap=True, markup=True, highlight=False)
    if not pairs:
        raise InputError(f"the {split} split of {spec.data!r} is empty; give more data or a larger --*-size")
    return pairs


def build_tokenizers(spec: RunSpec, pairs: list[tuple[str, str]]) -> tuple[Tokenizer, Tokenizer]:
    """Source and target tokenizers trained on the training pairs (built-in targets stay character-level)."""
    opts = tokenizer_options(spec.data)
    kind = spec.tokenizer or opts["kind"]
    src = Tokenizer.train([s for s, _ in pairs], kind=kind, vocab_size=spec.vocab_size,
                          lowercase=opts.get("lowercase", False))
    tgt_kind = "char" if spec.data in BUILTIN_TASKS else kind
    tgt = Tokenizer.train([t for _, t in pairs], kind=tgt_kind, vocab_size=spec.vocab_size)
    return src, tgt


def length_limits(src_tok: Tokenizer, tgt_tok: Tokenizer, pairs: list[tuple[str, str]]) -> dict[str, int]:
    """``max_src_len`` / ``max_tgt_len`` of a model config: room for twice the longest pair (in tokens)."""
    longest_src = max(len(ids) for ids in src_tok.encode_batch([s for s, _ in pairs]))
    longest_tgt = max(len(ids) for ids in tgt_tok.encode_batch([t for _, t in pairs]))
    return {"max_src_len": max(256, 2 * longest_src), "max_tgt_len": 2 * longest_tgt + 10}


def build_model(src_tok: Tokenizer, tgt_tok: Tokenizer, pairs: list[tuple[str, str]], seed: int = 0,
                **config: Any) -> Seq2Seq:
    """A fresh ``Seq2Seq`` sized for the tokenizers, initialised from ``seed``; length limits from the pairs."""
    cfg = Seq2SeqConfig(src_vocab_size=src_tok.vocab_size, tgt_vocab_size=tgt_tok.vocab_size,
                        **length_limits(src_tok, tgt_tok, pairs), pad_id=tgt_tok.pad_id, sos_id=tgt_tok.sos_id,
                        eos_id=tgt_tok.eos_id, unk_id=src_tok.unk_id, **config)
    torch.manual_seed(seed)
    model = Seq2Seq(cfg)
    model.tokenizers = {"source": src_tok, "target": tgt_tok}
    return model


def predict(model: Seq2Seq, sources: list[str], beam_size: int = 1, batch_size: int = 512) -> list[str]:
    """Outputs for ``sources`` (decoded in length-sorted batches; the order of ``sources`` is kept)."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown-token counts are reported by the callers that care
        outs = model.translate([sources[i] for i in order], beam_size=beam_size, batch_size=batch_size)
    result = [""] * len(sources)
    for i, text in zip(order, outs, strict=True):
        result[i] = text
    return result


def score(model: Seq2Seq, pairs: list[tuple[str, str]], preds: list[str],
          buckets: int | list[int] = 10, length: str = "chars") -> dict[str, Any]:
    """Exact match, token accuracy, BLEU and exact match per source-length bucket."""
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    tgt = model.tokenizers["target"]
    pred_ids = tgt.encode_batch(preds, add_special=False)
    ref_ids = tgt.encode_batch(refs, add_special=False)
    char_level = tgt.kind == "char"
    return {
        "exact_match": exact_match(preds, refs),
        "token_accuracy": token_accuracy(pred_ids, ref_ids),
        "bleu": bleu(preds, refs, tokenize="char" if char_level else "13a"),
        "examples": len(pairs),
        "by_length": [{"bucket": b.label, "count": b.count, "exact_match": b.score}
                      for b in by_length_bucket(sources, preds, refs, buckets, length=length)],
    }


def train_model(model: Seq2Seq, train: list[tuple[str, str]], valid: list[tuple[str, str]],
                config: TrainConfig, batch_size: int, seed: int = 0, bucket_size: int | None = 8) -> TrainResult:
    """Train with teacher forcing; validation exact match (greedy) picks the best model.

    ``bucket_size=k`` groups batches by source length within chunks of ``k`` batches (less padding, so
    faster when lengths vary a lot, but batches mix fewer kinds of input); ``None`` keeps batches random.
    """
    src_tok, tgt_tok = model.tokenizers["source"], model.tokenizers["target"]
    stream = BatchStream(encode_pairs(train, src_tok, tgt_tok), batch_size=batch_size, seed=seed,
                         bucket_size=bucket_size)
    sources, refs = [s for s, _ in valid], [t for _, t in valid]

    def evaluate(m: Seq2Seq) -> dict[str, float]:
        return {"exact_match": exact_match(predict(m, sources), refs)}

    return Trainer(model, config, stream, evaluate=evaluate).fit()


def check_run_dir(out: Path, resume: bool) -> Path:
    """``out/checkpoint`` once ``out`` fits: with ``resume`` it must hold a run, without it it must not."""
    ckpt = out / "checkpoint"
    if resume and not ckpt.is_dir():
        raise InputError(f"--resume: {str(out)!r} has no checkpoint/ to resume from")
    if not resume and ckpt.exists():
        raise InputError(f"{str(out)!r} already holds a run; pass --resume to continue it or choose "
                         f"another --out")
    return ckpt


def run_spec(out: Path, resume: bool, fresh: RunSpec) -> RunSpec:
    """``fresh`` for a new run; with ``resume`` the run's saved spec (same data as ``fresh`` required)."""
    if not resume:
        return fresh
    spec = RunSpec.read(out / RUN_FILE) or RunSpec(data=fresh.data, seed=fresh.seed)
    if spec.data != fresh.data:
        raise InputError(f"--resume: the run in {str(out)!r} was trained on {spec.data!r}, not {fresh.data!r}")
    return spec


def write_spec(out: Path, spec: RunSpec) -> None:
    """Create the run directory ``out`` and save ``spec`` in it as ``run.json``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_FILE).write_text(json.dumps(asdict(spec), indent=2) + "\n", encoding="utf-8")


def done_message(result: TrainResult, out: Path) -> str:
    """The closing line of a training run: steps, time, best validation exact match, where the model is."""
    return (f"done: {result.steps} steps in {result.elapsed:.1f} s ({result.stop_reason}); best "
            f"validation exact match {result.best_metric:.4f} at step {result.best_step}; "
            f"model in {out / 'model'}")


def resolve_model_dir(path: str | Path) -> Path:
    """``DIR`` itself when it holds a model, else ``DIR/model`` (a training run's directory)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model directory {str(path)!r} does not exist")
    if (path / "config.json").is_file():
        return path
    if (path / "model" / "config.json").is_file():
        return path / "model"
    raise CheckpointError(f"{str(path)!r} holds no model: expected config.json in it or in {str(path / 'model')!r}")


TRANSLATORS: tuple[str, ...] = ("seq2seq", "transformer")
"""Model kinds ``translate`` and ``evaluate`` accept: each has ``translate``, ``encode_texts`` and ``generate``."""


def load_seq2seq(path: str | Path) -> Seq2Seq:
    """Load a saved sequence-to-sequence model (a run directory or its ``model/``) with its tokenizers.

    Any kind in ``TRANSLATORS`` is accepted (``Seq2Seq`` or ``Transformer``); others get a clear error.
    """
    from attnkit.io import load

    directory = resolve_model_dir(path)
    kind = read_model_config(directory)["kind"]
    if kind not in TRANSLATORS:
        raise CheckpointError(f"{str(directory)!r} holds a {kind!r} model; this command needs a "
                              f"sequence-to-sequence model ({', '.join(TRANSLATORS)})")
    model = load(directory)
    for name in ("source", "target"):
        if name not in model.tokenizers:
            raise CheckpointError(f"model directory {str(directory)!r} is incomplete: no tokenizer_{name}.json")
    return model


def alignment_labels(model: Seq2Seq, text: str, out_ids: list[int]) -> tuple[list[str], list[str]]:
    """Row labels (output tokens, end token included) and column labels (source tokens) of an alignment."""
    src_tok, tgt_tok = model.tokenizers["source"], model.tokenizers["target"]
    src_ids = src_tok.encode(text)[: model.config.max_src_len]
    return tgt_tok.tokens(out_ids), src_tok.tokens(src_ids)


def translate_detailed(model: Seq2Seq, texts: list[str], beam_size: int = 1,
                       batch_size: int = 256) -> list[dict[str, Any]]:
    """Per text: ``output``, ``alignment`` ``(T_out, S)`` or None, ``rows``/``cols`` token labels, ``unknown``."""
    results = []
    for i in range(0, len(texts), batch_size):
        results += _translate_batch(model, texts[i: i + batch_size], beam_size)
    return results


def _translate_batch(model: Seq2Seq, texts: list[str], beam_size: int) -> list[dict[str, Any]]:
    model.eval()
    src, lengths, _, _ = model.encode_texts(texts)
    out = model.generate(src, lengths, beam_size=beam_size)
    src_tok = model.tokenizers["source"]
    results = []
    for b, text in enumerate(texts):
        n, L = int(lengths[b]), int(out.lengths[b])
        ids = out.tokens[b, :L].tolist()
        rows, cols = alignment_labels(model, text, ids)
        al = None if out.alignments is None else out.alignments[b, :L, :n].cpu()
        results.append({"input": text, "output": model.tokenizers["target"].decode(ids), "alignment": al,
                        "rows": rows, "cols": cols, "unknown": dict(src_tok.unknown_counts([text]))})
    return results


# ----------------------------------------------------------------------------------------------------------
# attnkit train seq2seq
# ----------------------------------------------------------------------------------------------------------


@train_app.command("seq2seq")
def train_seq2seq(
    data: str = typer.Option(..., "--data", help="Built-in task (dates, numbers, copy, reverse, sort) or a "
                             "source<TAB>target file (Tatoeba/Anki layout; extra columns ignored)."),
    out: Path = typer.Option(..., "--out", help="Run directory: model/, checkpoint/, run.json, train_log.jsonl."),
    attention: str = typer.Option("bahdanau", "--attention", help=f"Attention: {', '.join(ATTENTIONS)}. "
                                  "'none' is the fixed-context encoder-decoder."),
    cell: str = typer.Option("gru", "--cell", help="Recurrent cell of encoder and decoder: gru or lstm."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="char, word or bpe (default: char for "
                                         "built-in tasks, word for files). Built-in targets stay char-level."),
    vocab_size: int | None = typer.Option(None, "--vocab-size", help="Vocabulary limit (BPE default 2000)."),
    steps: int = typer.Option(2000, "--steps", help="Optimiser steps in total (counting resumed ones)."),
    batch_size: int = typer.Option(128, "--batch-size", help="Pairs per batch."),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate of AdamW."),
    schedule: str = typer.Option("cosine", "--schedule", help="constant, warmup, inverse_sqrt or cosine."),
    warmup: int = typer.Option(100, "--warmup", help="Linear warmup steps."),
    embed_dim: int = typer.Option(64, "--embed-dim", help="Embedding size E."),
    hidden_dim: int = typer.Option(128, "--hidden-dim", help="Decoder/annotation size H (H/2 per encoder "
                                   "direction; even)."),
    attention_dim: int = typer.Option(128, "--attention-dim", help="Bahdanau alignment-model size."),
    layers: int = typer.Option(1, "--layers", help="Stacked bidirectional encoder layers."),
    dropout: float = typer.Option(0.0, "--dropout", help="Dropout on embeddings and the readout."),
    train_size: int | None = typer.Option(None, "--train-size", help="Training pairs (built-in default "
                                          "20000; files: the whole train split)."),
    valid_size: int = typer.Option(500, "--valid-size", help="Validation pairs decoded at each evaluation."),
    min_len: int | None = typer.Option(None, "--min-len", help="Shortest input (numbers: digits; toy tasks: "
                                       "characters)."),
    max_len: int | None = typer.Option(None, "--max-len", help="Longest input of train/validation."),
    test_max_len: int | None = typer.Option(None, "--test-max-len", help="Longest input of the test split."),
    bucket_size: int | None = typer.Option(None, "--bucket-size", help="Group batches by input length "
                                           "within chunks of N batches (faster for very mixed lengths; "
                                           "default: random batches)."),
    eval_every: int = typer.Option(200, "--eval-every", help="Evaluate and checkpoint every N steps."),
    patience: int | None = typer.Option(None, "--patience", help="Stop after N evaluations without "
                                        "improvement."),
    time_budget: float | None = typer.Option(None, "--time-budget", help="Stop training after this many "
                                             "seconds."),
    seed: int = typer.Option(0, "--seed", help="Seed of data splits, sampling and initialisation."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint "
                                "(same data, tokenizers and model)."),
    on_error: str = typer.Option("raise", "--on-error", help="Malformed lines of a data file: 'raise' "
                                 "(stop, naming the line) or 'skip' (skip them, listing line numbers)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's "
                                       "choice; 1 is often fastest for small RNNs on a busy machine)."),
) -> None:
    """Train an RNN encoder-decoder (with or without attention) and save it in --out."""
    if threads is not None:
        if threads < 1:
            raise InputError(f"--threads must be >= 1. Received: {threads}")
        torch.set_num_threads(threads)
    out = Path(out)
    ckpt = check_run_dir(out, resume)
    if attention not in ATTENTIONS:
        raise InputError(f"--attention must be one of {', '.join(ATTENTIONS)}. Received: {attention!r}")
    if cell not in CELLS:
        raise InputError(f"--cell must be one of {', '.join(CELLS)}. Received: {cell!r}")
    if tokenizer is not None and tokenizer not in ("char", "word", "bpe"):
        raise InputError(f"--tokenizer must be char, word or bpe. Received: {tokenizer!r}")
    spec = run_spec(out, resume, RunSpec(data=data, seed=seed, tokenizer=tokenizer, vocab_size=vocab_size,
                                         min_len=min_len, max_len=max_len, test_max_len=test_max_len,
                                         on_error=on_error))
    train = load_split(spec, "train", train_size)
    valid = load_split(spec, "validation", valid_size)
    config = TrainConfig(steps=steps, lr=lr, schedule=schedule, warmup_steps=warmup, eval_every=eval_every,
                         patience=patience, metric="exact_match", mode="max", seed=seed, out_dir=str(out),
                         progress=not quiet, device=device, time_budget=time_budget, resume=resume)
    if resume:  # the checkpoint fixes model and tokenizers
        model = Seq2Seq.load(ckpt)
    else:
        src_tok, tgt_tok = build_tokenizers(spec, train)
        model = build_model(src_tok, tgt_tok, train, attention=attention, cell=cell, embed_dim=embed_dim,
                            hidden_dim=hidden_dim, attention_dim=attention_dim, encoder_layers=layers,
                            dropout=dropout, seed=seed)
    console.print(f"training seq2seq ({model.config.attention}, {model.config.cell}, "
                  f"{model.num_parameters():,} parameters) on {spec.data}: {len(train)} pairs, "
                  f"{len(valid)} for validation")
    write_spec(out, spec)
    if bucket_size is not None and bucket_size < 1:
        raise InputError(f"--bucket-size must be >= 1. Received: {bucket_size}")
    result = train_model(model, train, valid, config, batch_size, seed, bucket_size)
    console.print(done_message(result, out))


# ----------------------------------------------------------------------------------------------------------
# attnkit translate
# ----------------------------------------------------------------------------------------------------------


def print_alignment(item: dict[str, Any], target: Console | None = None) -> None:
    """Print one translation and its alignment heatmap (rows = output tokens, columns = input tokens)."""
    from attnkit.viz.terminal import heatmap_table

    c = target or out_console
    c.print(f"[bold]{item['input']}[/] -> [bold green]{item['output']}[/]")
    if item["alignment"] is not None and item["alignment"].numel():
        c.print(heatmap_table(item["alignment"], item["rows"], item["cols"]))


@app.command("translate")
def translate_cmd(
    model_dir: Path = typer.Argument(..., help="A model directory (or a training run's directory)."),
    texts: list[str] = typer.Argument(None, help="Texts to translate."),
    file: Path | None = typer.Option(None, "--file", help="Also translate every non-empty line of this file."),
    beam: int = typer.Option(1, "--beam", help="Beam size (1 = greedy)."),
    heatmap: bool = typer.Option(True, "--heatmap/--no-heatmap", help="Print the alignment heatmap."),
) -> None:
    """Translate texts with a saved seq2seq model and show where it looked (alignment heatmap)."""
    items = list(texts or [])
    if file is not None:
        if not file.is_file():
            raise InputError(f"--file {str(file)!r} does not exist")
        items += [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not items:
        raise InputError("nothing to translate: give texts as arguments or --file")
    if beam < 1:
        raise InputError(f"--beam must be >= 1. Received: {beam}")
    model = load_seq2seq(model_dir)
    limit = model.config.max_src_len
    src_tok = model.tokenizers["source"]
    too_long = [i + 1 for i, t in enumerate(items) if len(src_tok.encode(t)) > limit]
    if too_long:
        console.print(f"[yellow]warning:[/] input(s) {too_long} longer than {limit} tokens were truncated",
                      soft_wrap=True)
    unknown = src_tok.unknown_counts(items)
    if unknown:
        shown = ", ".join(f"{k!r} x{v}" for k, v in unknown.most_common(10))
        console.print(f"[yellow]note:[/] {sum(unknown.values())} token(s) outside the vocabulary read as "
                      f"<unk>: {shown}", soft_wrap=True, highlight=False)
    for item in translate_detailed(model, items, beam_size=beam):
        if heatmap:
            print_alignment(item)
        else:
            out_console.print(item["output"], markup=False, highlight=False)


# ----------------------------------------------------------------------------------------------------------
# attnkit evaluate
# ----------------------------------------------------------------------------------------------------------


@app.command("evaluate")
def evaluate_cmd(
    model_dir: Path = typer.Argument(..., help="A model directory (or a training run's directory)."),
    data: str | None = typer.Option(None, "--data", help="Task or TSV file (default: the run's own data, "
                                    "from run.json)."),
    split: str = typer.Option("test", "--split", help="train, validation or test."),
    size: int | None = typer.Option(1000, "--size", help="Pairs to score (files: the whole split if larger)."),
    beam: int = typer.Option(1, "--beam", help="Beam size (1 = greedy)."),
    seed: int | None = typer.Option(None, "--seed", help="Split seed (default: the run's seed; another seed "
                                    "may put training items in the test split)."),
    buckets: int = typer.Option(10, "--bucket-width", help="Width of the input-length buckets (characters)."),
    on_error: str = typer.Option("raise", "--on-error", help="Malformed lines of a data file: raise or skip."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the scores to this JSON file."),
) -> None:
    """Score a saved seq2seq model: exact match, token accuracy, BLEU, and exact match per input length."""
    if beam < 1:
        raise InputError(f"--beam must be >= 1. Received: {beam}")
    if buckets < 1:
        raise InputError(f"--bucket-width must be >= 1. Received: {buckets}")
    directory = resolve_model_dir(model_dir)
    model = load_seq2seq(directory)
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
    pairs = load_split(spec, split, size)
    unknown = model.tokenizers["source"].count_unknown([s for s, _ in pairs])
    if unknown:
        console.print(f"[yellow]note:[/] {unknown} source token(s) outside the vocabulary read as <unk>",
                      soft_wrap=True)
    preds = predict(model, [s for s, _ in pairs], beam_size=beam)
    result = score(model, pairs, preds, buckets=buckets)
    result.update(data=spec.data, split=split, beam=beam, unknown_tokens=unknown)
    table = Table(title=f"{spec.data} / {split}: {len(pairs)} pairs, beam {beam}")
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
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
