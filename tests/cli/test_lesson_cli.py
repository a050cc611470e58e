"""``attnkit lesson cost|positions``: one picture each, bad values refused with exit 2."""

from __future__ import annotations

import json

import pytest

from attnkit.cli.main import main


def test_cost_writes_its_picture_and_rows(tmp_path):
    out = tmp_path / "l"
    assert main(["lesson", "cost", "--out", str(out), "--max-length", "128", "--memory-max", "0",
                 "--time-budget", "5"]) == 0
    rows = json.loads((out / "cost.json").read_text())["rows"]
    assert [r["length"] for r in rows] == [40, 64, 128] and (out / "cost.png").stat().st_size > 10_000


def test_positions_writes_its_picture(tmp_path):
    assert main(["lesson", "positions", "--out", str(tmp_path / "p"), "--length", "24", "--dim", "8"]) == 0
    assert (tmp_path / "p" / "positions.png").stat().st_size > 10_000


@pytest.mark.parametrize("args, message", [
    (["cost", "--max-length", "99999"], "--max-length must be between 16 and 16384"),
    (["cost", "--time-budget", "0.5"], "--time-budget must be between 1 and 600"),
    (["positions", "--dim", "7"], "--dim must be even"),
    (["positions", "--model", "nowhere"], "does not exist"),
])
def test_bad_values_exit_2(tmp_path, capsys, args, message):
    assert main(["lesson", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_scores_draws_every_score_function_on_the_course_sentence(tmp_path):
    assert main(["lesson", "scores", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "scores.png").stat().st_size > 10_000


def test_scores_refuses_a_text_of_one_word(tmp_path, capsys):
    assert main(["lesson", "scores", "hola", "--out", str(tmp_path / "s")]) == 2
    assert "TEXT must have between 2 and 40 words" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
