"""The built-in captioning set: real photographs pasted at known places, captions that name them and where.

Each scene is an ``S x S`` canvas (``S = image_size``, 224 by default) with a noisy plain background and two
objects, each a random square crop of one real photograph that ships with scikit-image (``skimage.data``:
chelsea the cat, coffee, the rocket, the astronaut, ...), pasted side by side or one above the other. Its
caption names both objects and their relation, the left (or upper) one first::

    "the cat to the left of the rocket"        "the coffee above the horse"

and the scene keeps each named object's box, so where the attention looks can be checked.

Splits are by composition: the unordered object pairs are divided between ``train``, ``validation`` and
``test`` (every object still appears in training), so a test scene always shows two objects that were
never seen together. scikit-learn's ``china.jpg`` and ``flower.jpg`` are *not* used: they stay unseen real
photographs to caption. Images are read from the installed packages at run time, never copied.

Shape legend: ``S`` canvas side (pixels); boxes are ``(x0, y0, x1, y1)`` pixels, ``x1``/``y1`` exclusive.

Example:
    >>> scenes = make_scenes("test", 2, seed=0, image_size=112)
    >>> scene = scenes[0]
    >>> scene.image.shape, len(scene.objects), scene.caption.startswith("the ")
    ((112, 112, 3), 2, True)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from attnkit.data.images import resize_rgb, to_rgb
from attnkit.data.stream import mix_seed

#: Object word -> name of the ``skimage.data`` photograph it is cut from (all ship inside the wheel).
PHOTOS: dict[str, str] = {
    "cat": "chelsea", "coffee": "coffee", "rocket": "rocket", "astronaut": "astronaut", "horse": "horse",
    "coins": "coins", "moon": "moon", "clock": "clock", "cameraman": "camera", "colorwheel": "colorwheel",
}
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
def photo(word: str) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 photograph behind an object word (read from scikit-image, cached).

    Example:
        >>> photo("cat").shape
        (300, 451, 3)
    """
    if word not in PHOTOS:
        raise ValueError(f"Expected an object word among {sorted(PHOTOS)}. Received: {word!r}")
    import skimage.data  # the optional vision extra; imported only when scenes are made

    return to_rgb(getattr(skimage.data, PHOTOS[word])(), where=f"skimage.data.{PHOTOS[word]}")


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
        ([32, 4, 9], set())
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


def scene_caption(first: str, layout: str, second: str) -> str:
    """The caption of a scene: ``"the <first> <relation> the <second>"``.

    Example:
        >>> scene_caption("coffee", "vertical", "horse")
        'the coffee above the horse'
    """
    return f"the {first} {RELATIONS[layout]} the {second}"


def _crop(word: str, side: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop (75-100% of the shorter side) of the photograph, resized to ``side``."""
    img = photo(word)
    h, w = img.shape[:2]
    c = int(min(h, w) * rng.uniform(0.75, 1.0))
    y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
    return resize_rgb(img[y:y + c, x:x + c], side)


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
        canvas[y:y + side, x:x + side] = _crop(word, side, rng)
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


__all__ = ["PHOTOS", "RELATIONS", "SCENE_SIZES", "SCENE_SPLITS", "Scene", "SceneObject", "composition_split",
           "make_scene", "make_scenes", "photo", "scene_caption"]
