"""`attnkit demo --quick`: the whole pipeline on a tiny budget; its summary checked against a recount."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import attnkit.io
from attnkit.cli.main import main
from attnkit.data import load_pairs
from tests.cli.alignment_reference import reference_aer

torch.set_num_threads(1)


def test_quick_demo_writes_model_pngs_and_a_truthful_summary(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out exact match" in printed and "│" in printed  # scores and a terminal heatmap
    assert "--quick is a smoke test" in " ".join(printed.split())  # flat heatmaps are expected, and it says so

    summary = json.loads((out / "summary.json").read_text())
    assert "exact_match" in summary and (out / "summary.md").is_file()
    # Recount the held-out exact match from the saved model and the test split (independent of the demo).
    test = load_pairs("dates", "test", size=summary["test_size"], seed=0)
    train_sources = {s for s, _ in load_pairs("dates", "train", size=summary["train_size"], seed=0)}
    assert not train_sources & {s for s, _ in test}
    model = attnkit.io.load(out / "model")
    preds = model.translate([s for s, _ in test])
    assert summary["exact_match"] == sum(p == t for p, (_, t) in zip(preds, test, strict=True)) / len(test)
    assert summary["alignment_error_rate"] == pytest.approx(reference_aer(model, test, "dates"), abs=1e-12)
    assert "AER (argmax)" in printed and f"{summary['alignment_error_rate']['argmax']:.4f}" in printed
    assert summary["contrast"]["attention"] == "none"
    assert summary["contrast"]["steps"] == summary["steps"]  # equal budgets

    assert summary["alignment_pngs"]
    for name in summary["alignment_pngs"]:
        with Image.open(out / name) as img:
            assert img.format == "PNG" and img.size[0] > 100
    markdown = (out / "summary.md").read_text()
    assert "exact match" in markdown and "Alignment error rate" in markdown


def test_demo_rejects_bad_options_without_writing(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--steps", "0"]) == 2
    assert "--steps must be >= 1. Received: 0" in capsys.readouterr().err
    assert main(["demo", "--quick", "--out", str(out), "--threads", "-1"]) == 2
    assert "--threads must be >= 0" in capsys.readouterr().err
    assert not out.exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--quick", "--out", str(blocker)]) == 2
    assert "is a file. Expected a directory" in capsys.readouterr().err


def test_translate_dates_example_runs(capsys):
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "translate_dates.py"
    namespace = runpy.run_path(str(script), run_name="example")
    em = namespace["main"](steps=5)
    printed = capsys.readouterr().out
    assert "held-out exact match after 5 steps" in printed and 0.0 <= em <= 1.0
    assert "martes, 4 de marzo de 2031 ->" in printed
