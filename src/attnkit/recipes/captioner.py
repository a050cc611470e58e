"""The ``train captioner`` recipe: Show, Attend and Tell on the built-in scenes or on user captions.

- ``CaptionRunSpec``: how the run's data and encoder are chosen; saved as ``run.json``.
- ``load_caption_data``: images (resized to ``S x S``) and captions of the training and validation sets.
- ``encode_images``: the encoder's frozen part over an image set, once (cached as float16).
- ``prepare_captioner``: a checked ``PreparedRun`` (greedy validation exact match, or BLEU for user data,
  picks the best model); nothing is written before ``fit()``.
- ``scene_scores`` / ``attention_in_box``: held-out exact match, BLEU (sacrebleu, 0-100) and the share of
  object words whose attention peak falls inside the named object's box, beside its chance level.

Shape legend: ``I`` images, ``S`` image side, ``B`` batch, ``T`` words, ``L = gh * gw`` regions.

Example:
    >>> from attnkit.training import TrainConfig
    >>> spec = CaptionRunSpec(encoder="small-cnn", image_size=32, train_size=8, valid_size=2, test_size=2)
    >>> run = prepare_captioner(spec, TrainConfig(steps=2, eval_every=2, progress=False, device="cpu"),
    ...                         {"grid": 2, "cnn_channels": 8, "hidden_dim": 16, "attention_dim": 8,
    ...                          "annotation_dim": 8, "embed_dim": 8})
    >>> result = run.fit()
    >>> from attnkit.recipes.captioner_scores import scene_scores
    >>> result.steps, sorted(scene_scores(run.model, spec))
    (2, ['bleu', 'chance', 'exact_match', 'object_words', 'peak_in_box', 'scenes'])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnkit.data.captions import CaptionStream, read_captions, split_by_image
from attnkit.data.images import read_image, resize_rgb
from attnkit.data.scenes import SCENE_SIZES, Scene, make_scenes
from attnkit.data.tokenize import Tokenizer
from attnkit.errors import InputError
from attnkit.metrics import bleu, exact_match
from attnkit.models.captioner import ATTENTION_MODES, Captioner, CaptionerConfig
from attnkit.models.image_encoders import ENCODERS, FEATURE_STRIDES
from attnkit.recipes.common import Log, PreparedRun, check_choice, no_log
from attnkit.storage import read_json
from attnkit.training.runtime import global_batch_size
from attnkit.training.trainer import TrainConfig, TrainResult


@dataclass
class CaptionRunSpec:
    """How a captioning run's data is made; saved as ``run.json``.

    Example:
        >>> CaptionRunSpec().data, CaptionRunSpec().encoder
        ('scenes', 'efficientnet-lite0')
    """

    data: str = "scenes"  # "scenes" or a captions file (image<TAB>caption)
    images: str | None = None  # image folder of a captions file (default: the file's folder)
    seed: int = 0  # splits, scenes, initialisation
    encoder: str = "efficientnet-lite0"  # efficientnet-lite0 | small-cnn
    attention_mode: str = "soft"  # soft | hard
    image_size: int = 224  # S
    fine_tune_last_block: bool = False  # EfficientNet: train its last block (features cached before it)
    feature_stride: int = 16  # EfficientNet: 16 = its 14 x 14 x 112 map at 224 px, 32 = the 7 x 7 x 1280 one
    train_size: int | None = None  # scenes: training scenes (default SCENE_SIZES)
    valid_size: int | None = None  # scenes: validation scenes
    test_size: int | None = None  # scenes: held-out test scenes scored after training

    @classmethod
    def read(cls, path: Path) -> CaptionRunSpec | None:
        """``run.json`` of a run directory, or None when there is none (unknown keys are ignored)."""
        if not path.is_file():
            return None
        data = read_json(path, dict)  # names the file when damaged
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class CaptionData:
    """Images ``(I, S, S, 3)`` uint8 and captions of one split; ``image_index[k]`` is caption ``k``'s image."""

    images: np.ndarray
    captions: list[str]
    image_index: list[int]
    scenes: list[Scene] | None = None


