"""``attnkit train transformer``: the encoder-decoder Transformer on the data the RNN models use.

Same run layout as ``attnkit train seq2seq`` (``DIR/run.json``, ``DIR/model/``, ``DIR/checkpoint/``,
``DIR/train_log.jsonl``), same data recipe and the same validation (greedy exact match picks the best
model), so ``attnkit translate DIR`` and ``attnkit evaluate DIR`` read a Transformer run as they read an
RNN one. The default schedule is the paper's (``noam``: ``lr * d^-0.5 * min(t^-0.5, t W^-1.5)``) with
Adam's ``beta_2 = 0.98``.

Example::

    attnkit train transformer --data dates --out runs/tf-dates --steps 1500
    attnkit translate runs/tf-dates "3 de marzo de 2021"
    attnkit evaluate runs/tf-dates
"""

from __future__ import annotations

from pathlib import Path

import typer

from attnkit.cli.main import train_app
from attnkit.cli.seq2seq import (
    RunSpec,
    build_tokenizers,
    check_run_dir,
    console,
    done_message,
    length_limits,
    load_split,
    run_spec,
    train_model,
    write_spec,
)
from attnkit.data import Tokenizer, tokenizer_options
from attnkit.errors import InputError
from attnkit.models.transformer import NORMS, POSITIONALS, SHARINGS, Transformer, TransformerConfig
from attnkit.training import SCHEDULES, TrainConfig


def build_transformer(spec: RunSpec, pairs: list[tuple[str, str]], share_embeddings: str = "none",
                      **config: object) -> Transformer:
    """A fresh ``Transformer`` with tokenizers trained on ``pairs``; position tables from the longest pair.

    With ``share_embeddings="all"`` one tokenizer is trained on sources and targets together and serves
    both sides (one vocabulary, one embedding matrix); otherwise each side has its own (built-in targets
    stay character-level, as for the RNN models).

    Example::

        model = build_transformer(RunSpec(data="dates"), load_pairs("dates", "train", size=1000),
                                  d_model=64, num_heads=4)
    """
    if share_embeddings == "all":
        opts = tokenizer_options(spec.data)
        kind = spec.tokenizer or opts["kind"]
        tok = Tokenizer.train([s for s, _ in pairs] + [t for _, t in pairs], kind=kind,
                              vocab_size=spec.vocab_size, lowercase=opts.get("lowercase", False))
        src_tok = tgt_tok = tok
    else:
        src_tok, tgt_tok = build_tokenizers(spec, pairs)
    cfg = TransformerConfig(src_vocab_size=src_tok.vocab_size, tgt_vocab_size=tgt_tok.vocab_size,
                            share_embeddings=share_embeddings, **length_limits(src_tok, tgt_tok, pairs),
                            pad_id=tgt_tok.pad_id, sos_id=tgt_tok.sos_id, eos_id=tgt_tok.eos_id,
                            unk_id=src_tok.unk_id, **config)  # type: ignore[arg-type]
    model = Transformer(cfg)
    model.tokenizers = {"source": src_tok, "target": tgt_tok}
    return model


