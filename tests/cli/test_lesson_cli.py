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


def _tiny_model_dir(tmp_path, attention="bahdanau"):
    from attnkit.recipes.lesson_model import example_model as tiny_bahdanau

    return str(tiny_bahdanau(attention=attention).save(tmp_path / "model"))


@pytest.mark.parametrize("command", ["steps", "decoding"])
def test_seq2seq_lessons_draw_a_given_model(tmp_path, command):
    out = tmp_path / command
    assert main(["lesson", command, "4 de marzo", "--model", _tiny_model_dir(tmp_path), "--out", str(out)]) == 0
    assert (out / f"{command}.png").stat().st_size > 10_000


@pytest.mark.parametrize("command, extra", [("masks", ["--steps", "3"]), ("mlm", []), ("gpt", ["--steps", "3"]),
                                            ("qkv", ["Ana va al cine"])])
def test_quick_lessons_write_their_picture(tmp_path, command, extra):
    out = tmp_path / command
    assert main(["lesson", command, *extra, "--out", str(out)]) == 0
    assert (out / f"{command}.png").stat().st_size > 10_000


@pytest.mark.slow  # importing Keras takes seconds; tests/recipes/test_lesson_keras.py checks the numbers
def test_keras_lesson_prints_the_difference(tmp_path, capsys):
    pytest.importorskip("keras")
    assert main(["lesson", "keras", "Ana va", "--out", str(tmp_path / "k")]) == 0
    assert "largest |Keras - attnkit|" in capsys.readouterr().out and (tmp_path / "k" / "keras.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["steps", "--step", "99"], "--step must be between 1 and"),
    (["decoding", "--beam", "1"], "--beam must be between 2 and 16"),
    (["qkv", "--head", "13"], "--head must be between 1 and 12"),
    (["masks", "--steps", "5000"], "--steps must be between 1 and 2000"),
    (["steps", "--model", "LUONG"], "Expected a model with Bahdanau attention"),
])
def test_lesson_bad_values_exit_2_with_one_line(tmp_path, capsys, args, message):
    if "--model" not in args and args[0] in ("steps", "decoding"):
        args = [*args, "--model", _tiny_model_dir(tmp_path)]
    args = [_tiny_model_dir(tmp_path, "luong-dot") if a == "LUONG" else a for a in args]
    assert main(["lesson", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