def _scene_split(spec: CaptionRunSpec, split: str, size: int | None) -> CaptionData:
    n = SCENE_SIZES[split] if size is None else size
    if n < 1:
        raise InputError(f"--{split.replace('validation', 'valid')}-size must be >= 1. Received: {n}")
    scenes = make_scenes(split, n, seed=spec.seed, image_size=spec.image_size)
    return CaptionData(np.stack([s.image for s in scenes]), [s.caption for s in scenes], list(range(n)), scenes)


def _file_split(spec: CaptionRunSpec, records: list, folder: Path) -> CaptionData:
    names = sorted({r.image for r in records})
    first_line = {}
    for r in records:
        first_line.setdefault(r.image, r.line)
    pictures = [resize_rgb(read_image(folder / n, where=f"{spec.data} line {first_line[n]}: image {n!r}"),
                           spec.image_size) for n in names]
    index = {n: i for i, n in enumerate(names)}
    return CaptionData(np.stack(pictures), [r.caption for r in records], [index[r.image] for r in records])


def load_caption_data(spec: CaptionRunSpec) -> tuple[CaptionData, CaptionData]:
    """Training and validation data: generated scenes, or a captions file split by image.

    Raises:
        InputError: a bad captions file or image (the message names the file and line).
    """
    if spec.data == "scenes":
        return _scene_split(spec, "train", spec.train_size), _scene_split(spec, "validation", spec.valid_size)
    path = Path(spec.data)
    folder = Path(spec.images) if spec.images else path.parent
    if spec.images and not folder.is_dir():
        raise InputError(f"--images {spec.images!r} is not a directory")
    records = read_captions(path, folder)
    train, valid = split_by_image(records, seed=spec.seed)
    if not valid:
        raise InputError(f"{path}: captions of at least two images are needed (one held out for validation)")
    return _file_split(spec, train, folder), _file_split(spec, valid, folder)


def encode_images(model: Captioner, images: np.ndarray, batch_size: int = 32, log: Log = no_log) -> torch.Tensor:
    """The encoder's frozen part over ``images`` ``(I, S, S, 3)`` uint8, once: ``(I, ...)`` float16 on the CPU."""
    device = model.out.weight.device
    out = []
    for i in range(0, len(images), batch_size):
        pixels = torch.from_numpy(images[i:i + batch_size]).permute(0, 3, 1, 2).float().div(255)  # (b, 3, S, S)
        out.append(model.frozen_features(pixels.to(device)).to("cpu", torch.float16))
    log(f"encoded {len(images)} images with the frozen {model.config.encoder} part")
    return torch.cat(out)


def _check(spec: CaptionRunSpec) -> None:
    check_choice("--encoder", spec.encoder, ENCODERS)
    check_choice("--attention-mode", spec.attention_mode, ATTENTION_MODES)
    if spec.image_size < 32 or (spec.encoder == "efficientnet-lite0" and spec.image_size % 32):
        raise InputError(f"--image-size must be >= 32 (a multiple of 32 for efficientnet-lite0). "
                         f"Received: {spec.image_size}")
    check_choice("--feature-stride", spec.feature_stride, FEATURE_STRIDES)
    if spec.encoder == "efficientnet-lite0":
        from attnkit.models.image_encoders import _efficientnet_parts

        _efficientnet_parts()  # the packages are there, or an InputError naming the missing one


