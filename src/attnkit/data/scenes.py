"""The built-in captioning set: real photographs pasted at known places, captions that name them and where.

Each scene is an ``S x S`` canvas (``S = image_size``, 224 by default) with a noisy plain background and two
objects, each an augmented crop of one real photograph that ships inside an installed wheel (``PHOTOS``:
scikit-image's chelsea the cat, coffee, the rocket, the astronaut, ...; scikit-learn's ``china.jpg`` temple
and ``flower.jpg``), pasted side by side or one above the other. Every crop is new: a random square of
70-100% of the photograph's shorter side at a random place, flipped left-right half of the time, with a
small random change of brightness, contrast and colour balance, so an object never looks the same twice.
Its caption names both objects and their relation, the left (or upper) one first::

    "the cat to the left of the rocket"        "the coffee above the moon"

and the scene keeps each named object's box, so where the attention looks can be checked.

Held-out compositions: the unordered object pairs are divided between ``train``, ``validation`` and ``test``
(every object still appears in training), so a test scene always shows two objects never seen together;
``pair_folds`` makes the folds of a cross-validation in which every pair is a test pair exactly once.
``UNSEEN_PHOTOS`` stay outside the vocabulary (matplotlib's ``grace_hopper.jpg``): a real photograph whose
object has no word, to caption. Images are read from the installed packages at run time, never copied.

Shape legend: ``S`` canvas side (pixels); boxes are ``(x0, y0, x1, y1)`` pixels, ``x1``/``y1`` exclusive.

Example:
    >>> scenes = make_scenes("test", 2, seed=0, image_size=112)
    >>> scene = scenes[0]
    >>> scene.image.shape, len(scene.objects), scene.caption.startswith("the ")
    ((112, 112, 3), 2, True)
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from attnkit.data.images import read_image, resize_rgb, to_rgb
from attnkit.data.stream import mix_seed

#: Object word -> the real photograph it is cut from, ``"package:name"``: ``skimage:NAME`` is
#: ``skimage.data.NAME()`` (the first image of a stereo pair), ``sklearn:FILE`` is
#: ``sklearn.datasets.load_sample_image(FILE)``, ``matplotlib:FILE`` is ``matplotlib.cbook.get_sample_data(FILE)``.
#: No synthetic picture, drawing or silhouette: each is a photograph (a microscope's or telescope's included).
PHOTOS: dict[str, str] = {
    "cat": "skimage:chelsea", "coffee": "skimage:coffee", "rocket": "skimage:rocket",
    "astronaut": "skimage:astronaut", "coins": "skimage:coins", "moon": "skimage:moon", "clock": "skimage:clock",
    "cameraman": "skimage:camera", "galaxies": "skimage:hubble_deep_field", "tissue": "skimage:immunohistochemistry",
    "retina": "skimage:retina", "motorcycle": "skimage:stereo_motorcycle", "bricks": "skimage:brick",
    "temple": "sklearn:china.jpg", "flower": "sklearn:flower.jpg",
}
#: Real photographs kept out of the vocabulary (what they show has no word in the captions): name -> source.
UNSEEN_PHOTOS: dict[str, str] = {"grace hopper": "matplotlib:grace_hopper.jpg"}
#: Layout -> the words between the two object names.
RELATIONS: dict[str, str] = {"horizontal": "to the left of", "vertical": "above"}
SCENE_SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: Default number of scenes per split for ``attnkit train captioner --data scenes``.
SCENE_SIZES: dict[str, int] = {"train": 640, "validation": 64, "test": 200}


@dataclass(frozen=True)
class SceneObject:
    """One named object of a scene: its caption word and its box ``(x0, y0, x1, y1)`` in pixels."""

    word: str
    box: tuple[int, int, int, int]


@dataclass
class Scene:
    """A generated image ``(S, S, 3)`` uint8, its caption and its objects in caption order."""

    image: np.ndarray
    caption: str
    objects: tuple[SceneObject, ...]


@functools.cache
def read_photo(source: str) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 photograph of a ``"package:name"`` source (see ``PHOTOS``), read from the installed
    package (cached).

    Example:
        >>> read_photo("sklearn:china.jpg").shape
        (427, 640, 3)
    """
    package, _, name = source.partition(":")
    if package == "skimage":
        import skimage.data  # the optional vision extra; imported only when scenes are made

        image = getattr(skimage.data, name)()
        image = image[0] if isinstance(image, tuple) else image  # a stereo pair: its left image
    elif package == "sklearn":
        from sklearn.datasets import load_sample_image

        image = load_sample_image(name)
    elif package == "matplotlib":
        from matplotlib import cbook

        image = read_image(cbook.get_sample_data(name, asfileobj=False))
    else:
        raise ValueError(f"Expected a source 'skimage:NAME', 'sklearn:FILE' or 'matplotlib:FILE'. Received: {source!r}")
    return to_rgb(image, where=source)


