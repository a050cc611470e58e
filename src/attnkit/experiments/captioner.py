"""The ``attnkit experiment captioner`` experiment: does the captioner look at what it names, on new compositions?

The scenes (:mod:`attnkit.data.scenes`) paste augmented crops of real photographs; every unordered object pair
gets ``scenes_per_pair`` scenes, made and encoded by the frozen encoder once (``ScenePool``) and shared by the
folds. ``pair_folds`` divides the pairs into ``folds`` folds: each pair is a test pair of exactly one fold,
each fold has its own validation pairs (disjoint from its test pairs) and trains on the rest, so every test
scene shows two objects never seen together in that fold's training. A fold plays the role of a seed in the
harness, which reports every figure as mean ± sd over the folds.

Per fold, ``captioner_fold`` trains each model of ``MODES`` with the same budget (steps, batch, learning-rate
schedule, data): **soft** attention, **hard** attention and **uniform** attention (no attention: the context
is the plain mean of the regions). The checkpoint kept is the one of best validation exact match (greedy, on
the validation pairs' scenes); the test split is read once, at the end:

- ``exact_match`` and ``bleu`` (sacrebleu BLEU-4, 0-100) of the greedy caption;
- ``peak_in_box``: the share of object words whose teacher-forced attention peak falls inside the named
  object's box (:func:`attnkit.recipes.captioner_scores.attention_in_box`); uniform attention has no peak.

References on the same test scenes (``reference_levels``), each a ``peak_in_box`` level:

- ``chance by area``: a peak dropped uniformly on the image, i.e. the named box's share of the image;
- ``either box by area``: the share of the image covered by either object's box (a peak that at least lands
  on an object);
- ``random object``: a model that puts its peak on one of the two objects (the grid cell of its box centre)
  at random, scored by the same rule as the models: 0.5 when each box holds its own centre cell.

Worked example (``S = 100``, a 4 x 4 grid, boxes ``(0, 0, 40, 40)`` and ``(50, 50, 100, 100)``): chance
``(0.16 + 0.25) / 2 = 0.205``, either box ``0.41`` for both words, random object ``(1 + 0) / 2 = 0.5`` per word.

``captioner_experiment`` hands a fold function to the harness, which writes ``captioner.json``, ``.md`` and
``.png`` plus three pictures of the first fold's soft model (chosen by a fixed rule, ``EXAMPLE_RULE``):
``captioner-success.png``, ``captioner-failure.png`` (held-out test scenes) and ``captioner-unseen.png``
(a real photograph outside the vocabulary, which its title says).

Shape legend: ``I`` scenes, ``T`` words, ``L = gh * gw`` regions, ``S`` image side.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from attnkit.data.captions import CaptionStream
from attnkit.data.images import resize_rgb
from attnkit.data.scenes import PHOTOS, UNSEEN_PHOTOS, Scene, pair_folds, pair_scenes, photo
from attnkit.errors import InputError
from attnkit.experiments.harness import Experiment, Panel, Table
from attnkit.metrics import bleu, exact_match
from attnkit.models.captioner import ATTENTION_MODES, Captioner
from attnkit.models.image_encoders import ENCODERS, FEATURE_STRIDES
from attnkit.recipes.captioner import CaptionRunSpec, build_captioner, encode_images, predict_captions
from attnkit.recipes.captioner_scores import attention_in_box, cell_in_box
from attnkit.recipes.common import Log, no_log
from attnkit.training.trainer import TrainConfig, Trainer

MODES: tuple[str, ...] = ATTENTION_MODES  # soft, hard, uniform
REFERENCES: tuple[str, ...] = ("chance by area", "either box by area", "random object")
EXAMPLE_RULE = ("the first fold's soft model (else the first model) on that fold's test scenes in order: the first "
                "it captions right (success) and the first it captions wrong (failure; the first test scene when "
                "none is wrong, which its title says)")
UNSEEN = next(iter(UNSEEN_PHOTOS))


@dataclass
class CaptionerSettings:
    """Sizes of the experiment (``quick()`` shrinks them to a smoke test).

    Example:
        >>> CaptionerSettings().quick().encoder, CaptionerSettings().folds
        ('small-cnn', 5)
    """

    folds: int = 5
    models: tuple[str, ...] = MODES
    scenes_per_pair: int = 8  # scenes of each object pair (105 pairs of 15 words: 840 scenes, encoded once)
    valid_pairs: int | None = None  # validation pairs per fold (default: half a test set)
    steps: int = 240  # training steps of every model (the equal budget; chosen on fold 0's validation pairs)
    batch_size: int = 32
    lr: float = 3e-3  # peak learning rate (warmup then cosine decay)
    evals: int = 3  # validation checks per training run (the best one is kept)
    encoder: str = "efficientnet-lite0"
    image_size: int = 224
    feature_stride: int = 16  # 16: EfficientNet-Lite0's 14 x 14 x 112 map at 224 px
    hidden_dim: int = 128  # D, the LSTM state
    embed_dim: int = 128
    attention_dim: int = 128  # Da and A: the annotation vectors and the additive attention
    penalty: float = 0.01  # the doubly stochastic penalty (soft)
    seed: int = 0  # the division into folds and the scenes
    is_quick: bool = False

    def quick(self) -> CaptionerSettings:
        """The same settings shrunk to a smoke test (seconds per fold; the models learn nothing)."""
        return CaptionerSettings(**{**asdict(self), "scenes_per_pair": 1, "steps": 3, "batch_size": 16, "evals": 1,
                                    "encoder": "small-cnn", "image_size": 64, "hidden_dim": 16, "embed_dim": 8,
                                    "attention_dim": 16,
                                    "is_quick": True})

    def check(self) -> None:
        """``InputError`` naming the flag for a value out of range."""
        if not self.models or len(set(self.models)) != len(self.models) or not set(self.models) <= set(MODES):
            raise InputError(f"--models must be distinct comma-separated names among {', '.join(MODES)}. "
                             f"Received: {','.join(self.models)!r}")
        pairs = len(PHOTOS) * (len(PHOTOS) - 1) // 2
        if not 2 <= self.folds <= pairs:
            raise InputError(f"--folds must be from 2 to {pairs} (the object pairs). Received: {self.folds}")
        for flag, value in (("--steps", self.steps), ("--batch-size", self.batch_size),
                            ("--scenes-per-pair", self.scenes_per_pair), ("--evals", self.evals),
                            ("--valid-pairs", 1 if self.valid_pairs is None else self.valid_pairs)):
            if value < 1:
                raise InputError(f"--{flag.lstrip('-')} must be >= 1. Received: {value}")
        if self.encoder not in ENCODERS:
            raise InputError(f"--encoder must be one of {', '.join(ENCODERS)}. Received: {self.encoder!r}")
        if self.feature_stride not in FEATURE_STRIDES:
            raise InputError(f"--feature-stride must be one of {FEATURE_STRIDES}. Received: {self.feature_stride}")
        try:
            pair_folds(folds=self.folds, seed=self.seed, valid_pairs=self.valid_pairs)
        except ValueError as err:
            raise InputError(f"--folds {self.folds}: {err}") from None


# ----------------------------------------------------------------------------------------------------------
# Scenes, encoded once
# ----------------------------------------------------------------------------------------------------------


@dataclass
class ScenePool:
    """Every pair's scenes, their pairs and their frozen-encoder features ``(I, ...)`` float16, and the folds."""

    scenes: list[Scene]
    pairs: list[tuple[str, str]]
    features: torch.Tensor
    folds: list[dict[str, list[tuple[str, str]]]]

    def indices(self, fold: int, split: str) -> list[int]:
        """Scenes of ``split``'s pairs in ``fold``, in pool order."""
        wanted = set(self.folds[fold][split])
        return [i for i, p in enumerate(self.pairs) if p in wanted]


