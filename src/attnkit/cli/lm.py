"""``attnkit train gpt``, ``attnkit train bert`` and ``attnkit generate``.

A training run on a UTF-8 text file writes into ``--out DIR`` (see ``attnkit.cli._run``); ``DIR/model/``
is a Hugging Face directory with tokenizer.json that attnkit.load, GPT.from_pretrained /
BertForPreTraining.from_pretrained and transformers all read. Every input problem (missing, empty or
non-UTF-8 file, text too short, bad option value) is reported before anything is written.

The recipes are ``attnkit.recipes.prepare_gpt`` / ``prepare_bert`` / ``continue_text``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from attnkit.cli import _run
from attnkit.cli._options import (
    DEFAULT_THREADS,
    Device,
    EvalEvery,
    Out,
    Overwrite,
    Patience,
    Quiet,
    Resume,
    Schedule,
    Steps,
    Threads,
    TimeBudget,
    apply_threads,
    flag,
)
from attnkit.cli._run import RUN_FILE, say
from attnkit.cli.main import app, train_app
from attnkit.errors import InputError
from attnkit.models.gpt import GPT
from attnkit.models.hub import read_config
from attnkit.recipes.lm import (
    LMOptions,
    Sampling,
    TextRunSpec,
    continue_text,
    evaluate_lm,
    prepare_bert,
    prepare_gpt,
    tokenizer_of,
)
from attnkit.training import TrainConfig

# Options of both language models (their help names what they mean for either).
Layers = Annotated[int, typer.Option("--layers", help="Transformer blocks L.")]
Heads = Annotated[int, typer.Option("--heads", help="Attention heads H per block (--d-model must be a multiple).")]
DModel = Annotated[int, typer.Option("--d-model", help="Model width D (embeddings and hidden size; the "
                                     "feed-forward width is 4 D).")]
Dropout = Annotated[float, typer.Option("--dropout", help="Dropout on embeddings, attention weights and block "
                                        "outputs.")]
Warmup = Annotated[int, typer.Option("--warmup", help="Linear warmup steps (cut to --steps/10 if longer than "
                                     "the run).")]
ValidFraction = Annotated[float, typer.Option("--valid-fraction", help="Trailing share of the text held out for "
                                              "validation (0: none; also none if too short).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of data order, masks and initialisation.")]
Lr = Annotated[float, typer.Option("--lr", help="Peak learning rate of AdamW.")]


def _text(data: Path | None) -> Path:
    """The text file of ``--data`` (required)."""
    if data is None:
        raise InputError("Missing option '--data': the UTF-8 text file to learn")
    return data


def _config(out: Path, resume: bool, steps: int, warmup: int, overwrite: bool = False,
            **common: object) -> tuple[TrainConfig, tuple[str, ...]]:
    """The common run checks, ``TrainConfig`` and notes; a warmup as long as the run is cut to ``steps // 10``."""
    _run.check_run_dir(out, resume, overwrite)
    if warmup < 0:
        raise InputError(f"--warmup must be >= 0. Received: {warmup}")
    used = steps // 10 if warmup >= steps else warmup
    config = _run.train_config(out, steps=steps, warmup=used, resume=resume, **common)  # type: ignore[arg-type]
    return config, (() if used == warmup else (f"note: --warmup {warmup} is not shorter than --steps; using {used}",))


# ----------------------------------------------------------------------------------------------------------
# attnkit train gpt
# ----------------------------------------------------------------------------------------------------------


