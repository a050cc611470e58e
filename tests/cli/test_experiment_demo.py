"""`attnkit experiment demo`: the demo's table over seeds through the harness. Each seed's figures are recounted
from its saved model (exact match, AER by plain loops), the references by a plain count of links, the means and
sds by the statistics module, and one seed is checked against `attnkit demo --seed` (the same recipe)."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

import attnkit.io
from attnkit.cli.main import main
from attnkit.data import gold_alignment, load_pairs
from tests.cli.alignment_reference import reference_aer

torch.set_num_threads(1)
QUICK = ["--quick", "--steps", "3"]


def plain_reference_aer(pairs: list[tuple[str, str]]) -> dict[str, float]:
    """AER of the diagonal and uniform links by counting: 1 - (|A & S| + |A & P|) / (|A| + |S|), summed over pairs."""
    counts = {name: [0, 0, 0, 0] for name in ("diagonal", "uniform")}  # |A & S|, |A & P|, |A|, |S|
    for source, target in pairs:
        sure, possible = gold_alignment("dates", source, target)
        t_out, t_in = len(target), len(source)
        diagonal = {(i, min(t_in - 1, int((i + 0.5) * t_in / t_out))) for i in range(t_out)}
        uniform = {(i, j) for i in range(t_out) for j in range(t_in)}
        for name, links in (("diagonal", diagonal), ("uniform", uniform)):
            c = counts[name]
            c[0] += sum(bool(sure[i, j]) for i, j in links)
            c[1] += sum(bool(possible[i, j] or sure[i, j]) for i, j in links)
            c[2] += len(links)
            c[3] += int(sure.sum())
    return {name: 1 - (c[0] + c[1]) / (c[2] + c[3]) for name, c in counts.items()}


def test_quick_demo_experiment_reports_each_seed_truthfully_and_the_mean_and_sd(tmp_path, capsys):
    out = tmp_path / "seeds"
    args = ["experiment", "demo", *QUICK, "--seeds", "0,2", "--out", str(out)]
    assert main(args) == 0
    report = json.loads((out / "demo.json").read_text())
    assert report["command"] == "attnkit " + " ".join(args) and report["seeds"] == [0, 2]
    size = report["settings"]["test_size"]
    for seed in (0, 2):
        test = load_pairs("dates", "test", size=size, seed=seed)
        rows = {r["model"]: r for r in report["per_seed"][str(seed)]["models"]}
        assert list(rows) == ["Bahdanau", "no attention", "diagonal (no training)", "uniform (no training)"]
        model = attnkit.io.load(out / f"seed-{seed}" / "model")
        assert model.config.attention == "bahdanau"
        preds = model.translate([s for s, _ in test])
        assert rows["Bahdanau"]["exact_match"] == sum(p == t for p, (_, t) in zip(preds, test, strict=True)) / size
        aer = reference_aer(model, test, "dates")
        assert rows["Bahdanau"]["aer"] == pytest.approx(aer["argmax"], abs=1e-12)
        rules = {r["rule"]: r["aer"] for r in report["per_seed"][str(seed)]["rules"]}
        assert rules == pytest.approx(aer, abs=1e-12)
        assert rows["no attention"]["steps"] == rows["Bahdanau"]["steps"] == 3  # equal budgets
        assert rows["no attention"]["aer"] is None and rows["no attention"]["exact_match_beam"] is None
        for name, value in plain_reference_aer(test).items():
            assert rows[f"{name} (no training)"]["aer"] == pytest.approx(value, abs=1e-12)
            assert rows[f"{name} (no training)"].get("exact_match") is None
    for row in report["tables"]["models"]:
        for figure in ("exact_match", "aer", "train_seconds"):
            values = [next(r for r in report["per_seed"][s]["models"] if r["model"] == row["model"]).get(figure)
                      for s in ("0", "2")]
            if values[0] is None:
                assert row[figure]["mean"] is None and row[figure]["n"] == 0
                continue
            assert row[figure]["mean"] == pytest.approx(statistics.mean(values))
            assert row[figure]["sd"] == pytest.approx(statistics.stdev(values))
    md = (out / "demo.md").read_text()
    assert "--quick: a smoke test" in md.splitlines()[0]
    assert f"Command: `{report['command']}`" in md and "| diagonal (no training) | - |" in md
    bahdanau = report["tables"]["models"][0]["aer"]
    assert "| Bahdanau | 3 ± 0 |" in md and f"{bahdanau['mean']:.3g} ± " in md
    assert (out / "demo.png").stat().st_size > 0
    assert "Seeds: 0, 2 (n=2)" in capsys.readouterr().out


def test_one_seed_of_the_experiment_is_the_demo_with_that_seed(tmp_path, capsys):
    assert main(["experiment", "demo", *QUICK, "--seeds", "1", "--out", str(tmp_path / "seeds")]) == 0
    assert main(["demo", *QUICK, "--seed", "1", "--out", str(tmp_path / "demo")]) == 0
    assert "seed 1" in capsys.readouterr().out  # the demo's table says which seed
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    rows = {r["model"]: r for r in json.loads((tmp_path / "seeds" / "demo.json").read_text())["per_seed"]["1"]["models"]}
    assert summary["seed"] == 1 and "Seed 1" in (tmp_path / "demo" / "summary.md").read_text()
    for key in ("steps", "exact_match", "exact_match_beam"):
        assert rows["Bahdanau"][key] == summary[key]
    assert rows["Bahdanau"]["aer"] == summary["alignment_error_rate"]["argmax"]
    assert rows["no attention"]["exact_match"] == summary["contrast"]["exact_match"]


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0,0"], "--seeds must be distinct comma-separated integers >= 0"),
    (["--seeds", "a"], "--seeds must be distinct comma-separated integers >= 0"),
    (["--steps", "0"], "--steps must be >= 1. Received: 0"),
    (["--time-budget", "0"], "--time-budget must be a finite number > 0. Received: 0"),
    (["--threads", "-1"], "--threads must be >= 0"),
    (["--seed", "1"], "No such option: --seed"),
])
def test_demo_experiment_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    assert main(["experiment", "demo", "--quick", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