def _spec(s: CaptionerSettings, mode: str, seed: int) -> CaptionRunSpec:
    return CaptionRunSpec(encoder=s.encoder, attention_mode=mode, image_size=s.image_size,
                          feature_stride=s.feature_stride, seed=seed)


def _model_config(s: CaptionerSettings) -> dict[str, Any]:
    grid = {"grid": 4, "cnn_channels": 16} if s.encoder == "small-cnn" else {}
    return {"hidden_dim": s.hidden_dim, "embed_dim": s.embed_dim, "annotation_dim": s.attention_dim,
            "attention_dim": s.attention_dim, "doubly_stochastic": s.penalty, **grid}


def make_pool(s: CaptionerSettings, log: Log = no_log) -> ScenePool:
    """The scenes of every pair, encoded once by the frozen encoder, and the folds."""
    folds = pair_folds(folds=s.folds, seed=s.seed, valid_pairs=s.valid_pairs)
    every = sorted({p for f in folds for split in f.values() for p in split})
    scenes = pair_scenes(every, s.scenes_per_pair, seed=s.seed, image_size=s.image_size)
    pairs = [tuple(sorted(o.word for o in sc.objects)) for sc in scenes]
    encoder = build_captioner(_spec(s, "soft", s.seed), [sc.caption for sc in scenes], **_model_config(s))
    began = time.perf_counter()
    features = encode_images(encoder, np.stack([sc.image for sc in scenes]))
    log(f"{len(scenes)} scenes of {len(every)} object pairs ({len(PHOTOS)} words) encoded once by the frozen "
        f"{s.encoder} part in {time.perf_counter() - began:.0f} s")
    return ScenePool(scenes, pairs, features, folds)


