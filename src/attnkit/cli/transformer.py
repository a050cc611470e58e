"""``attnkit train transformer``: the encoder-decoder Transformer on the data the RNN models use.

Same run layout as ``attnkit train seq2seq`` (``DIR/run.json``, ``DIR/model/``, ``DIR/checkpoint/``,
``DIR/train_log.jsonl``), same data recipe and the same validation (greedy exact match picks the best
model), so ``attnkit translate DIR`` and ``attnkit evaluate DIR`` read a Transformer run as they read an
RNN one. The default schedule is the paper's (``noam``: ``lr * d^-0.5 * min(t^-0.5, t W^-1.5)``) with
Adam's ``beta_2 = 0.98``. The recipe is ``attnkit.recipes.prepare_transformer``.

Example::

    attnkit train transformer --data dates --out runs/tf-dates --steps 1500
    attnkit translate runs/tf-dates "3 de marzo de 2021"
    attnkit evaluate runs/tf-dates
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from attnkit.cli import _run
from attnkit.cli._options import (
    DEFAULT_THREADS,
    BatchSize,
    Data,
    Device,
    EvalEvery,
    MaxLen,
    MinLen,
    OnError,
    Out,
    Overwrite,
    Patience,
    Quiet,
    Resume,
    Seed,
    Steps,
    TestMaxLen,
    Threads,
    TimeBudget,
    TokenizerScheme,
    TrainSize,
    ValidSize,
    VocabLimit,
    apply_threads,
)
from attnkit.cli._run import say
from attnkit.cli.main import train_app
from attnkit.recipes.seq2seq import RunSpec, build_transformer, prepare_transformer
from attnkit.training import SCHEDULES

DModel = Annotated[int, typer.Option("--d-model", help="Model width D (embeddings and every layer).")]
Heads = Annotated[int, typer.Option("--heads", help="Attention heads H (must divide --d-model).")]
Layers = Annotated[int, typer.Option("--layers", help="Encoder layers.")]
DecoderLayers = Annotated[int | None, typer.Option("--decoder-layers", help="Decoder layers (default: --layers).")]
FfDim = Annotated[int, typer.Option("--ff-dim", help="Inner width of the feed-forward networks.")]
Dropout = Annotated[float, typer.Option("--dropout", help="Dropout on embeddings and sub-layer outputs.")]
AttentionDropout = Annotated[float, typer.Option("--attention-dropout", help="Dropout on attention weights.")]
LabelSmoothing = Annotated[float, typer.Option("--label-smoothing", help="Label smoothing epsilon of the loss.")]
Norm = Annotated[str, typer.Option("--norm", help="post (the paper: LN after each residual sum) or pre (LN "
                                   "inside each branch, plus a final LN).")]
Positional = Annotated[str, typer.Option("--positional", help="sinusoidal (fixed) or learned positions.")]
ShareEmbeddings = Annotated[str, typer.Option("--share-embeddings", help="none; decoder (target embedding = "
                                              "output matrix); all (one vocabulary for source and target, "
                                              "one embedding matrix, also the output matrix).")]
NoamLr = Annotated[float, typer.Option("--lr", help="Learning rate; with --schedule noam the paper's multiplier "
                                       "(peak lr = lr / sqrt(d_model * warmup)).")]
NoamSchedule = Annotated[str, typer.Option("--schedule", help=f"{', '.join(SCHEDULES)}; noam is the paper's "
                                           "warmup then inverse square root.")]
WarmupSteps = Annotated[int, typer.Option("--warmup", help="Warmup steps.")]


@train_app.command("transformer")
def train_transformer(
    data: Data,
    out: Out,
    d_model: DModel = 128,
    heads: Heads = 4,
    layers: Layers = 2,
    decoder_layers: DecoderLayers = None,
    ff_dim: FfDim = 512,
    dropout: Dropout = 0.1,
    attention_dropout: AttentionDropout = 0.0,
    label_smoothing: LabelSmoothing = 0.1,
    norm: Norm = "post",
    positional: Positional = "sinusoidal",
    share_embeddings: ShareEmbeddings = "none",
    tokenizer: TokenizerScheme = None,
    vocab_size: VocabLimit = None,
    steps: Steps = 2000,
    batch_size: BatchSize = 128,
    lr: NoamLr = 1.0,
    schedule: NoamSchedule = "noam",
    warmup: WarmupSteps = 200,
    train_size: TrainSize = None,
    valid_size: ValidSize = 500,
    min_len: MinLen = None,
    max_len: MaxLen = None,
    test_max_len: TestMaxLen = None,
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
    """Train an encoder-decoder Transformer (Vaswani et al. 2017) and save it in --out."""
    started = time.perf_counter()
    apply_threads(threads)
    _run.check_run_dir(out, resume, overwrite)
    config = _run.train_config(out, steps=steps, lr=lr, schedule=schedule, warmup=warmup, eval_every=eval_every,
                               patience=patience, seed=seed, quiet=quiet, device=device, time_budget=time_budget,
                               resume=resume)
    spec = _run.resume_spec(out, resume, RunSpec(data=data, seed=seed, tokenizer=tokenizer, vocab_size=vocab_size,
                                                 min_len=min_len, max_len=max_len, test_max_len=test_max_len,
                                                 on_error=on_error), "data")
    model = {"d_model": d_model, "num_heads": heads, "encoder_layers": layers,
             "decoder_layers": decoder_layers or layers, "ff_dim": ff_dim, "dropout": dropout,
             "attention_dropout": attention_dropout, "label_smoothing": label_smoothing, "norm": norm,
             "positional": positional}
    _run.check_resume_model(out, resume, model, {"num_heads": "heads", "encoder_layers": "layers"})
    run = prepare_transformer(spec, config, model, share_embeddings=share_embeddings, batch_size=batch_size,
                              train_size=train_size, valid_size=valid_size, log=say)
    run.started = started
    _run.run_training(out, spec, run, overwrite=overwrite)


__all__ = ["build_transformer", "train_transformer"]