@train_app.command("gpt")
def train_gpt(
    out: Out,
    data: Annotated[Path | None, typer.Option("--data", help="UTF-8 text file to learn (any text; the whole file "
                                              "is one token stream). Required.")] = None,
    layers: Layers = 4,
    heads: Heads = 4,
    d_model: DModel = 128,
    block_size: Annotated[int, typer.Option("--block-size", help="Tokens per training block; also the longest "
                                            "context (prompt + generated tokens) the model handles.")] = 128,
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="Byte-level BPE vocabulary (>= 257: 256 bytes + "
                                            "<|endoftext|>; fewer if the text has fewer merges).")] = 2000,
    tokenizer: Annotated[Path | None, typer.Option("--tokenizer", help="Use this tokenizer.json (or a directory "
                                                   "holding one, e.g. an earlier run's model/) instead of "
                                                   "training one; --vocab-size is then ignored.")] = None,
    dropout: Dropout = 0.1,
    steps: Steps = 2000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Blocks per batch.")] = 32,
    lr: Lr = 1e-3,
    schedule: Schedule = "cosine",
    warmup: Warmup = 100,
    eval_every: EvalEvery = 200,
    valid_fraction: ValidFraction = 0.1,
    patience: Patience = None,
    time_budget: TimeBudget = None,
    seed: Seed = 0,
    resume: Resume = False,
    overwrite: Overwrite = False,
    device: Device = "auto",
    quiet: Quiet = False,
    threads: Threads = DEFAULT_THREADS,
) -> None:
    """Train a small GPT (decoder-only causal LM, GPT-2 architecture) on a text file; save it in --out."""
    started = time.perf_counter()
    apply_threads(threads)
    data = _text(data)
    config, notes = _config(out, resume, steps, warmup, overwrite, lr=lr, schedule=schedule, eval_every=eval_every,
                     patience=patience, seed=seed, quiet=quiet, device=device, time_budget=time_budget)
    fresh = TextRunSpec("gpt", str(data), seed, block_size, valid_fraction)
    spec = _run.resume_spec(out, resume, fresh, "model", refresh=("text",), required=True)
    _run.check_resume_model(out, resume, {"n_layer": layers, "n_head": heads, "n_embd": d_model},
                            {"n_layer": "layers", "n_head": "heads", "n_embd": "d_model"})
    options = LMOptions(layers=layers, heads=heads, width=d_model, dropout=dropout, vocab_size=vocab_size,
                        tokenizer=tokenizer, batch_size=batch_size)
    run = prepare_gpt(spec, options, config)
    run.started = started
    _run.run_training(out, spec, run, hint=f'; try: attnkit generate {out} "..."', notes=notes, overwrite=overwrite)


# ----------------------------------------------------------------------------------------------------------
# attnkit train bert
# ----------------------------------------------------------------------------------------------------------


