"""Scores of a captioner on held-out scenes: is the caption right, and did it look at what it named?

- exact match of the greedy (or beam) caption, and corpus BLEU-4 by sacrebleu on its 0-100 scale;
- ``peak_in_box``: over the object words of the reference captions, the share whose attention peak lies
  inside that object's box. The model is teacher-forced on the reference caption and the map is the
  ``alpha_t`` it uses to produce the object word; the peak is the centre of the region of largest weight.
- ``chance``: the mean share of the image covered by the named object's box, the ``peak_in_box`` of a
  peak dropped uniformly at random on the image.

Shape legend: ``I`` scenes, ``T`` words, ``L = gh * gw`` regions, ``S`` image side.

Example:
    >>> import torch
    >>> from attnkit.data.scenes import Scene, SceneObject
    >>> alphas = torch.zeros(1, 3, 4); alphas[0, :, 3] = 1.0       # (I, T, L): always the bottom-right cell
    >>> scene = Scene(None, "the cat", (SceneObject("cat", (32, 32, 64, 64)),))
    >>> peak_hits(alphas, [[4, 5, 2]], [scene], {5: "cat"}, grid=(2, 2), image_size=64)
    (1, 1, 0.25)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from attnkit.data.scenes import PHOTOS, SCENE_SIZES, Scene, make_scenes
from attnkit.metrics import bleu, exact_match
from attnkit.models.captioner import Captioner
from attnkit.recipes.captioner import CaptionRunSpec, encode_images, predict_captions


def cell_in_box(cell: int, box: tuple[int, int, int, int], grid: tuple[int, int], image_size: int) -> bool:
    """Does the centre of grid cell ``cell`` (row-major over ``grid = (gh, gw)``) lie inside ``box``?

    The rule that scores an attention peak: the peak's region counts at its centre, ``x1``/``y1`` exclusive.

    Example (a 4 x 4 grid over 100 pixels: cell 5 is row 1, column 1, centred at (37.5, 37.5)):
        >>> cell_in_box(5, (25, 25, 50, 50), (4, 4), 100), cell_in_box(5, (0, 0, 25, 25), (4, 4), 100)
        (True, False)
    """
    gh, gw = grid
    cx, cy = (cell % gw + 0.5) * image_size / gw, (cell // gw + 0.5) * image_size / gh  # the cell's centre
    return box[0] <= cx < box[2] and box[1] <= cy < box[3]


def peak_hits(alphas: Tensor, targets: list[list[int]], scenes: list[Scene], object_ids: dict[int, str],
              grid: tuple[int, int], image_size: int) -> tuple[int, int, float]:
    """Count object words whose attention peak falls in their object's box.

    Args:
        alphas: ``(I, T, L)`` the attention used to produce each target word.
        targets: per scene, the target ids ``[y_1, ..., eos]`` (row ``t`` of ``alphas`` produced ``targets[t]``).
        scenes: the scenes; the k-th object word of a caption names ``scene.objects[k]``.
        object_ids: token id -> object word.
        grid: ``(gh, gw)``; image_size: ``S``.

    Returns:
        ``(hits, object words, summed box share)``.
    """
    hits = words = 0
    share = 0.0
    for b, (row, scene) in enumerate(zip(targets, scenes, strict=True)):
        k = 0
        for t, tok in enumerate(row):
            if tok not in object_ids or k >= len(scene.objects):
                continue
            x0, y0, x1, y1 = box = scene.objects[k].box
            k += 1
            hits += int(cell_in_box(int(alphas[b, t].argmax()), box, grid, image_size))  # the peak's region
            words += 1
            share += (x1 - x0) * (y1 - y0) / image_size ** 2
    return hits, words, share


@torch.no_grad()
def attention_in_box(model: Captioner, features: Tensor, scenes: list[Scene], batch_size: int = 128) -> dict[str, float]:
    """``peak_in_box``, its ``chance`` level and the number of ``object_words`` (see the module docstring)."""
    tok, c = model.tokenizers["target"], model.config
    object_ids = {i: t.removeprefix("▁") for t, i in tok.get_vocab().items() if t.removeprefix("▁") in PHOTOS}
    device = model.out.weight.device
    model.eval()
    hits = words = 0
    share = 0.0
    for i in range(0, len(scenes), batch_size):
        part = scenes[i:i + batch_size]
        ids = tok.encode_batch([s.caption for s in part])  # [sos, ..., eos]
        T = max(len(r) for r in ids) - 1
        tgt_in = torch.full((len(ids), T), c.pad_id, dtype=torch.long)
        for b, r in enumerate(ids):
            tgt_in[b, : len(r) - 1] = torch.tensor(r[:-1])
        out = model(features[i:i + batch_size].to(device).float(), tgt_in.to(device))
        h, w, s = peak_hits(out.alignments.cpu(), [r[1:] for r in ids], part, object_ids, c.grid_size, c.image_size)
        hits, words, share = hits + h, words + w, share + s
    return {"peak_in_box": hits / max(words, 1), "chance": share / max(words, 1), "object_words": float(words)}


def scene_scores(model: Captioner, spec: CaptionRunSpec, size: int | None = None, beam_size: int = 1,
                 features: Tensor | None = None) -> dict[str, Any]:
    """Exact match, BLEU (0-100) and attention-in-box over ``size`` held-out test scenes (new object pairs).

    Args:
        model: a trained captioner; spec: the run's spec (seed and image size pick the scenes).
        size: test scenes (default ``spec.test_size``, else ``SCENE_SIZES["test"]``).
        beam_size: decoding beam; features: the scenes' cached encoder features, if already computed.

    Returns:
        ``{"exact_match", "bleu", "peak_in_box", "chance", "object_words", "scenes"}``.
    """
    n = size or spec.test_size or SCENE_SIZES["test"]
    scenes = make_scenes("test", n, seed=spec.seed, image_size=model.config.image_size)
    if features is None:
        features = encode_images(model, torch.stack([torch.from_numpy(s.image) for s in scenes]).numpy())
    model.eval()
    with torch.no_grad():
        preds = predict_captions(model, features, beam_size=beam_size)
    refs = [s.caption for s in scenes]
    scores: dict[str, Any] = {"exact_match": exact_match(preds, refs), "bleu": bleu(preds, refs)}
    scores.update(attention_in_box(model, features, scenes))
    scores["scenes"] = n
    return scores


__all__ = ["attention_in_box", "peak_hits", "scene_scores"]
