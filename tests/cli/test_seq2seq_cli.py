"""`attnkit train seq2seq`, `translate`, `evaluate`: end to end on tiny runs, and every input error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import attnkit.io
from attnkit.cli.main import main
from attnkit.data import load_pairs
from tests.cli.alignment_reference import reference_aer

torch.set_num_threads(1)

TINY = ["--steps", "4", "--batch-size", "16", "--d-model", "8", "--embed-dim", "4", "--attention-dim", "8",
        "--train-size", "200", "--valid-size", "10", "--eval-every", "2", "--quiet", "--threads", "1"]


def run(*args: str) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "dates"
    assert run("train", "seq2seq", "--data", "dates", "--out", out, *TINY) == 0
    return out


def test_train_writes_a_loadable_model_run_spec_and_log(tiny_run):
    assert (tiny_run / "model" / "config.json").is_file()
    assert (tiny_run / "checkpoint").is_dir()
    spec = json.loads((tiny_run / "run.json").read_text())
    assert spec["data"] == "dates" and spec["seed"] == 0
    records = [json.loads(line) for line in (tiny_run / "train_log.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "eval" for r in records)
    model = attnkit.io.load(tiny_run / "model")
    assert model.config.attention == "bahdanau" and set(model.tokenizers) == {"source", "target"}


def test_translate_prints_output_and_heatmap(tiny_run, capsys):
    assert run("translate", tiny_run, "4 de marzo de 2031", "--beam", "2") == 0
    out = capsys.readouterr().out
    model = attnkit.io.load(tiny_run / "model")
    expected = model.translate(["4 de marzo de 2031"], beam_size=2)[0]
    assert f"4 de marzo de 2031 -> {expected}" in out
    assert out.count("│") >= 2 and "<sos>"[1] in out  # heatmap rows (one per output token) and frame


def test_translate_reports_unknown_characters(tiny_run, capsys):
    assert run("translate", tiny_run, "4 de marzo de 2031 ☃☃", "--no-heatmap") == 0
    err = capsys.readouterr().err
    assert "2 token(s) outside the vocabulary read as <unk>" in err and "'☃' x2" in err


def test_evaluate_scores_match_an_independent_recount(tiny_run, tmp_path, capsys):
    report = tmp_path / "scores.json"
    assert run("evaluate", tiny_run, "--size", "30", "--json", report) == 0
    scores = json.loads(report.read_text())
    pairs = load_pairs("dates", "test", size=30, seed=0)
    model = attnkit.io.load(tiny_run / "model")
    preds = model.translate([s for s, _ in pairs])
    assert scores["exact_match"] == sum(p == t for p, (_, t) in zip(preds, pairs, strict=True)) / 30
    right = sum(a == b for p, (_, t) in zip(preds, pairs, strict=True) for a, b in zip(p, t, strict=False))
    assert scores["token_accuracy"] == pytest.approx(right / sum(max(len(p), len(t)) for p, (_, t) in
                                                                  zip(preds, pairs, strict=True)))
    assert sum(b["count"] for b in scores["by_length"]) == 30
    assert "exact match by input length" in capsys.readouterr().out


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    args = ["--data", "reverse", "--max-len", "6", *TINY]
    args[args.index("--steps") + 1] = "6"
    assert run("train", "seq2seq", "--out", tmp_path / "whole", *args) == 0
    half = list(args)
    half[half.index("--steps") + 1] = "3"
    assert run("train", "seq2seq", "--out", tmp_path / "split", *half) == 0
    assert run("train", "seq2seq", "--out", tmp_path / "split", *args, "--resume") == 0
    a = load_file(str(tmp_path / "whole" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "split" / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_user_tsv_with_a_malformed_line_fails_with_its_number_and_writes_nothing(tmp_path, capsys):
    data = tmp_path / "pairs.tsv"
    lines = [f"{w}\t{w[::-1]}" for w in ("abc", "bcd", "cde", "def", "efg", "fgh", "ghi", "hij", "ijk")]
    lines.insert(3, "no tab on this line")
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    assert run("train", "seq2seq", "--data", data, "--out", out, *TINY) == 2
    err = capsys.readouterr().err
    assert "line 4" in err and "Traceback" not in err and err.startswith("attnkit: error:")
    assert not out.exists()
    assert run("train", "seq2seq", "--data", data, "--out", out, "--on-error", "skip", "--tokenizer", "char",
               *TINY) == 0
    assert "skipped 1 malformed line: 4 (no tab)" in capsys.readouterr().err
    assert (out / "model" / "tokenizer_source.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "nosuchtask"], "Unknown data 'nosuchtask'"),
        (["--data", "dates", "--attention", "luong"], "--attention must be one of"),
        (["--data", "dates", "--cell", "rnn"], "--cell must be one of gru, lstm. Received: 'rnn'"),
        (["--data", "dates", "--tokenizer", "bytes"], "--tokenizer must be char, word or bpe"),
        (["--data", "dates", "--resume"], "has no checkpoint/ to resume from"),
    ],
)
def test_train_input_errors_exit_2_without_writing(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert run("train", "seq2seq", "--out", out, *args, *TINY) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_training_again_into_a_used_run_directory_needs_resume(tiny_run, capsys):
    assert run("train", "seq2seq", "--data", "dates", "--out", tiny_run, *TINY) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


def test_missing_incomplete_and_mismatched_model_directories(tiny_run, tmp_path, capsys):
    assert run("translate", tmp_path / "nothing", "abc") == 2
    assert "does not exist" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_run / "model" / "config.json").read_text())
    assert run("translate", broken, "abc") == 2
    assert "incomplete: model.safetensors is missing" in capsys.readouterr().err
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for f in (tiny_run / "model").iterdir():
        (wrong / f.name).write_bytes(f.read_bytes())
    meta = json.loads((wrong / "config.json").read_text())
    meta["config"]["hidden_dim"] = 10
    (wrong / "config.json").write_text(json.dumps(meta))
    assert run("evaluate", wrong, "--data", "dates", "--size", "5") == 2
    err = capsys.readouterr().err
    assert "do not match the config" in err and "Traceback" not in err
    assert run("evaluate", wrong.parent / "broken", "--size", "5") == 2
    assert run("translate", tiny_run) == 2
    assert "nothing to translate" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        (["train", "seq2seq"], ["--data", "--out", "--attention", "--cell", "--tokenizer", "--vocab-size",
                                "--steps", "--batch-size", "--lr", "--schedule", "--warmup", "--resume",
                                "--on-error", "--time-budget", "--patience", "--threads"]),
        (["translate"], ["--beam", "--file", "--heatmap", "--png", "--device", "--threads"]),
        (["evaluate"], ["--data", "--split", "--size", "--beam", "--seed", "--bucket-width", "--json", "--alignment", "--device",
                        "--threads"]),
    ],
)
def test_help_lists_every_option(command, flags, capsys):
    assert run(*command, "--help") == 0
    text = capsys.readouterr().out
    for flag in flags:
        assert flag in text, flag


def test_translate_file_keeps_line_alignment(tiny_run, tmp_path, capsys):
    lines = ["4 de marzo de 2031", "", "   ", "10 octobre 1997", ""]
    file = tmp_path / "in.txt"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert run("translate", tiny_run, "--file", file, "--no-heatmap", "--device", "cpu") == 0
    out = capsys.readouterr().out.split("\n")[:-1]  # one line per input line, each ended by a newline
    expected = attnkit.io.load(tiny_run / "model").translate(["4 de marzo de 2031", "10 octobre 1997"])
    assert out == [expected[0], "", "", expected[1], ""]


def test_translate_png_draws_each_alignment(tiny_run, tmp_path, capsys):
    from PIL import Image

    assert run("translate", tiny_run, "4 de marzo de 2031", "--no-heatmap", "--png", tmp_path / "one.png") == 0
    assert run("translate", tiny_run, "1 mai 2001", "", "3 June 1999", "--no-heatmap",
               "--png", tmp_path / "many" / "a.png") == 0
    assert "wrote" in capsys.readouterr().err
    assert Image.open(tmp_path / "one.png").format == "PNG"
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == ["a_1.png", "a_2.png"]  # blank input skipped


def test_time_budget_stops_the_run_with_a_saved_model(tmp_path):
    # The bound itself (the whole run, last evaluation included, within the budget) is tested with a slow
    # evaluation in tests/training/test_progress.py; here the command's wiring: a budget stop, a saved model.
    out, budget = tmp_path / "run", 3.0
    assert run("train", "seq2seq", "--data", "reverse", "--min-len", "2", "--max-len", "6", "--out", out, *TINY[2:],
               "--steps", "100000", "--eval-every", "40", "--valid-size", "50", "--time-budget", budget) == 0
    stop = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()][-1]
    assert stop["event"] == "stop" and stop["reason"] == "time_budget"
    assert (out / "model" / "config.json").is_file() and (out / "checkpoint").is_dir()


# -- evaluate --alignment ---------------------------------------------------------------------------------


def test_evaluate_alignment_prints_the_aer_of_each_rule_beside_exact_match(tiny_run, tmp_path, capsys):
    report = tmp_path / "scores.json"
    assert run("evaluate", tiny_run, "--size", "25", "--alignment", "--json", report) == 0
    printed = capsys.readouterr().out
    scores = json.loads(report.read_text())
    expected = reference_aer(attnkit.io.load(tiny_run / "model"), load_pairs("dates", "test", size=25, seed=0),
                             "dates")
    assert scores["alignment_error_rate"] == pytest.approx(expected, abs=1e-12)
    assert "alignment error rate" in printed
    for rule, value in expected.items():
        assert rule in printed and f"{value:.4f}" in printed


def test_evaluate_alignment_of_a_transformer_uses_its_cross_attention(tmp_path, capsys):
    out = tmp_path / "tr"
    assert run("train", "transformer", "--data", "sort", "--min-len", "2", "--max-len", "5", "--train-size", "100",
               "--valid-size", "8", "--d-model", "16", "--heads", "2", "--layers", "1", "--ff-dim", "16",
               "--batch-size", "16", "--steps", "3", "--eval-every", "3", "--warmup", "1", "--quiet",
               "--out", out) == 0
    report = tmp_path / "scores.json"
    assert run("evaluate", out, "--size", "12", "--alignment", "--json", report) == 0
    expected = reference_aer(attnkit.io.load(out / "model"), load_pairs("sort", "test", size=12, seed=0,
                                                                        min_len=2, max_len=5), "sort")
    assert json.loads(report.read_text())["alignment_error_rate"] == pytest.approx(expected, abs=1e-12)


def test_evaluate_alignment_refuses_user_data_and_models_without_attention(tiny_run, tmp_path, capsys):
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"w{i}\tv{i}\n" for i in range(30)), encoding="utf-8")
    report = tmp_path / "scores.json"
    assert run("evaluate", tiny_run, "--data", data, "--alignment", "--json", report) == 2
    err = capsys.readouterr().err
    assert "--alignment needs a built-in task with gold alignments" in err and len(err.strip().splitlines()) == 1
    plain = tmp_path / "plain"
    assert run("train", "seq2seq", "--data", "copy", "--max-len", "4", "--attention", "none", "--out", plain,
               *TINY) == 0
    assert run("evaluate", plain, "--alignment", "--json", report) == 2
    assert "this model has no attention" in capsys.readouterr().err
    assert not report.exists()


def test_train_local_m_without_input_feeding_saves_both_choices(tmp_path, capsys):
    out = tmp_path / "localm"
    assert run("train", "seq2seq", "--data", "copy", "--out", out, "--attention", "luong-local-m",
               "--local-window", "3", "--no-input-feeding", *TINY) == 0
    model = attnkit.io.load(out / "model")
    assert model.config.attention == "luong-local-m" and model.config.local_window == 3
    assert model.config.input_feeding is False and model.decoder.weight_ih.shape[1] == 4  # E only, no o_{i-1}
    assert isinstance(model.translate(["abc"])[0], str)


@pytest.mark.parametrize("args, message", [
    (["--attention", "bahdanau", "--no-input-feeding"],
     "--no-input-feeding needs a Luong attention (luong-*). Received: --attention bahdanau"),
    (["--attention", "luong-local-m", "--local-window", "0"], "--local-window must be >= 1. Received: 0"),
])
def test_train_refuses_input_feeding_and_window_misuse(tmp_path, capsys, args, message):
    assert run("train", "seq2seq", "--data", "copy", "--out", tmp_path / "x", *args, *TINY) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_train_help_explains_local_m_and_input_feeding(capsys):
    assert run("train", "seq2seq", "--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "luong-local-m" in text and "--no-input-feeding" in text and "--local-window" in text