@train_app.command("bert")
def train_bert(
    out: Out,
    data: Annotated[Path | None, typer.Option("--data", help="UTF-8 text file: one sentence (or segment) per "
                                              "line, blank lines between documents. Required.")] = None,
    layers: Layers = 4,
    heads: Heads = 4,
    d_model: DModel = 128,
    max_len: Annotated[int, typer.Option("--max-len", help="Longest [CLS] A [SEP] B [SEP] in tokens; longer "
                                         "pairs are cut, longest sentence first.")] = 64,
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="WordPiece vocabulary, 5 special tokens "
                                            "included (fewer if the text has fewer pieces).")] = 2000,
    tokenizer: Annotated[Path | None, typer.Option("--tokenizer", help="Use this tokenizer.json (or a directory "
                                                   "holding one, e.g. an earlier run's model/) instead of "
                                                   "training one; it needs [PAD] [UNK] [CLS] [SEP] [MASK]. "
                                                   "WordPiece training is not reproducible when merge counts "
                                                   "tie (a tokenizers library issue): reuse a vocabulary to "
                                                   "repeat a run exactly.")] = None,
    lowercase: Annotated[bool, flag("--lowercase/--cased", help="Lower-case the text (uncased BERT) or "
                                            "keep case.")] = True,
    mlm_probability: Annotated[float, typer.Option("--mlm-probability", help="Share of tokens the masked LM "
                                                   "predicts (of those: 80% [MASK], 10% random, 10% "
                                                   "unchanged).")] = 0.15,
    dropout: Dropout = 0.1,
    steps: Steps = 2000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Sentence pairs per batch.")] = 32,
    lr: Lr = 5e-4,
    schedule: Schedule = "cosine",
    warmup: Warmup = 100,
    eval_every: EvalEvery = 200,
    valid_fraction: ValidFraction = 0.1,
    patience: Patience = None,
    time_budget: TimeBudget = None,
    seed: Seed = 0,
    resume: Resume = False,
    overwrite: Overwrite = False,
    device: Device = "auto",
    quiet: Quiet = False,
    threads: Threads = DEFAULT_THREADS,
) -> None:
    """Pretrain a small BERT on a text file with masked LM + next-sentence prediction; save it in --out.

    The log's "accuracy" is the masked-LM accuracy (share of chosen tokens predicted exactly);
    evaluations also report next-sentence accuracy.
    """
    started = time.perf_counter()
    apply_threads(threads)
    data = _text(data)
    config, notes = _config(out, resume, steps, warmup, overwrite, lr=lr, schedule=schedule, eval_every=eval_every,
                     patience=patience, seed=seed, quiet=quiet, device=device, time_budget=time_budget)
    fresh = TextRunSpec("bert", str(data), seed, max_len, valid_fraction, mlm_probability)
    spec = _run.resume_spec(out, resume, fresh, "model", refresh=("text",), required=True)
    _run.check_resume_model(out, resume, {"num_hidden_layers": layers, "num_attention_heads": heads,
                                          "hidden_size": d_model},
                            {"num_hidden_layers": "layers", "num_attention_heads": "heads", "hidden_size": "d_model"})
    options = LMOptions(layers=layers, heads=heads, width=d_model, dropout=dropout, vocab_size=vocab_size,
                        tokenizer=tokenizer, lowercase=lowercase, batch_size=batch_size)
    run = prepare_bert(spec, options, config)
    run.started = started
    _run.run_training(out, spec, run, notes=notes, overwrite=overwrite)


# ----------------------------------------------------------------------------------------------------------
# attnkit generate
# ----------------------------------------------------------------------------------------------------------


