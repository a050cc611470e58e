"""`attnkit experiment length|efficiency`: the report files the harness writes, their figures against a recount from
the saved models (length) and against each seed's rows (efficiency: statistics.mean / stdev), and bad inputs."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

import attnkit.io
from attnkit.cli.main import main
from attnkit.data import load_pairs

torch.set_num_threads(1)


def test_quick_length_experiment_writes_a_report_that_matches_the_models(tmp_path, capsys):
    out = tmp_path / "len"
    args = ["experiment", "length", "--quick", "--out", str(out), "--bucket-width", "5", "--seeds", "0"]
    assert main(args) == 0
    report = json.loads((out / "length.json").read_text())
    assert (out / "length.png").stat().st_size > 0 and (out / "length.md").is_file()
    assert report["command"] == "attnkit " + " ".join(args) and "CPU" in report["machine"]
    assert report["seeds"] == [0] and report["settings"]["task"] == "reverse"
    s, rows = report["settings"], report["per_seed"]["0"]["buckets"]
    test = load_pairs("reverse", "test", size=s["test_size"], seed=0, min_len=s["min_len"], max_len=s["max_len"])
    for attention in ("none", "bahdanau"):
        model = attnkit.io.load(out / "seed-0" / attention / "model")
        assert model.config.attention == attention
        preds = model.translate([src for src, _ in test])
        mine = [r for r in rows if r["model"] == attention]
        assert sum(r["pairs"] for r in mine) == len(test)
        for row in mine:
            lo, hi = (int(x) for x in row["bucket"].split("-"))  # "6-10": inclusive edges
            idx = [i for i, (src, _) in enumerate(test) if lo <= len(src) <= hi]
            assert len(idx) == row["pairs"]
            assert row["exact_match"] == sum(preds[i] == test[i][1] for i in idx) / len(idx)
        (overall,) = [r for r in report["tables"]["overall"] if r["model"] == attention]
        assert overall["exact_match"]["mean"] == sum(p == t for p, (_, t) in zip(preds, test, strict=True)) / len(test)
        assert overall["exact_match"]["n"] == 1 and overall["exact_match"]["sd"] is None
    assert "(n=1)" in (out / "length.md").read_text()
    printed = capsys.readouterr().out.replace("\n", "")  # the console wraps long paths
    assert "bahdanau" in printed and "length.png" in printed


@pytest.mark.parametrize("args, message", [
    (["--task", "dates"], "--task must be one of reverse, copy, sort, numbers. Received: 'dates'"),
    (["--seeds", "0,0"], "--seeds must be distinct comma-separated integers >= 0"),
    (["--seed", "1"], "No such option: --seed"),
])
def test_length_experiment_refuses_bad_input_and_writes_nothing(tmp_path, capsys, args, message):
    assert main(["experiment", "length", "--quick", *args, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_quick_efficiency_experiment_reports_mean_and_sd_over_seeds(tmp_path, capsys):
    out = tmp_path / "eff"
    args = ["experiment", "efficiency", "--quick", "--out", str(out), "--kinds", "full,sliding_window,linear",
            "--tasks", "local", "--lengths", "24", "--timing-lengths", "64,128", "--steps", "3",
            "--batch-size", "2", "--window", "4", "--no-memory", "--seeds", "0,1"]  # memory: tests/experiments
    assert main(args) == 0
    report = json.loads((out / "efficiency.json").read_text())
    assert (out / "efficiency.png").stat().st_size > 0 and report["seeds"] == [0, 1]
    runs = report["tables"]["runs"]
    assert [(r["kind"], r["length"]) for r in runs] == [("full", 24), ("sliding_window", 24), ("linear", 24)]
    for row in runs:
        seeds = [next(r for r in report["per_seed"][s]["runs"] if r["kind"] == row["kind"]) for s in ("0", "1")]
        for figure in ("accuracy", "ms_per_step", "tokens_per_second"):
            values = [r[figure] for r in seeds]
            assert row[figure]["mean"] == pytest.approx(statistics.mean(values))
            assert row[figure]["sd"] == pytest.approx(statistics.stdev(values))
        assert all(0.0 <= r["accuracy"] <= 1.0 and r["ms_per_step"] > 0 for r in seeds)
    assert report["tables"]["memory"] == []  # --no-memory
    assert {(t["kind"], t["length"]) for t in report["tables"]["timing"]} == \
        {(k, n) for k in ("full", "sliding_window", "linear") for n in (64, 128)}
    assert [c["kind"] for c in report["tables"]["crossovers"]] == ["sliding_window", "linear"]
    md = (out / "efficiency.md").read_text()
    assert "Crossover" in md and " ± " in md and report["command"] in md and "Not measured in this run." in md


def test_quick_efficiency_experiment_on_mqar_says_it_is_a_smoke_test(tmp_path, capsys):
    out = tmp_path / "eff"
    args = ["experiment", "efficiency", "--quick", "--out", str(out), "--kinds", "full,sliding_window",
            "--tasks", "mqar", "--lengths", "20", "--timing-lengths", "64", "--steps", "2", "--batch-size", "3",
            "--symbols", "6", "--pairs", "5", "--window", "4", "--no-memory", "--seeds", "0", "--split", "valid"]
    assert main(args) == 0
    assert "--quick is a smoke test" in capsys.readouterr().out
    report = json.loads((out / "efficiency.json").read_text())
    assert "smoke test" in report["title"] and "smoke test" in (out / "efficiency.md").read_text()
    assert (report["settings"]["pairs"], report["settings"]["symbols"], report["settings"]["split"]) == (5, 6, "valid")
    runs = report["tables"]["runs"]
    assert [(r["task"], r["kind"], r["length"]) for r in runs] == [("mqar", "full", 20), ("mqar", "sliding_window", 20)]
    assert all(r["chance"]["mean"] == pytest.approx(1 / 6) and 0 <= r["accuracy"]["mean"] <= 1 for r in runs)


def test_efficiency_experiment_refuses_pairs_that_do_not_fit_the_length(tmp_path, capsys):
    assert main(["experiment", "efficiency", "--lengths", "32", "--pairs", "9", "--out", str(tmp_path / "x")]) == 2
    assert "4 * pairs <= length" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_efficiency_experiment_rejects_an_unknown_kind(tmp_path, capsys):
    assert main(["experiment", "efficiency", "--kinds", "full,sparse", "--out", str(tmp_path / "x")]) == 2
    assert "--kinds must be a non-empty subset of full, sliding_window" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
