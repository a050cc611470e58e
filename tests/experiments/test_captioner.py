"""`attnkit experiment captioner`: the report over folds against each fold's rows (statistics.mean / stdev), the
references against an independent pixel count and the scorer's own peak rule, the pictures, and bad inputs."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import torch

from attnkit.cli.main import main
from attnkit.data.scenes import PHOTOS, Scene, SceneObject, pair_folds, pair_scenes
from attnkit.experiments.captioner import REFERENCES, example_title, reference_levels
from attnkit.recipes.captioner_scores import peak_hits

torch.set_num_threads(1)


def _naive_levels(scenes: list[Scene], grid: tuple[int, int], S: int) -> dict[str, float]:
    """Pixel masks for the areas; a one-hot map on the cell of each box centre through ``peak_hits``."""
    gh, gw = grid
    chance, either, hits, words = [], [], 0, 0
    for scene in scenes:
        masks = []
        for x0, y0, x1, y1 in (o.box for o in scene.objects):
            m = np.zeros((S, S), dtype=bool)
            m[y0:y1, x0:x1] = True
            masks.append(m)
        for k in range(2):
            chance.append(masks[k].mean())
            either.append((masks[0] | masks[1]).mean())
        for looked in scene.objects:  # a model that looks at this object for both words
            cx, cy = (looked.box[0] + looked.box[2]) / 2, (looked.box[1] + looked.box[3]) / 2
            alphas = torch.zeros(1, 2, gh * gw, dtype=torch.float64)
            alphas[0, :, min(gh - 1, int(cy * gh / S)) * gw + min(gw - 1, int(cx * gw / S))] = 1.0
            h, w, _ = peak_hits(alphas, [[5, 6]], [scene], {5: "a", 6: "b"}, grid, S)
            hits, words = hits + h, words + w
    return {"chance by area": float(np.mean(chance)), "either box by area": float(np.mean(either)),
            "random object": hits / words}


def test_references_match_pixel_counts_and_the_models_peak_rule():
    rng = np.random.default_rng(3)
    S, grid = 90, (5, 6)
    scenes = []
    for _ in range(7):
        a, b = int(rng.integers(12, 40)), int(rng.integers(12, 40))
        x0, y0 = int(rng.integers(0, S - a - b - 2)), int(rng.integers(0, S - max(a, b)))
        x1 = int(rng.integers(x0 + a + 1, S - b + 1))
        scenes.append(Scene(None, "", (SceneObject("a", (x0, y0, x0 + a, y0 + a)),
                                       SceneObject("b", (x1, y0, x1 + b, y0 + b)))))
    mine, naive = reference_levels(scenes, grid, S), _naive_levels(scenes, grid, S)
    assert tuple(mine) == REFERENCES
    for name in REFERENCES:
        assert mine[name] == pytest.approx(naive[name], abs=1e-12), name
    assert mine["chance by area"] < mine["either box by area"] < 1


def test_random_object_is_one_half_when_each_box_holds_its_centre_cell():
    scene = Scene(None, "", (SceneObject("a", (0, 0, 40, 30)), SceneObject("b", (50, 40, 100, 100))))
    levels = reference_levels([scene], (4, 5), 100)
    assert levels["random object"] == 0.5
    assert levels["chance by area"] == pytest.approx((0.12 + 0.30) / 2)
    assert levels["either box by area"] == pytest.approx(0.42)


def test_quick_captioner_experiment_reports_mean_and_sd_over_folds(tmp_path, capsys):
    out = tmp_path / "cap"
    args = ["experiment", "captioner", "--quick", "--folds", "3", "--out", str(out)]
    assert main(args) == 0
    report = json.loads((out / "captioner.json").read_text())
    assert report["seeds"] == [0, 1, 2] and report["command"] == "attnkit " + " ".join(args)
    assert report["settings"]["is_quick"] and "smoke test" in report["title"]
    assert set(report["settings"]["words"]) == set(PHOTOS)
    rows = {r["model"]: r for r in report["tables"]["scores"]}
    assert set(rows) == {"soft", "hard", "uniform", *(f"reference: {r}" for r in REFERENCES)}
    for model, row in rows.items():
        for figure in ("exact_match", "peak_in_box", "bleu"):
            per_fold = [next(r for r in report["per_seed"][str(f)]["scores"] if r["model"] == model).get(figure)
                        for f in (0, 1, 2)]
            given = [v for v in per_fold if v is not None]
            if not given:
                assert row[figure]["mean"] is None
                continue
            assert row[figure]["mean"] == pytest.approx(statistics.mean(given))
            assert row[figure]["sd"] == pytest.approx(statistics.stdev(given))
    assert rows["uniform"]["peak_in_box"]["mean"] is None  # no peak without attention
    assert rows["reference: random object"]["peak_in_box"]["mean"] == pytest.approx(0.5, abs=0.05)
    folds, S = pair_folds(folds=3), report["settings"]["image_size"]
    every = sorted(p for part in folds[0].values() for p in part)
    scenes = pair_scenes(every, report["settings"]["scenes_per_pair"], image_size=S)
    for f in (0, 1, 2):  # the references are computed on that fold's test scenes
        test = [sc for sc in scenes if tuple(sorted(o.word for o in sc.objects)) in set(folds[f]["test"])]
        areas = [(o.box[2] - o.box[0]) * (o.box[3] - o.box[1]) / S ** 2 for sc in test for o in sc.objects]
        (chance,) = [r for r in report["per_seed"][str(f)]["scores"] if r["model"] == "reference: chance by area"]
        assert chance["peak_in_box"] == pytest.approx(sum(areas) / len(areas))
    pictures = sorted(p.name for p in out.glob("captioner-*.png"))
    assert "captioner-unseen.png" in pictures and ("captioner-failure.png" in pictures)
    md = (out / "captioner.md").read_text()
    assert "reference: random object" in md and "captioner-unseen.png" in md and "(n=3)" in md
    assert "Validation pairs" in md
    for f in (0, 1, 2):  # each fold's rows are kept as soon as the fold ends
        assert json.loads((out / f"seed-{f}" / "captioner-fold.json").read_text())["scores"] == report["per_seed"][str(f)]["scores"]


def test_picture_titles_say_what_they_show():
    unseen = example_title({"kind": "unseen", "caption": "the cat above the moon"}, 0, "soft")
    assert "outside the scenes' vocabulary" in unseen and "'the cat above the moon'" in unseen
    none_wrong = example_title({"kind": "failure", "caption": "the a above the b", "reference": "the a above the b",
                                "right": True, "none_wrong": True, "position": 0}, 0, "soft")
    assert "none was captioned wrong" in none_wrong and "(right)" in none_wrong
    failure = example_title({"kind": "failure", "caption": "the b above the a", "reference": "the a above the b",
                             "right": False, "none_wrong": False, "position": 4}, 0, "soft")
    assert "first test scene captioned wrong" in failure and "test scene 4" in failure


@pytest.mark.parametrize("args, message", [
    (["--folds", "1"], "--folds must be >= 2. Received: 1"),
    (["--folds", str(len(PHOTOS) * (len(PHOTOS) - 1) // 2 + 1)], "--folds must be from 2 to 105"),
    (["--models", "soft,bogus"], "--models must be distinct comma-separated names among soft, hard, uniform"),
    (["--steps", "0"], "--steps must be >= 1. Received: 0"),
    (["--scenes-per-pair", "0"], "--scenes-per-pair must be >= 1. Received: 0"),
    (["--encoder", "resnet"], "--encoder must be one of"),
    (["--seeds", "0"], "No such option: --seeds"),
])
def test_captioner_experiment_refuses_bad_input_and_writes_nothing(tmp_path, capsys, args, message):
    assert main(["experiment", "captioner", "--quick", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