def load_gpt(path: str | Path) -> GPT:
    """The GPT in ``path`` (a run directory of ``attnkit train gpt``, its ``model/``, or any Hugging Face
    GPT-2 directory with ``tokenizer.json``); ``InputError`` for anything else."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"model directory {str(path)!r} does not exist")
    directory = path if (path / "config.json").is_file() else path / "model"
    if not (directory / "config.json").is_file():
        raise InputError(f"{str(path)!r} holds no model: expected config.json in it or in {str(path / 'model')!r}")
    config = read_config(directory)
    if config.get("model_type") != "gpt2":
        what = config.get("model_type")
        raise InputError(f"{str(directory)!r} holds a {what!r} model, not a GPT; `attnkit generate` needs a "
                         f"directory written by `attnkit train gpt` or a Hugging Face GPT-2 directory")
    model = GPT.from_pretrained(directory)
    if tokenizer_of(model) is None:
        raise InputError(f"{str(directory)!r} has no tokenizer.json; `attnkit generate` needs the tokenizer")
    return model


@app.command("generate")
def generate_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A run directory of `attnkit train gpt` (or its model/), or a "
                                              "Hugging Face GPT-2 directory with tokenizer.json.")],
    prompt: Annotated[str, typer.Argument(help="Text to continue (empty: start from <|endoftext|>).")],
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Tokens to generate (fewer only when the "
                                                "end-of-text token comes, with --stop-at-eos).")] = 50,
    sample: Annotated[bool, flag("--sample/--greedy", help="Sample from the softmax, or take the most "
                                         "likely token each step (default).")] = False,
    temperature: Annotated[float, typer.Option("--temperature", help="With --sample: divide the logits by this "
                                               "(< 1 sharper, > 1 flatter).")] = 1.0,
    top_k: Annotated[int | None, typer.Option("--top-k", help="With --sample: draw only among the K most likely "
                                              "tokens.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="With --sample: draw only among the most likely "
                                                "tokens whose probabilities add up to P (nucleus "
                                                "sampling).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of sampling (the same seed gives the same "
                                      "text).")] = 0,
    stop_at_eos: Annotated[bool, flag("--stop-at-eos/--no-stop-at-eos", help="Stop at the model's "
                                              "end-of-text token.")] = True,
    device: Device = "auto",
    threads: Threads = DEFAULT_THREADS,
) -> None:
    """Continue PROMPT with a trained GPT and print the continuation."""
    apply_threads(threads)
    if max_new_tokens < 1:
        raise InputError(f"--max-new-tokens must be >= 1. Received: {max_new_tokens}")
    sampling = Sampling(sample, temperature, top_k, top_p, seed, stop_at_eos)
    sampling.check()
    if not sample and (top_k is not None or top_p is not None or temperature != 1.0):
        say("note: --temperature/--top-k/--top-p apply only with --sample")
    print(continue_text(load_gpt(model_dir), prompt, max_new_tokens, sampling, device=device))


# ----------------------------------------------------------------------------------------------------------
# attnkit evaluate on a GPT or BERT run (the command lives in attnkit.cli.seq2seq)
# ----------------------------------------------------------------------------------------------------------

TEXT_MODEL_TYPES: tuple[str, ...] = ("gpt2", "bert")
"""``model_type`` of the directories ``attnkit evaluate`` scores as language models."""


def is_text_model(directory: Path) -> bool:
    """True if ``directory`` (a resolved model directory) holds a GPT or BERT (a Hugging Face config)."""
    try:
        meta = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("model_type") in TEXT_MODEL_TYPES


def _text_spec(directory: Path, model: Any, data: str | None) -> TextRunSpec:
    """The run's ``run.json`` (beside or inside ``directory``), or a spec for scoring ``data`` as a whole."""
    spec = TextRunSpec.read(directory.parent / RUN_FILE) or TextRunSpec.read(directory / RUN_FILE)
    if spec is not None:
        return spec
    if data is None:
        raise InputError(f"no run.json beside {str(directory)!r}: give --data FILE (a UTF-8 text to score)")
    c = model.config
    kind = "gpt" if isinstance(model, GPT) else "bert"
    return TextRunSpec(kind, data, length=c.n_positions if kind == "gpt" else c.max_position_embeddings)


def evaluate_text_run(directory: Path, data: str | None, batch_size: int, device: str,
                      json_out: Path | None) -> dict[str, Any]:
    """Score a GPT (perplexity) or BERT (masked-LM accuracy) on held-out text; print a table on stdout.

    The held-out text is the run's own (the trailing ``--valid-fraction`` of its text, the batches its
    training validated on), or the whole of ``data`` when given.
    """
    from rich.console import Console
    from rich.table import Table

    from attnkit.io import load
    from attnkit.models.bert_heads import BertForPreTraining
    from attnkit.storage import write_json
    from attnkit.training.runtime import resolve_device

    model = load(directory)
    if not isinstance(model, GPT | BertForPreTraining):
        raise InputError(f"{str(directory)!r} holds a {type(model).__name__}; `attnkit evaluate` scores "
                         f"sequence-to-sequence models, GPT and BERT pretraining models")
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1. Received: {batch_size}")
    spec = _text_spec(directory, model, data)
    result = evaluate_lm(model.to(resolve_device(device)), spec, text=data, batch_size=batch_size)
    title = f"{result['text']} ({'whole file' if data else 'held-out tail'}): {result['batches']} batches"
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key not in ("text", "batches"):
            table.add_row(key.replace("_", " "), f"{value:.4f}")
    Console().print(table)
    if json_out is not None:
        write_json(json_out, result)
    return result
