"""``attnkit experiment length|efficiency|alignment|faithfulness|demo|classifier|captioner``: the experiments, each run over ``--seeds`` by the one harness.

Every experiment writes one report per run (``attnkit.experiments.harness``): every figure as mean ± sample
standard deviation over the seeds, the exact command line and the machine (CPU model and vector flags)::

    OUT/<name>.json   the settings, the aggregated tables and each seed's rows
    OUT/<name>.md     the tables as mean ± sd
    OUT/<name>.png    the plots, error bars of one standard deviation

``length`` also keeps each seed's two models in ``OUT/seed-<seed>/<attention>/model/`` (``attnkit.load``).
``alignment`` also writes ``OUT/alignment-examples.png`` (gold links over every model's attention).
``demo`` also keeps each seed's Bahdanau model in ``OUT/seed-<seed>/model/``.
``classifier``: one seed is one split of BBC News (near duplicates kept on one side).
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from attnkit.cli._options import Device, Threads, apply_threads, flag
from attnkit.cli._run import OverwriteOut, check_out_dir, say, start_writing
from attnkit.cli.main import experiment_app
from attnkit.errors import InputError
from attnkit.experiments.alignment import MODELS as ALIGNMENT_MODELS
from attnkit.experiments.alignment import TASKS as ALIGNMENT_TASKS
from attnkit.experiments.alignment import AlignmentSettings, alignment_experiment, alignment_seed
from attnkit.experiments.efficiency import EfficiencySettings, efficiency_experiment, efficiency_seed
from attnkit.experiments.harness import Experiment, parse_seeds, run_experiment
from attnkit.experiments.length import LengthSettings, length_experiment, length_seed
from attnkit.storage import write_json

console = Console()

Seeds = Annotated[str, typer.Option("--seeds", help="Comma-separated seeds, e.g. 0,1,2: the experiment runs once "
                                    "per seed and reports every figure as mean ± standard deviation.")]


def command_line(ctx: typer.Context) -> str:
    """The command as the user typed it (``attnkit.cli.main.main`` hands its arguments to the context)."""
    argv = (ctx.obj or {}).get("argv", sys.argv[1:])
    return shlex.join(["attnkit", *argv])


def _run(ctx: typer.Context, exp: Experiment, seeds: tuple[int, ...], out: Path, overwrite: bool = False) -> None:
    """Run ``exp`` over ``seeds`` through the harness, print the Markdown report and the files written."""
    own = (f"{exp.name}.json", f"{exp.name}.md", f"{exp.name}.png", "seed-*")  # what an experiment writes in --out
    check_out_dir(out, own, overwrite)
    start_writing(out, own, overwrite)
    report = run_experiment(exp, seeds, out, command_line(ctx), log=lambda m: say(m, console))
    console.print((out / f"{exp.name}.md").read_text(), soft_wrap=True, highlight=False, markup=False)
    console.print(f"wrote {out}/{exp.name}.json, {exp.name}.md, {exp.name}.png ({report['total_seconds']} s)",
                  soft_wrap=True)


@experiment_app.command("length")
def length(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where to write length.json/.md/.png and each seed's two "
                                      "models.")] = Path("attnkit-length"),
    seeds: Seeds = "0",
    task: Annotated[str, typer.Option("--task", help="Built-in task with variable lengths: reverse, copy, sort or "
                                      "numbers.")] = "reverse",
    min_len: Annotated[int, typer.Option("--min-len", help="Shortest input (characters; digits for "
                                         "numbers).")] = 5,
    max_len: Annotated[int, typer.Option("--max-len", help="Longest input (training and test).")] = 60,
    steps: Annotated[int, typer.Option("--steps", help="Training steps of each model (the equal budget).")] = 1500,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Pairs per batch.")] = 128,
    d_model: Annotated[int, typer.Option("--d-model", help="Decoder/annotation size (model width) of both "
                                         "models.")] = 128,
    embed_dim: Annotated[int, typer.Option("--embed-dim", help="Embedding size of both models.")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (warmup then cosine decay).")] = 3e-3,
    train_size: Annotated[int, typer.Option("--train-size", help="Training pairs.")] = 50_000,
    test_size: Annotated[int, typer.Option("--test-size", help="Held-out pairs scored per model.")] = 1_000,
    bucket_width: Annotated[int, typer.Option("--bucket-width", help="Width of the input-length buckets.")] = 10,
    threads: Threads = 1,
    quick: Annotated[bool, flag("--quick", help="A tiny smoke-test run (seconds per seed; no real gap).")] = False,
    device: Device = "auto",
    overwrite: OverwriteOut = False,
) -> None:
    """Train no-attention and Bahdanau models with equal budgets per seed; score against input length."""
    s = LengthSettings(task=task, min_len=min_len, max_len=max_len, steps=steps, batch_size=batch_size,
                       hidden_dim=d_model, embed_dim=embed_dim, lr=lr, train_size=train_size,
                       test_size=test_size, bucket_width=bucket_width)
    s = s.quick() if quick else s
    s.check()
    chosen = parse_seeds(seeds)
    apply_threads(threads)

    def one_seed(seed: int) -> dict:
        models, tables = length_seed(s, seed, device=device, log=lambda m: say(m, console), section=console.rule)
        for attention, model in models.items():
            model.save(out / f"seed-{seed}" / attention / "model")
        return tables

    _run(ctx, length_experiment(s, one_seed), chosen, out, overwrite)


def _ints(text: str | None, flag_name: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"{flag_name} must be comma-separated integers. Received: {text!r}") from None


def _settings(base: Any, quick: bool, given: dict[str, Any]) -> Any:
    """An experiment's settings: ``base`` (its ``quick()`` form with --quick) with every option the user gave
    (not None), checked."""
    s = dataclasses.replace(base.quick() if quick else base, **{k: v for k, v in given.items() if v is not None})
    s.check()
    return s


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(x.strip() for x in text.split(",") if x.strip())


@experiment_app.command("efficiency")
def efficiency(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where to write efficiency.json/.md/.png.")] = Path(
        "attnkit-efficiency"),
    seeds: Seeds = "0",
    quick: Annotated[bool, flag("--quick", help="A small run of a minute or two per seed (a smoke test).")] = False,
    kinds: Annotated[str | None, typer.Option("--kinds", help="Comma-separated kinds (default: full, "
                                              "sliding_window, block_sparse, linear, performer).")] = None,
    tasks: Annotated[str | None, typer.Option("--tasks", help="Comma-separated tasks: mqar (multi-query "
                                              "associative recall, long range; the default), copy (long range), "
                                              "local.")] = None,
    lengths: Annotated[str | None, typer.Option("--lengths", help="Comma-separated training lengths "
                                                "(default 16,32,64; quick 16,32).")] = None,
    timing_lengths: Annotated[str | None, typer.Option("--timing-lengths", help="Comma-separated lengths of "
                                                       "the attention-only timing (default 256,1024,4096).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps of each run.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Sequences per batch.")] = None,
    d_model: Annotated[int | None, typer.Option("--d-model", help="Model width of the GPT.")] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="Attention heads.")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Blocks.")] = None,
    window: Annotated[int | None, typer.Option("--window", help="Sliding window: keys on each side.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")] = None,
    symbols: Annotated[int | None, typer.Option("--symbols", help="Symbols of copy/local; keys and values of "
                                                "mqar (chance 1/symbols).")] = None,
    pairs: Annotated[int | None, typer.Option("--pairs", help="mqar: key-value pairs per sequence.")] = None,
    split: Annotated[str, typer.Option("--split", help="Held-out sequences scored: test (the report) or valid "
                                       "(for choosing settings).")] = "test",
    memory: Annotated[bool, flag("--memory/--no-memory", help="Measure each training step's peak memory in a "
                                 "child process.")] = True,
    threads: Threads = 1,
    device: Device = "cpu",
    overwrite: OverwriteOut = False,
) -> None:
    """Train a small GPT with each attention kind at several lengths per seed; quality, time and memory."""
    given = {"kinds": _names(kinds), "tasks": _names(tasks), "lengths": _ints(lengths, "--lengths"),
             "timing_lengths": _ints(timing_lengths, "--timing-lengths"), "steps": steps, "batch_size": batch_size,
             "d_model": d_model, "heads": heads, "layers": layers, "window": window, "lr": lr, "memory": memory,
             "symbols": symbols, "pairs": pairs, "split": split}
    s = _settings(EfficiencySettings(), quick, given)
    chosen = parse_seeds(seeds)
    apply_threads(threads)

    def one_seed(seed: int) -> dict:
        return efficiency_seed(s, seed, device=device, log=lambda m: say(m, console))

    _run(ctx, efficiency_experiment(s, one_seed), chosen, out, overwrite)


@experiment_app.command("faithfulness")
def faithfulness(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where to write faithfulness.json/.md/.png.")] = Path(
        "attnkit-faithfulness"),
    seeds: Seeds = "0",
    texts: Annotated[int, typer.Option("--texts", help="Test texts explained per classifier and seed.")] = 100,
    permutations: Annotated[int, typer.Option("--permutations", help="Shuffles of the attention per text "
                                              "(permutation test).")] = 30,
    classifier_steps: Annotated[int, typer.Option("--classifier-steps", help="Training steps of the attention "
                                                  "classifier.")] = 300,
    self_attention: Annotated[str, typer.Option("--self-attention", help="The attention classifier's "
                                                "self-attention: none, dot or multi_head.")] = "none",
    minilm_epochs: Annotated[float, typer.Option("--minilm-epochs", help="Fine-tuning passes of MiniLM over the "
                                                 "training split.")] = 1.0,
    minilm_max_len: Annotated[int, typer.Option("--minilm-max-len", help="Word pieces per text for MiniLM "
                                                "([CLS] and [SEP] included).")] = 64,
    threads: Threads = 1,
    quick: Annotated[bool, flag("--quick", help="A smoke test of a minute or two per seed (no real "
                                "figures).")] = False,
    device: Device = "cpu",
    overwrite: OverwriteOut = False,
) -> None:
    """Explain BBC News test texts with attention, rollout, gradients, leave-one-out and a random floor, for
    the attention classifier and fine-tuned MiniLM; AOPC comprehensiveness/sufficiency, tau against
    leave-one-out and the permutation test."""
    from attnkit.experiments.faithfulness import (
        FaithfulnessSettings,
        faithfulness_experiment,
        faithfulness_seed,
    )

    s = FaithfulnessSettings(texts=texts, permutations=permutations, classifier_steps=classifier_steps,
                             self_attention=self_attention, minilm_epochs=minilm_epochs, minilm_max_len=minilm_max_len)
    s = s.quick() if quick else s
    s.check()
    chosen = parse_seeds(seeds)
    apply_threads(threads)

    def one_seed(seed: int) -> dict:
        return faithfulness_seed(s, seed, device=device, log=lambda m: say(m, console))

    _run(ctx, faithfulness_experiment(s, one_seed), chosen, out, overwrite)


@experiment_app.command("alignment")
def alignment(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where to write alignment.json/.md/.png and "
                                      "alignment-examples.png.")] = Path("attnkit-alignment"),
    seeds: Seeds = "0,1,2",
    tasks: Annotated[str | None, typer.Option("--tasks", help=f"Comma-separated tasks (default: all of "
                                              f"{', '.join(ALIGNMENT_TASKS)}; numbers is German).")] = None,
    models: Annotated[str | None, typer.Option("--models", help=f"Comma-separated models (default: all of "
                                               f"{', '.join(ALIGNMENT_MODELS)}).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps of every model on a task (the equal "
                                              "budget; default 600).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Pairs per batch (default 64).")] = None,
    test_size: Annotated[int | None, typer.Option("--test-size", help="Held-out pairs scored per task "
                                                  "(default 300).")] = None,
    threads: Threads = 1,
    quick: Annotated[bool, flag("--quick", help="A smoke test (under a minute per seed): tiny models that "
                                "learn nothing, so its figures mean nothing.")] = False,
    device: Device = "auto",
    overwrite: OverwriteOut = False,
) -> None:
    """Train every attention model on dates, German numbers and phrases per seed; AER against the gold links."""
    given = {"tasks": _names(tasks), "models": _names(models), "steps": steps, "batch_size": batch_size,
             "test_size": test_size}
    s = _settings(AlignmentSettings(), quick, given)
    chosen, _ = parse_seeds(seeds), apply_threads(threads)
    _run(ctx, alignment_experiment(s, lambda seed: alignment_seed(s, seed, device, lambda m: say(m, console))),
         chosen, out, overwrite)


@experiment_app.command("demo")
def demo(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where to write demo.json/.md/.png and each seed's Bahdanau "
                                      "model.")] = Path("attnkit-demo-seeds"),
    seeds: Seeds = "0,1,2",
    steps: Annotated[int | None, typer.Option("--steps", help="Most training steps of the Bahdanau model (default "
                                              "1000, as attnkit demo; patience stops it earlier).")] = None,
    time_budget: Annotated[float | None, typer.Option("--time-budget", help="Seconds of training per model, a "
                                                      "safety net (default 600; attnkit demo's 90).")] = None,
    threads: Threads = 1,
    quick: Annotated[bool, flag("--quick", help="A smoke test (seconds per seed): tiny models that learn "
                                "nothing, so its figures mean nothing.")] = False,
    device: Device = "auto",
    overwrite: OverwriteOut = False,
) -> None:
    """Run attnkit demo once per seed (Bahdanau, no attention, diagonal and uniform references): its table as
    mean ± sd."""
    from attnkit.experiments.demo import demo_experiment, demo_seed, experiment_settings

    s = experiment_settings(quick, steps, time_budget)
    chosen, _ = parse_seeds(seeds), apply_threads(threads)

    def one_seed(seed: int) -> dict:
        result, tables = demo_seed(s, seed, device, lambda m: say(m, console))
        result.model.save(out / f"seed-{seed}" / "model")
        return tables

    _run(ctx, demo_experiment(s, one_seed), chosen, out, overwrite)


@experiment_app.command("classifier")
def classifier(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where to write classifier.json/.md/.png.")] = Path(
        "attnkit-classifier"),
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated split seeds, e.g. 0,1,2,3,4: each seed is "
                                       "one split of the corpus (and the models' initialisation and batch "
                                       "order); every figure is reported as mean ± sd over them.")] = "0,1,2,3,4",
    data: Annotated[str, typer.Option("--data", help="bbc-news (the built-in corpus) or a text,label CSV "
                                      "file.")] = "bbc-news",
    words: Annotated[int | None, typer.Option("--words", help="Every model reads the first N words of each text "
                                              "(default 32).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Passes of the attention classifier and MiniLM "
                                               "over the training texts, validation checked twice per epoch and "
                                               "the best checkpoint kept (default 2).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Texts per update of both (default "
                                                   "16).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="The attention classifier's peak learning rate "
                                             "(default 0.01).")] = None,
    minilm_max_len: Annotated[int | None, typer.Option("--minilm-max-len", help="Word pieces MiniLM reads at "
                                                       "most (default 128).")] = None,
    jaccard: Annotated[float | None, typer.Option("--jaccard", help="Texts whose word sets have a Jaccard "
                                                  "similarity >= this share a split (default 0.9).")] = None,
    minilm: Annotated[bool, flag("--minilm/--no-minilm", help="Fine-tune MiniLM too (the slow part).")] = True,
    threads: Threads = 1,
    quick: Annotated[bool, flag("--quick", help="A smoke test of seconds per seed (one epoch of 16 words, a tiny "
                                "classifier): its figures mean nothing.")] = False,
    device: Device = "cpu",
    overwrite: OverwriteOut = False,
) -> None:
    """Attention classifier, TF-IDF + logistic regression and fine-tuned MiniLM on splits without near
    duplicates, with one stated budget and validation selection; test accuracy as mean ± sd over the splits."""
    from attnkit.experiments.classifier import ClassifierSettings, classifier_experiment, classifier_seed

    given = {"data": data, "words": words, "epochs": epochs, "batch_size": batch_size, "lr": lr,
             "minilm_max_len": minilm_max_len, "jaccard": jaccard, "minilm": minilm}
    s = _settings(ClassifierSettings(), quick, given)
    chosen, _ = parse_seeds(seeds), apply_threads(threads)
    _run(ctx, classifier_experiment(s, lambda seed: classifier_seed(s, seed, device, lambda m: say(m, console))),
         chosen, out, overwrite)


@experiment_app.command("captioner")
def captioner(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where to write captioner.json/.md/.png and "
                                      "captioner-success/failure/unseen.png.")] = Path("attnkit-captioner"),
    folds: Annotated[int, typer.Option("--folds", help="Folds of held-out object pairs (each pair is a test pair "
                                       "of exactly one fold); every figure is mean ± sd over them.")] = 5,
    models: Annotated[str | None, typer.Option("--models", help="Comma-separated attention modes (default: soft, "
                                               "hard, uniform).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps of every model (the equal budget; "
                                              "default 240).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Captions per batch (default 32).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate (default 3e-3).")] = None,
    scenes_per_pair: Annotated[int | None, typer.Option("--scenes-per-pair", help="Scenes of each object pair "
                                                        "(default 8), encoded once.")] = None,
    encoder: Annotated[str | None, typer.Option("--encoder", help="efficientnet-lite0 (default) or small-cnn.")] = None,
    image_size: Annotated[int | None, typer.Option("--image-size", help="Scene side in pixels (default 224).")] = None,
    threads: Threads = 1,
    quick: Annotated[bool, flag("--quick", help="A smoke test (seconds per fold): tiny models on a small CNN that "
                                "learn nothing, so its figures mean nothing.")] = False,
    device: Device = "cpu",
    overwrite: OverwriteOut = False,
) -> None:
    """Soft, hard and uniform attention captioners on real-photograph scenes, over folds of held-out object
    pairs; exact match, peak in box, BLEU-4 and the references, plus a success, a failure and an unseen photo."""
    from attnkit.experiments.captioner import CaptionerSettings, captioner_experiment

    given = {"models": _names(models), "steps": steps, "batch_size": batch_size, "lr": lr,
             "scenes_per_pair": scenes_per_pair, "encoder": encoder, "image_size": image_size}
    s = _settings(CaptionerSettings(folds=folds), quick, given)
    apply_threads(threads)
    exp, chosen = captioner_experiment(s, device, lambda m: say(m, console))
    every_fold = exp.run

    def one_fold(fold: int) -> dict:  # each fold's rows kept as soon as they are known
        tables = every_fold(fold)
        write_json(out / f"seed-{fold}" / "captioner-fold.json", tables)
        return tables

    exp.run = one_fold
    _run(ctx, exp, tuple(chosen), out, overwrite)