def photo(word: str) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 photograph behind an object word (or an ``UNSEEN_PHOTOS`` name).

    Example:
        >>> photo("cat").shape
        (300, 451, 3)
    """
    if word not in PHOTOS and word not in UNSEEN_PHOTOS:
        raise ValueError(f"Expected an object word among {sorted(PHOTOS)}. Received: {word!r}")
    return read_photo(PHOTOS.get(word) or UNSEEN_PHOTOS[word])


def composition_split(words: tuple[str, ...] | None = None, seed: int = 0,
                      held_out: tuple[float, float] = (0.1, 0.2)) -> dict[str, list[tuple[str, str]]]:
    """Divide the unordered object pairs between the splits; every object keeps >= 2 training pairs.

    Args:
        words: the object words (default: every key of ``PHOTOS``).
        seed: which division.
        held_out: shares of the pairs for validation and test (at least one pair each).

    Returns:
        ``{"train": pairs, "validation": pairs, "test": pairs}``, disjoint, each pair sorted.

    Example:
        >>> parts = composition_split(seed=0)
        >>> [len(parts[s]) for s in SCENE_SPLITS], set(parts["train"]) & set(parts["test"])
        ([74, 10, 21], set())
    """
    words = tuple(sorted(words or PHOTOS))
    pairs = list(combinations(words, 2))
    n_valid = max(1, round(held_out[0] * len(pairs)))
    n_test = max(1, round(held_out[1] * len(pairs)))
    rng = np.random.default_rng(mix_seed(seed, 7))
    for _ in range(1000):
        order = [pairs[i] for i in rng.permutation(len(pairs))]
        train = order[n_valid + n_test:]
        if all(sum(w in p for p in train) >= 2 for w in words):
            return {"train": sorted(train), "validation": sorted(order[:n_valid]),
                    "test": sorted(order[n_valid:n_valid + n_test])}
    raise ValueError(f"Cannot split {len(pairs)} pairs so that every object keeps two training pairs; "
                     f"use more objects or smaller held_out shares. Received: held_out={held_out}")


def _trains_every_word(words: tuple[str, ...], train: set[tuple[str, str]], least: int) -> bool:
    return all(sum(w in p for p in train) >= least for w in words)


def pair_folds(words: tuple[str, ...] | None = None, folds: int = 5, seed: int = 0,
               valid_pairs: int | None = None) -> list[dict[str, list[tuple[str, str]]]]:
    """Folds of held-out object pairs: every unordered pair is a test pair of exactly one fold.

    The pairs are shuffled and cut into ``folds`` test sets of near-equal size; each fold then takes
    ``valid_pairs`` validation pairs among its other pairs, and trains on the rest. Every word keeps at least
    one training pair in every fold (the shuffle is redrawn until it does).

    Args:
        words: the object words (default: every key of ``PHOTOS``).
        folds: number of folds, from 2 to the number of pairs.
        seed: which shuffle.
        valid_pairs: validation pairs per fold (default: half a test set, at least one).

    Returns:
        One ``{"train", "validation", "test"}`` dict of sorted pairs per fold, the three disjoint.

    Raises:
        ValueError: fewer than two folds, more folds than pairs, or no division that trains every word.

    Example:
        >>> parts = pair_folds(("a", "b", "c", "d", "e", "f"), folds=3, valid_pairs=2)
        >>> [len(f["test"]) for f in parts], sorted(p for f in parts for p in f["test"]) == sorted(
        ...     combinations("abcdef", 2))
        ([5, 5, 5], True)
    """
    words = tuple(sorted(words or PHOTOS))
    pairs = list(combinations(words, 2))
    if not 2 <= folds <= len(pairs):
        raise ValueError(f"Expected folds from 2 to the {len(pairs)} object pairs. Received: {folds}")
    n_valid = max(1, len(pairs) // (2 * folds)) if valid_pairs is None else valid_pairs
    if n_valid < 1:
        raise ValueError(f"Expected valid_pairs >= 1. Received: {n_valid}")
    rng = np.random.default_rng(mix_seed(seed, 11))
    for _ in range(1000):
        order = [pairs[i] for i in rng.permutation(len(pairs))]
        tests = [order[k::folds] for k in range(folds)]
        out = []
        for test in tests:
            rest = [p for p in order if p not in test]
            valid = rest[:n_valid]
            train = set(rest[n_valid:])
            if not _trains_every_word(words, train, 1):
                break
            out.append({"train": sorted(train), "validation": sorted(valid), "test": sorted(test)})
        else:
            return out
    raise ValueError(f"Cannot divide {len(pairs)} pairs into {folds} folds with {n_valid} validation pairs so that "
                     f"every object keeps a training pair; use fewer folds or validation pairs")


def pair_scenes(pairs: list[tuple[str, str]], per_pair: int, *, seed: int = 0,
                image_size: int = 224) -> list[Scene]:
    """``per_pair`` scenes of each pair (random order and layout), in the order of ``pairs``.

    A pair's scenes depend only on ``(pair, per_pair, seed, image_size)``, not on the other pairs, so the
    scenes of every pair can be made (and encoded) once and shared by the folds.

    Example:
        >>> scenes = pair_scenes([("cat", "moon"), ("coffee", "rocket")], 2, image_size=64)
        >>> [sorted(o.word for o in s.objects) for s in scenes][1:3]
        [['cat', 'moon'], ['coffee', 'rocket']]
    """
    out = []
    for a, b in pairs:
        ids = sorted((a, b))
        rng = np.random.default_rng(mix_seed(seed, 13, image_size, *(zlib.crc32(w.encode()) for w in ids)))
        for _ in range(per_pair):
            first, second = (a, b) if rng.random() < 0.5 else (b, a)
            layout = "horizontal" if rng.random() < 0.5 else "vertical"
            out.append(make_scene(first, second, layout, rng, image_size))
    return out


def scene_caption(first: str, layout: str, second: str) -> str:
    """The caption of a scene: ``"the <first> <relation> the <second>"``.

    Example:
        >>> scene_caption("coffee", "vertical", "moon")
        'the coffee above the moon'
    """
    return f"the {first} {RELATIONS[layout]} the {second}"


def augmented_crop(image: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A new view of a photograph ``(H, W, 3)`` uint8 -> ``(side, side, 3)`` uint8: a random square of 70-100% of
    the shorter side at a random place, flipped left-right half of the time, brightness and contrast each
    scaled by a factor in [0.85, 1.15] and each colour channel by one in [0.95, 1.05].

    Example:
        >>> view = augmented_crop(np.full((40, 60, 3), 100, np.uint8), 16, np.random.default_rng(0))
        >>> view.shape, bool(70 <= view.mean() <= 130)
        ((16, 16, 3), True)
    """
    h, w = image.shape[:2]
    c = max(1, int(min(h, w) * rng.uniform(0.7, 1.0)))
    y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
    crop = resize_rgb(np.ascontiguousarray(image[y:y + c, x:x + c]), side).astype(np.float64)  # (side, side, 3)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    mean = crop.mean()
    crop = (crop - mean) * rng.uniform(0.85, 1.15) + mean * rng.uniform(0.85, 1.15)  # contrast, brightness
    crop = crop * rng.uniform(0.95, 1.05, size=3)  # colour balance
    return np.clip(np.round(crop), 0, 255).astype(np.uint8)