# ----------------------------------------------------------------------------------------------------------
# References
# ----------------------------------------------------------------------------------------------------------


def _centre_cell_hit(box: tuple[int, int, int, int], named: tuple[int, int, int, int], grid: tuple[int, int],
                     S: int) -> bool:
    """Does a peak on the grid cell holding ``box``'s centre fall inside ``named`` (the models' rule)?"""
    gh, gw = grid
    col = min(gw - 1, int((box[0] + box[2]) / 2 * gw / S))
    row = min(gh - 1, int((box[1] + box[3]) / 2 * gh / S))
    return cell_in_box(row * gw + col, named, grid, S)


def reference_levels(scenes: list[Scene], grid: tuple[int, int], image_size: int) -> dict[str, float]:
    """``peak_in_box`` of the references over the object words of ``scenes`` (see the module docstring).

    Example (the module docstring's worked example):
        >>> from attnkit.data.scenes import SceneObject
        >>> scene = Scene(None, "", (SceneObject("a", (0, 0, 40, 40)), SceneObject("b", (50, 50, 100, 100))))
        >>> {k: round(v, 3) for k, v in reference_levels([scene], (4, 4), 100).items()}
        {'chance by area': 0.205, 'either box by area': 0.41, 'random object': 0.5}
    """
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1]) / image_size ** 2  # noqa: E731
    chance, either, random_object = [], [], []
    for scene in scenes:
        boxes = [o.box for o in scene.objects]
        for named in boxes:
            chance.append(area(named))
            either.append(sum(area(b) for b in boxes))
            random_object.append(np.mean([_centre_cell_hit(b, named, grid, image_size) for b in boxes]))
    return dict(zip(REFERENCES, (float(np.mean(v)) for v in (chance, either, random_object)), strict=True))


# ----------------------------------------------------------------------------------------------------------
# One fold
# ----------------------------------------------------------------------------------------------------------


