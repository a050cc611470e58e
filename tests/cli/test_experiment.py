"""`attnkit experiment length --quick`: files written, and the table agrees with a recount from the models."""

from __future__ import annotations

import json

import torch

import attnkit.io
from attnkit.cli.main import main
from attnkit.data import load_pairs

torch.set_num_threads(1)


def test_quick_length_experiment_writes_a_table_that_matches_the_models(tmp_path, capsys):
    out = tmp_path / "len"
    assert main(["experiment", "length", "--quick", "--out", str(out), "--bucket-width", "5"]) == 0
    result = json.loads((out / "length.json").read_text())
    assert (out / "length.png").is_file() and (out / "length.md").is_file()
    assert (out / "length_token_accuracy.png").is_file()
    s = result["settings"]
    assert s["task"] == "reverse" and s["steps"] > 0
    test = load_pairs("reverse", "test", size=s["test_size"], seed=0, min_len=s["min_len"], max_len=s["max_len"])
    assert sum(r["count"] for r in result["buckets"]) == len(test)
    for attention in ("none", "bahdanau"):
        model = attnkit.io.load(out / attention / "model")
        assert model.config.attention == attention
        preds = model.translate([src for src, _ in test])
        for row in result["buckets"]:
            lo, hi = (int(x) for x in row["bucket"].split("-"))  # "6-10": inclusive edges
            idx = [i for i, (src, _) in enumerate(test) if lo <= len(src) <= hi]
            assert len(idx) == row["count"]
            recount = sum(preds[i] == test[i][1] for i in idx) / len(idx)
            assert row[f"{attention}_exact_match"] == recount
    printed = capsys.readouterr().out.replace("\n", "")  # the console wraps long paths
    assert "bahdanau" in printed and "length.png" in printed


def test_length_experiment_rejects_a_task_without_lengths(tmp_path, capsys):
    assert main(["experiment", "length", "--task", "dates", "--out", str(tmp_path / "x")]) == 2
    assert "--task must be one of reverse, copy, sort, numbers. Received: 'dates'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_quick_efficiency_experiment_writes_table_plot_and_crossovers(tmp_path, capsys):
    out = tmp_path / "eff"
    args = ["experiment", "efficiency", "--quick", "--out", str(out), "--kinds", "full,sliding_window,linear",
            "--tasks", "local", "--lengths", "24", "--timing-lengths", "64,128", "--steps", "3",
            "--batch-size", "2", "--window", "4", "--no-memory"]  # memory: see test_efficiency_step_memory
    assert main(args) == 0
    report = json.loads((out / "efficiency.json").read_text())
    assert (out / "efficiency.png").stat().st_size > 0 and (out / "efficiency.md").is_file()
    assert [(r["kind"], r["length"]) for r in report["runs"]] == [("full", 24), ("sliding_window", 24), ("linear", 24)]
    for r in report["runs"]:  # every figure measured
        assert 0.0 <= r["accuracy"] <= 1.0 and r["seconds_per_step"] > 0 and r["tokens_per_second"] > 0
    assert {(t["kind"], t["length"]) for t in report["timing"]} == {(k, n) for k in ("full", "sliding_window", "linear")
                                                                     for n in (64, 128)}
    assert [c["kind"] for c in report["crossovers"]] == ["sliding_window", "linear"]
    assert "Crossover" in (out / "efficiency.md").read_text()


def test_efficiency_experiment_rejects_an_unknown_kind(tmp_path, capsys):
    assert main(["experiment", "efficiency", "--kinds", "full,sparse", "--out", str(tmp_path / "x")]) == 2
    assert "--kinds must be a non-empty subset of full, sliding_window" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_efficiency_step_memory_is_measured_in_a_child_process():
    from attnkit.experiments.efficiency import EfficiencySettings, step_memory

    s = EfficiencySettings(d_model=16, heads=2, layers=1, batch_size=2, window=4)
    got = step_memory("sliding_window", "copy", (64, 32), s)
    assert sorted(got) == [32, 64] and all(0 <= b < 2**30 for b in got.values())  # Linux: clear_refs, VmHWM
