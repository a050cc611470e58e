"""The generated captioning scenes: splits by composition, boxes, captions that say what the boxes show."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from attnkit.data.scenes import (
    PHOTOS,
    RELATIONS,
    SCENE_SPLITS,
    composition_split,
    make_scene,
    make_scenes,
    photo,
    scene_caption,
)


def test_pairs_are_divided_between_splits_and_every_object_trains():
    parts = composition_split(seed=3)
    every = {tuple(sorted(p)) for p in combinations(PHOTOS, 2)}
    assert set().union(*map(set, parts.values())) == every
    for a, b in combinations(SCENE_SPLITS, 2):
        assert not set(parts[a]) & set(parts[b])
    for word in PHOTOS:
        assert sum(word in p for p in parts["train"]) >= 2
    assert composition_split(seed=3) == parts != composition_split(seed=4)


def test_test_scenes_show_only_new_combinations():
    train_pairs = set(composition_split(seed=0)["train"])
    for scene in make_scenes("test", 12, seed=0, image_size=64):
        pair = tuple(sorted(o.word for o in scene.objects))
        assert pair not in train_pairs


@pytest.mark.parametrize("layout", sorted(RELATIONS))
def test_caption_names_the_objects_in_their_boxes(layout):
    rng = np.random.default_rng(5)
    S = 96
    for _ in range(5):
        scene = make_scene("cat", "rocket", layout, rng, image_size=S)
        first, second = scene.objects
        assert scene.caption == f"the cat {RELATIONS[layout]} the rocket" == scene_caption("cat", layout, "rocket")
        for x0, y0, x1, y1 in (first.box, second.box):
            assert 0 <= x0 < x1 <= S and 0 <= y0 < y1 <= S
        if layout == "horizontal":
            assert first.box[2] < second.box[0]  # the first object ends before the second starts
        else:
            assert first.box[3] < second.box[1]
        # the box holds a crop of the photograph: its colours are the photo's, not the plain background's
        x0, y0, x1, y1 = first.box
        patch = scene.image[y0:y1, x0:x1].reshape(-1, 3).astype(float)
        outside = np.ones((S, S), dtype=bool)
        for bx0, by0, bx1, by1 in (first.box, second.box):
            outside[by0:by1, bx0:bx1] = False
        background = scene.image[outside].astype(float)
        assert patch.std(axis=0).mean() > background.std(axis=0).mean()


def test_scenes_are_deterministic_and_photos_come_from_scikit_image():
    a = make_scenes("train", 3, seed=2, image_size=64)
    b = make_scenes("train", 3, seed=2, image_size=64)
    assert [s.caption for s in a] == [s.caption for s in b]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    assert a[0].image.shape == (64, 64, 3) and a[0].image.dtype == np.uint8
    import skimage.data

    assert np.array_equal(photo("cat"), skimage.data.chelsea())
    assert photo("horse").shape[-1] == 3  # the boolean silhouette becomes RGB


def test_bad_arguments():
    with pytest.raises(ValueError, match="Expected split"):
        make_scenes("dev", 2)
    with pytest.raises(ValueError, match="Expected an object word"):
        photo("china")  # scikit-learn's photographs are kept out of the scenes