def _layout(S: int, sizes: tuple[int, int], layout: str, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Top-left corners of two squares of ``sizes``: the first left of (or above) the second, not touching."""
    a, b = sizes
    gap = int(rng.integers(max(2, S // 40), S - a - b + 1))
    along0 = int(rng.integers(0, S - a - gap - b + 1))  # position along the relation's axis
    along = (along0, along0 + a + gap)
    centre = int(rng.integers(max(a, b) // 2, S - max(a, b) // 2 + 1))  # shared centre across it
    jitter = max(1, S // 28)
    across = [int(np.clip(centre - s // 2 + rng.integers(-jitter, jitter + 1), 0, S - s)) for s in sizes]
    if layout == "horizontal":
        return [(along[0], across[0]), (along[1], across[1])]
    return [(across[0], along[0]), (across[1], along[1])]


def make_scene(first: str, second: str, layout: str, rng: np.random.Generator, image_size: int = 224) -> Scene:
    """One scene with ``first`` left of (``"horizontal"``) or above (``"vertical"``) ``second``.

    Example:
        >>> scene = make_scene("cat", "rocket", "horizontal", np.random.default_rng(0), image_size=96)
        >>> scene.caption, scene.objects[0].box[2] <= scene.objects[1].box[0]
        ('the cat to the left of the rocket', True)
    """
    if layout not in RELATIONS:
        raise ValueError(f"Expected layout in {sorted(RELATIONS)}. Received: {layout!r}")
    S = image_size
    base = rng.uniform(50, 205, size=3)
    canvas = base + rng.normal(0, 12, size=(S, S, 3))  # (S, S, 3) noisy plain background
    sizes = (int(rng.integers(int(0.32 * S), int(0.43 * S) + 1)), int(rng.integers(int(0.32 * S), int(0.43 * S) + 1)))
    objects = []
    for word, side, (x, y) in zip((first, second), sizes, _layout(S, sizes, layout, rng), strict=True):
        canvas[y:y + side, x:x + side] = augmented_crop(photo(word), side, rng)
        objects.append(SceneObject(word, (x, y, x + side, y + side)))
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return Scene(image, scene_caption(first, layout, second), tuple(objects))


SceneFn = Callable[[str, int], list[Scene]]


def make_scenes(split: str, size: int, *, seed: int = 0, image_size: int = 224) -> list[Scene]:
    """``size`` scenes of ``split``, deterministic in ``(split, size, seed, image_size)``.

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"``; its scenes only show that split's object pairs.
        size: number of scenes.
        seed: seeds both the division of pairs between splits and the scenes.
        image_size: canvas side ``S`` in pixels.

    Returns:
        The scenes (each pair in random order and layout).

    Example:
        >>> [s.caption for s in make_scenes("validation", 2, seed=1, image_size=64)]  # doctest: +SKIP
        ['the coins above the moon', 'the clock to the left of the cat']
    """
    if split not in SCENE_SPLITS:
        raise ValueError(f"Expected split in {SCENE_SPLITS}. Received: {split!r}")
    if image_size < 32:
        raise ValueError(f"Expected image_size >= 32. Received: {image_size}")
    pairs = composition_split(seed=seed)[split]
    rng = np.random.default_rng(mix_seed(seed, SCENE_SPLITS.index(split), image_size))
    scenes = []
    for _ in range(size):
        a, b = pairs[int(rng.integers(len(pairs)))]
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        layout = "horizontal" if rng.random() < 0.5 else "vertical"
        scenes.append(make_scene(first, second, layout, rng, image_size))
    return scenes


__all__ = ["PHOTOS", "RELATIONS", "SCENE_SIZES", "SCENE_SPLITS", "UNSEEN_PHOTOS", "Scene", "SceneObject",
           "augmented_crop", "composition_split", "make_scene", "make_scenes", "pair_folds", "pair_scenes", "photo",
           "read_photo", "scene_caption"]
