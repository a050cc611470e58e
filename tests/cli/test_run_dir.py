"""``attnkit.load`` and ``attnkit evaluate`` take the run folder the CLI writes (``RUN/`` holding ``model/``) as
well as the model folder itself: the same model, the same scores, on a tiny ``attnkit train seq2seq --steps 2``."""

from __future__ import annotations

import json

import pytest
import torch

import attnkit
from attnkit.cli.main import main
from attnkit.errors import CheckpointError

TINY = ["--steps", "2", "--batch-size", "8", "--d-model", "8", "--embed-dim", "4", "--attention-dim", "8",
        "--train-size", "60", "--valid-size", "6", "--eval-every", "2", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "dates"
    assert main(["train", "seq2seq", "--data", "dates", "--out", str(out), *TINY]) == 0
    assert (out / "model" / "config.json").is_file() and not (out / "config.json").exists()
    return out


def test_load_reads_the_run_folder(run_dir):
    from_run, from_model = attnkit.load(run_dir), attnkit.load(run_dir / "model")
    assert type(from_run) is type(from_model) and from_run.config == from_model.config
    for (name, a), (_, b) in zip(from_run.state_dict().items(), from_model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert from_run.translate(["12 May 2003"]) == from_model.translate(["12 May 2003"])


def test_evaluate_gives_the_same_scores_on_both_folders(run_dir, tmp_path):
    scores = []
    for i, path in enumerate((run_dir, run_dir / "model")):
        report = tmp_path / f"scores{i}.json"
        assert main(["evaluate", str(path), "--size", "12", "--json", str(report)]) == 0
        scores.append(json.loads(report.read_text()))
    assert scores[0] == scores[1]


def test_a_folder_without_a_model_is_still_an_incomplete_model_dir(tmp_path):
    with pytest.raises(CheckpointError, match="incomplete: config.json is missing"):
        attnkit.load(tmp_path)