def _train_config(s: CaptionerSettings, seed: int, device: str) -> TrainConfig:
    """The equal budget: ``s.steps`` steps, 10% warmup then cosine decay, ``s.evals`` validation checks."""
    return TrainConfig(steps=s.steps, lr=s.lr, schedule="cosine", warmup_steps=max(1, s.steps // 10),
                       eval_every=max(1, s.steps // s.evals), seed=seed, metric="exact_match", mode="max",
                       out_dir=None, device=device, log_every=max(1, s.steps // 5), progress=False)


def _captions(model: Captioner, pool: ScenePool, idx: list[int]) -> tuple[list[str], list[str]]:
    """Greedy captions and references of the pool's scenes ``idx``."""
    model.eval()
    with torch.no_grad():
        preds = predict_captions(model, pool.features[idx])
    return preds, [pool.scenes[i].caption for i in idx]


def train_mode(s: CaptionerSettings, mode: str, pool: ScenePool, fold: int, device: str = "cpu",
               log: Log = no_log) -> tuple[Captioner, dict[str, Any]]:
    """Train one model on ``fold``'s training scenes; keep the checkpoint of best validation exact match.

    Returns:
        The model (best weights) and its validation figures ``{"validation_exact_match",
        "validation_peak_in_box", "best_step", "seconds"}``.
    """
    train, valid = pool.indices(fold, "train"), pool.indices(fold, "validation")
    model = build_captioner(_spec(s, mode, s.seed * 1000 + fold), [pool.scenes[i].caption for i in train],
                            **_model_config(s))
    tok = model.tokenizers["target"]
    stream = CaptionStream(pool.features[train], tok.encode_batch([pool.scenes[i].caption for i in train]),
                           list(range(len(train))), batch_size=s.batch_size, seed=fold, pad_id=tok.pad_id)

    def evaluate(m: Captioner) -> dict[str, float]:
        return {"exact_match": exact_match(*_captions(m, pool, valid))}

    began = time.perf_counter()
    result = Trainer(model, _train_config(s, fold, device), stream, evaluate=evaluate).fit()
    seconds = time.perf_counter() - began
    model.eval()
    box = attention_in_box(model, pool.features[valid], [pool.scenes[i] for i in valid])
    figures = {"validation_exact_match": result.best_metric, "best_step": result.best_step, "seconds": seconds,
               "validation_peak_in_box": None if mode == "uniform" else box["peak_in_box"]}
    log(f"fold {fold}, {mode}: {result.steps} steps in {seconds:.0f} s, best validation exact match "
        f"{result.best_metric:.3f} at step {result.best_step}")
    return model, figures


def held_out_scores(model: Captioner, pool: ScenePool, fold: int) -> tuple[dict[str, Any], list[str]]:
    """Exact match, BLEU-4 and peak-in-box on ``fold``'s test scenes (read here, once), and the captions."""
    test = pool.indices(fold, "test")
    preds, refs = _captions(model, pool, test)
    box = attention_in_box(model, pool.features[test], [pool.scenes[i] for i in test])
    uniform = model.config.attention_mode == "uniform"
    return {"exact_match": exact_match(preds, refs), "bleu": bleu(preds, refs),
            "peak_in_box": None if uniform else box["peak_in_box"]}, preds


def examples(model: Captioner, pool: ScenePool, fold: int, preds: list[str]) -> list[dict[str, Any]]:
    """The pictures' data (``EXAMPLE_RULE``): a success, a failure and the unseen photograph, each with its
    greedy caption, words and one map per word ``(gh, gw)``."""
    test = pool.indices(fold, "test")
    right = [k for k, i in enumerate(test) if preds[k] == pool.scenes[i].caption]
    wrong = [k for k, i in enumerate(test) if preds[k] != pool.scenes[i].caption]
    chosen = [("success", right[0] if right else None), ("failure", wrong[0] if wrong else 0)]
    out = []
    for kind, k in chosen:
        if k is None:
            continue
        scene = pool.scenes[test[k]]
        (said,) = model.caption_words([scene.image])
        out.append({"kind": kind, "scene": test[k], "position": k, "reference": scene.caption, "caption": said.text,
                    "right": said.text == scene.caption, "none_wrong": kind == "failure" and not wrong,
                    "words": said.words, "maps": said.alignments.numpy().round(4).tolist(),
                    "boxes": [list(o.box) for o in scene.objects]})
    (said,) = model.caption_words([resize_rgb(photo(UNSEEN), model.config.image_size)])
    out.append({"kind": "unseen", "caption": said.text, "words": said.words,
                "maps": said.alignments.numpy().round(4).tolist()})
    return out


def captioner_fold(s: CaptionerSettings, pool: ScenePool, fold: int, device: str = "cpu",
                   log: Log = no_log) -> dict[str, Any]:
    """Train every model of ``s.models`` on ``fold`` with the same budget; score the test split once.

    Returns:
        ``{"scores": rows, "validation": rows, "examples": [...]}`` (``examples``: the pictures' data from the
        soft model, else the first, not a table).
    """
    test = [pool.scenes[i] for i in pool.indices(fold, "test")]
    tables: dict[str, Any] = {"scores": [], "validation": [], "examples": []}
    pictured = "soft" if "soft" in s.models else s.models[0]
    for mode in s.models:
        model, valid = train_mode(s, mode, pool, fold, device, log)
        scores, preds = held_out_scores(model, pool, fold)
        tables["scores"].append({"model": mode, **scores, "seconds": valid["seconds"]})
        tables["validation"].append({"model": mode, **valid})
        if mode == pictured:
            tables["examples"] = examples(model, pool, fold, preds)
        grid = model.config.grid_size
    levels = reference_levels(test, grid, s.image_size)
    tables["scores"] += [{"model": f"reference: {name}", "peak_in_box": v} for name, v in levels.items()]
    log(f"fold {fold} test (exact match, peak in box): " + "; ".join(
        f"{r['model']} {r['exact_match']:.3f}, {r['peak_in_box'] if r['peak_in_box'] is None else round(r['peak_in_box'], 3)}"
        for r in tables["scores"] if "exact_match" in r) + "; references " + ", ".join(
        f"{k} {v:.3f}" for k, v in levels.items()))
    return tables


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------


TABLES = (
    Table("scores", "Held-out object pairs: exact match, peak in box and BLEU-4 per model, and the references",
          ("model",), ("exact_match", "peak_in_box", "bleu", "seconds"),
          note="exact_match: greedy caption equal to the reference; peak_in_box: share of object words whose "
               "teacher-forced attention peak lies inside the named object's box (uniform attention has no peak); "
               "bleu: sacrebleu BLEU-4, 0-100; seconds: training time. References (peak_in_box levels on the same "
               "scenes): chance by area = the named box's share of the image; either box by area = the share "
               "covered by either object; random object = a model that looks at one of the two objects at random "
               "(computed with the models' rule, 0.5 when each box holds its centre cell)."),
    Table("validation", "Validation pairs: the figures that chose each model's checkpoint (the test split was read "
          "once, after training)", ("model",),
          ("validation_exact_match", "validation_peak_in_box", "best_step")),
)
PANELS = (
    Panel("scores", "model", "exact_match", ("model",), "model", "exact match (held-out pairs)", ylim=(0.0, 1.02),
          where=lambda row: not row["model"].startswith("reference")),
    Panel("scores", "model", "peak_in_box", ("model",), "model or reference", "peak in the named box",
          ylim=(0.0, 1.02)),
)


def _scene_image(example: dict[str, Any], image: np.ndarray) -> np.ndarray:
    """The scene with its object boxes outlined in white."""
    from PIL import Image, ImageDraw

    pic = Image.fromarray(image)
    draw = ImageDraw.Draw(pic)
    for x0, y0, x1, y1 in example.get("boxes", []):
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline="white", width=2)
    return np.asarray(pic)


def example_title(example: dict[str, Any], fold: int, model: str) -> str:
    """The picture's title: what the scene is, the rule that chose it, the reference and the caption."""
    said = f"the {model} model said {example['caption']!r}"
    if example["kind"] == "unseen":
        return (f"A real photograph outside the scenes' vocabulary (matplotlib's grace_hopper.jpg: no caption word "
                f"names its object, so no caption can be right): {said}")
    verdict = "right" if example["right"] else "wrong"
    rule = ("first test scene; none was captioned wrong" if example["none_wrong"] else
            f"first test scene captioned {verdict}")
    return (f"Fold {fold}, held-out pair ({rule}, test scene {example['position']}): reference "
            f"{example['reference']!r}; {said} ({verdict}); boxes outlined")


def scene_figure(image: np.ndarray, words: list[str], maps: Any, title: str) -> Any:
    """One picture's per-word attention overlays with their colour scale and ``title``
    (:func:`attnkit.viz.report.regions_figure` of a captioner record).

    Args:
        image: ``(S, S, 3)`` uint8; words: ``T`` words; maps: ``(T, gh, gw)``; title: the caption of the picture.
    """
    from attnkit.viz.record import AttentionRecord
    from attnkit.viz.report import regions_figure

    maps = torch.as_tensor(np.asarray(maps, dtype=np.float32))  # (T, gh, gw)
    rec = AttentionRecord("captioner", [], out_tokens=list(words), image=image,
                          image_attention=maps.flatten(1), region_grid=tuple(maps.shape[1:]), output=title)
    return regions_figure(rec)


def example_figures(report: dict[str, Any], pool: Callable[[], ScenePool]) -> dict[str, Any]:
    """``{"success", "failure", "unseen"}`` pictures of the first fold's examples (``EXAMPLE_RULE``)."""
    fold = report["seeds"][0]
    models = report["settings"]["models"]
    model = "soft" if "soft" in models else models[0]
    figures = {}
    for e in report["per_seed"][str(fold)]["examples"]:
        size = report["settings"]["image_size"]
        image = (resize_rgb(photo(UNSEEN), size) if e["kind"] == "unseen" else
                 _scene_image(e, pool().scenes[e["scene"]].image))
        figures[e["kind"]] = scene_figure(image, e["words"], e["maps"], example_title(e, fold, model))
    return figures


def captioner_experiment(s: CaptionerSettings, device: str = "cpu", log: Log = no_log) -> tuple[Experiment, list[int]]:
    """The harness's view of the experiment and the folds to run (``0 .. folds - 1``, each a "seed")."""
    pool = functools.cache(lambda: make_pool(s, log))

    def run(fold: int) -> dict[str, Any]:
        return captioner_fold(s, pool(), fold, device, log)

    title = (f"Captioner on held-out object pairs of real photographs: {', '.join(s.models)} attention over "
             f"{s.folds} folds (each fold is a seed of the report)" + (" (quick smoke test: the models learn nothing)" if s.is_quick else ""))
    settings = {**asdict(s), "words": sorted(PHOTOS), "unseen_photograph": UNSEEN_PHOTOS[UNSEEN],
                "example_rule": EXAMPLE_RULE}
    exp = Experiment("captioner", title, TABLES, PANELS, run, settings=settings,
                     extra_figures=lambda report: example_figures(report, pool))
    return exp, list(range(s.folds))


__all__ = ["EXAMPLE_RULE", "MODES", "PANELS", "REFERENCES", "TABLES", "CaptionerSettings", "ScenePool",
           "captioner_experiment", "captioner_fold", "example_figures", "example_title", "examples", "make_pool",
           "held_out_scores", "reference_levels", "scene_figure", "train_mode"]