@train_app.command("transformer")
def train_transformer(
    data: str = typer.Option(..., "--data", help="Built-in task (dates, numbers, copy, reverse, sort) or a "
                             "source<TAB>target file (Tatoeba/Anki layout; extra columns ignored)."),
    out: Path = typer.Option(..., "--out", help="Run directory: model/, checkpoint/, run.json, train_log.jsonl."),
    d_model: int = typer.Option(128, "--d-model", help="Model width E (embeddings and every layer)."),
    heads: int = typer.Option(4, "--heads", help="Attention heads H (must divide --d-model)."),
    layers: int = typer.Option(2, "--layers", help="Encoder layers."),
    decoder_layers: int | None = typer.Option(None, "--decoder-layers", help="Decoder layers (default: "
                                              "--layers)."),
    ff_dim: int = typer.Option(512, "--ff-dim", help="Inner width F of the feed-forward networks."),
    dropout: float = typer.Option(0.1, "--dropout", help="Dropout on embeddings and sub-layer outputs."),
    attention_dropout: float = typer.Option(0.0, "--attention-dropout", help="Dropout on attention weights."),
    label_smoothing: float = typer.Option(0.1, "--label-smoothing", help="Label smoothing epsilon of the loss."),
    norm: str = typer.Option("post", "--norm", help="post (the paper: LN after each residual sum) or pre "
                             "(LN inside each branch, plus a final LN)."),
    positional: str = typer.Option("sinusoidal", "--positional", help="sinusoidal (fixed) or learned positions."),
    share_embeddings: str = typer.Option("none", "--share-embeddings", help="none; decoder (target embedding "
                                         "= output matrix); all (one vocabulary for source and target, one "
                                         "embedding matrix, also the output matrix)."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="char, word or bpe (default: char for "
                                         "built-in tasks, word for files). Built-in targets stay char-level."),
    vocab_size: int | None = typer.Option(None, "--vocab-size", help="Vocabulary limit (BPE default 2000)."),
    steps: int = typer.Option(2000, "--steps", help="Optimiser steps in total (counting resumed ones)."),
    batch_size: int = typer.Option(128, "--batch-size", help="Pairs per batch."),
    lr: float = typer.Option(1.0, "--lr", help="Learning rate; with --schedule noam the paper's multiplier "
                             "(peak lr = lr / sqrt(d_model * warmup))."),
    schedule: str = typer.Option("noam", "--schedule", help=f"{', '.join(SCHEDULES)}; noam is the paper's "
                                 "warmup then inverse square root."),
    warmup: int = typer.Option(200, "--warmup", help="Warmup steps."),
    train_size: int | None = typer.Option(None, "--train-size", help="Training pairs (built-in default "
                                          "20000; files: the whole train split)."),
    valid_size: int = typer.Option(500, "--valid-size", help="Validation pairs decoded at each evaluation."),
    min_len: int | None = typer.Option(None, "--min-len", help="Shortest input (numbers: digits; toy tasks: "
                                       "characters)."),
    max_len: int | None = typer.Option(None, "--max-len", help="Longest input of train/validation."),
    test_max_len: int | None = typer.Option(None, "--test-max-len", help="Longest input of the test split."),
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
) -> None:
    """Train an encoder-decoder Transformer (Vaswani et al. 2017) and save it in --out."""
    out = Path(out)
    ckpt = check_run_dir(out, resume)
    for flag, value, allowed in (("--norm", norm, NORMS), ("--positional", positional, POSITIONALS),
                                 ("--share-embeddings", share_embeddings, SHARINGS),
                                 ("--schedule", schedule, SCHEDULES)):
        if value not in allowed:
            raise InputError(f"{flag} must be one of {', '.join(allowed)}. Received: {value!r}")
    if tokenizer is not None and tokenizer not in ("char", "word", "bpe"):
        raise InputError(f"--tokenizer must be char, word or bpe. Received: {tokenizer!r}")
    if d_model < 1 or heads < 1 or d_model % heads:
        raise InputError(f"--d-model must be a positive multiple of --heads. Received: --d-model {d_model}, "
                         f"--heads {heads}")
    spec = run_spec(out, resume, RunSpec(data=data, seed=seed, tokenizer=tokenizer, vocab_size=vocab_size,
                                         min_len=min_len, max_len=max_len, test_max_len=test_max_len,
                                         on_error=on_error))
    train = load_split(spec, "train", train_size)
    valid = load_split(spec, "validation", valid_size)
    config = TrainConfig(steps=steps, lr=lr, schedule=schedule, warmup_steps=warmup, betas=(0.9, 0.98),
                         eval_every=eval_every, patience=patience, metric="exact_match", mode="max", seed=seed,
                         out_dir=str(out), progress=not quiet, device=device, time_budget=time_budget,
                         resume=resume)
    if resume:  # the checkpoint fixes model and tokenizers
        model = Transformer.load(ckpt)
    else:
        try:
            model = build_transformer(spec, train, share_embeddings=share_embeddings, d_model=d_model,
                                      num_heads=heads, encoder_layers=layers,
                                      decoder_layers=decoder_layers or layers, ff_dim=ff_dim, dropout=dropout,
                                      attention_dropout=attention_dropout, label_smoothing=label_smoothing,
                                      norm=norm, positional=positional)
        except ValueError as err:  # a config value out of range: a usage error
            raise InputError(str(err)) from err
    c = model.config
    console.print(f"training transformer ({c.encoder_layers}+{c.decoder_layers} layers, width {c.d_model}, "
                  f"{c.num_heads} heads, {c.norm}-LN, {model.num_parameters():,} parameters) on {spec.data}: "
                  f"{len(train)} pairs, {len(valid)} for validation")
    write_spec(out, spec)
    result = train_model(model, train, valid, config, batch_size, seed)  # type: ignore[arg-type]
    console.print(done_message(result, out))


__all__ = ["build_transformer", "train_transformer"]