def build_captioner(spec: CaptionRunSpec, captions: list[str], **config: Any) -> Captioner:
    """A fresh captioner with a word tokenizer trained on ``captions``, initialised from ``spec.seed``.

    Example:
        >>> spec = CaptionRunSpec(encoder="small-cnn", image_size=32)
        >>> m = build_captioner(spec, ["the cat above the moon"], grid=2, cnn_channels=8)
        >>> m.config.vocab_size, m.config.max_len
        (8, 19)
    """
    tok = Tokenizer.train(captions, scheme="word", lowercase=True)
    longest = max(len(ids) for ids in tok.encode_batch(captions))
    try:
        cfg = CaptionerConfig(vocab_size=tok.vocab_size, encoder=spec.encoder, attention_mode=spec.attention_mode,
                              image_size=spec.image_size, fine_tune_last_block=spec.fine_tune_last_block,
                              feature_stride=spec.feature_stride,
                              max_len=2 * longest + 5, pad_id=tok.pad_id, sos_id=tok.sos_id,
                              eos_id=tok.eos_id, unk_id=tok.unk_id, **config)
    except (ValueError, TypeError) as err:
        raise InputError(str(err)) from err
    torch.manual_seed(spec.seed)
    model = Captioner(cfg)
    model.tokenizers = {"target": tok}
    return model


def prepare_captioner(spec: CaptionRunSpec, config: TrainConfig, model: dict[str, Any], *, batch_size: int = 64,
                      log: Log | None = None) -> PreparedRun:
    """The ``train captioner`` recipe: checked inputs, cached features, nothing written.

    Args:
        spec: data and encoder (with ``config.resume``: the run's saved one).
        config: trainer settings; ``metric``/``mode`` are set here (exact match for scenes, BLEU for files).
        model: ``CaptionerConfig`` fields (``hidden_dim``, ``doubly_stochastic``, ...).
        batch_size: captions per batch.
        log: where progress lines go.

    Returns:
        A ``PreparedRun``; ``fit()`` trains.
    """
    log = log or no_log
    _check(spec)
    train, valid = load_caption_data(spec)
    if config.resume:
        net = Captioner.load(Path(str(config.out_dir)) / "checkpoint")
    else:
        net = build_captioner(spec, train.captions, **model)
    tok = net.tokenizers["target"]
    train_feats = encode_images(net, train.images, log=log)
    valid_feats = encode_images(net, valid.images, log=log)
    stream = CaptionStream(train_feats, tok.encode_batch(train.captions), train.image_index,
                           batch_size=global_batch_size(batch_size), seed=spec.seed, pad_id=tok.pad_id)
    refs = [valid.captions[[k for k, i in enumerate(valid.image_index) if i == j][0]]
            for j in range(len(valid.images))]
    metric = "exact_match" if spec.data == "scenes" else "bleu"

    def evaluate(m: Captioner) -> dict[str, float]:
        preds = predict_captions(m, valid_feats)
        return {"exact_match": exact_match(preds, refs), "bleu": bleu(preds, refs)}

    c = net.config
    how = ("trained from scratch" if c.encoder == "small-cnn" else
           "fine-tuning its last block" if c.fine_tune_last_block else "frozen")
    summary = (f"training captioner ({c.encoder} {how}, "
               f"{c.attention_mode} attention over {c.regions} regions, {net.num_parameters(trainable_only=True):,} "
               f"trainable parameters) on {spec.data}: {len(train.captions)} captions of {len(train.images)} images, "
               f"{len(valid.images)} images for validation")
    config = dataclasses.replace(config, metric=metric, mode="max")
    return PreparedRun(net, config, stream, evaluate, summary, best_line=_best_line(metric))


def _best_line(metric: str):
    def line(result: TrainResult) -> str | None:
        if result.best_metric is None:
            return None
        return f"best validation {metric.replace('_', ' ')} {result.best_metric:.4f} at step {result.best_step}; "
    return line


def predict_captions(model: Captioner, features: torch.Tensor, beam_size: int = 1,
                     batch_size: int = 128) -> list[str]:
    """Greedy (or beam) captions of cached features ``(I, ...)``."""
    tok, c = model.tokenizers["target"], model.config
    device = model.out.weight.device
    out: list[str] = []
    for i in range(0, features.size(0), batch_size):
        dec = model.generate(features[i:i + batch_size].to(device).float(), beam_size=beam_size)
        out += [tok.decode([t for t in row.tolist() if t != c.pad_id]) for row in dec.tokens]
    return out


__all__ = ["CaptionData", "CaptionRunSpec", "build_captioner", "encode_images", "load_caption_data",
           "predict_captions", "prepare_captioner"]
