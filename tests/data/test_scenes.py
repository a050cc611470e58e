"""The generated captioning scenes: splits by composition, boxes, captions that say what the boxes show."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from attnkit.data.scenes import (
    PHOTOS,
    RELATIONS,
    SCENE_SPLITS,
    UNSEEN_PHOTOS,
    augmented_crop,
    composition_split,
    make_scene,
    make_scenes,
    pair_folds,
    pair_scenes,
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
    assert np.array_equal(photo("motorcycle"), skimage.data.stereo_motorcycle()[0])
    assert photo("moon").shape == (512, 512, 3)  # a grayscale photograph becomes RGB
    from sklearn.datasets import load_sample_image

    assert np.array_equal(photo("temple"), load_sample_image("china.jpg"))


def test_every_object_is_a_photograph_read_from_an_installed_package_and_one_stays_unseen():
    assert len(PHOTOS) >= 12 and len(set(PHOTOS.values())) == len(PHOTOS)
    synthetic = {"horse", "colorwheel", "logo", "checkerboard", "binary_blobs", "shepp_logan_phantom", "text",
                 "chessboard", "page"}  # silhouettes, drawings, renderings, generated pictures
    assert not {src.partition(":")[2] for src in PHOTOS.values()} & synthetic
    assert not set(UNSEEN_PHOTOS.values()) & set(PHOTOS.values())
    for word in (*PHOTOS, *UNSEEN_PHOTOS):
        image = photo(word)
        assert image.ndim == 3 and image.shape[-1] == 3 and min(image.shape[:2]) >= 256, word
        assert image.std() > 10, word  # not a flat picture
    from matplotlib import cbook
    from PIL import Image

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    assert np.array_equal(photo("grace hopper"), np.asarray(Image.open(path).convert("RGB")))


def test_an_object_never_looks_the_same_twice():
    rng = np.random.default_rng(1)
    views = [augmented_crop(photo("coffee"), 48, rng) for _ in range(6)]
    for a, b in combinations(views, 2):
        assert np.abs(a.astype(int) - b.astype(int)).mean() > 2
    scenes = pair_scenes([("cat", "moon")], 4, image_size=96)
    crops = [s.image[o.box[1]:o.box[3], o.box[0]:o.box[2]] for s in scenes for o in s.objects if o.word == "cat"]
    sides = {c.shape for c in crops}
    assert len(sides) > 1 or all(np.abs(crops[0].astype(int) - c.astype(int)).mean() > 2 for c in crops[1:])


@pytest.mark.parametrize("n_words, folds, valid", [(7, 4, 3), (6, 3, 2), (len(PHOTOS), 5, None)])
def test_folds_partition_the_pairs_and_keep_test_pairs_out_of_training(n_words, folds, valid):
    words = tuple(sorted(PHOTOS))[:n_words]
    every = set(combinations(words, 2))
    parts = pair_folds(words, folds=folds, seed=2, valid_pairs=valid)
    assert len(parts) == folds
    tested = [p for f in parts for p in f["test"]]
    assert sorted(tested) == sorted(every)  # each pair is a test pair of exactly one fold
    assert max(len(f["test"]) for f in parts) - min(len(f["test"]) for f in parts) <= 1
    for f in parts:
        train, valid_pairs, test = set(f["train"]), set(f["validation"]), set(f["test"])
        assert not test & (train | valid_pairs) and not train & valid_pairs
        assert train | valid_pairs | test == every
        assert len(valid_pairs) == (valid or max(1, len(every) // (2 * folds)))
        assert all(any(w in p for p in train) for w in words)  # every word is still seen in training
    assert pair_folds(words, folds=folds, seed=2, valid_pairs=valid) == parts


@pytest.mark.parametrize("folds", [1, 0, 22])
def test_folds_refuse_too_few_or_more_than_pairs(folds):
    with pytest.raises(ValueError, match="Expected folds from 2 to the 21 object pairs"):
        pair_folds(tuple(sorted(PHOTOS))[:7], folds=folds)


def test_a_pairs_scenes_do_not_depend_on_the_other_pairs():
    both = pair_scenes([("cat", "rocket"), ("coins", "moon")], 3, seed=1, image_size=64)
    alone = pair_scenes([("coins", "moon")], 3, seed=1, image_size=64)
    assert [s.caption for s in both[3:]] == [s.caption for s in alone]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(both[3:], alone, strict=True))
    assert all(sorted(o.word for o in s.objects) == ["cat", "rocket"] for s in both[:3])


def test_bad_arguments():
    with pytest.raises(ValueError, match="Expected split"):
        make_scenes("dev", 2)
    with pytest.raises(ValueError, match="Expected an object word"):
        photo("china")  # scikit-learn's photographs are kept out of the scenes
