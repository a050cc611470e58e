"""``attnkit train transformer`` end to end on a tiny run, and ``attnkit translate/evaluate`` on its output."""

from __future__ import annotations

import json

import pytest

import attnkit
from attnkit.cli.main import main
from attnkit.data import load_pairs
from attnkit.models.transformer import Transformer

TINY = ["--data", "reverse", "--train-size", "300", "--valid-size", "20", "--min-len", "2", "--max-len", "5",
        "--d-model", "16", "--heads", "2", "--layers", "1", "--ff-dim", "32", "--batch-size", "32",
        "--steps", "40", "--eval-every", "20", "--warmup", "20", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tf") / "run"
    code = main(["train", "transformer", *TINY, "--out", str(out), "--norm", "pre", "--positional", "learned",
                 "--share-embeddings", "all"])
    assert code == 0
    return out


def test_train_writes_a_loadable_transformer(run_dir):
    assert {p.name for p in run_dir.iterdir()} >= {"model", "checkpoint", "run.json", "train_log.jsonl"}
    model = attnkit.load(run_dir / "model")
    assert isinstance(model, Transformer)
    c = model.config
    assert (c.d_model, c.num_heads, c.encoder_layers, c.decoder_layers, c.ff_dim) == (16, 2, 1, 1, 32)
    assert (c.norm, c.positional, c.share_embeddings) == ("pre", "learned", "all")
    assert model.tokenizers["source"] == model.tokenizers["target"]  # one vocabulary for both sides
    assert model.out.weight is model.src_embed.weight
    events = [json.loads(line)["event"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert events.count("eval") == 2 and events[-1] == "stop"
    assert all(isinstance(t, str) for t in model.translate(["abc", "de"]))


def test_translate_command(run_dir, capsys):
    model = attnkit.load(run_dir / "model")
    expected = model.translate(["abcd", "ba"], beam_size=2)
    capsys.readouterr()
    assert main(["translate", str(run_dir), "abcd", "ba", "--beam", "2", "--no-heatmap"]) == 0
    assert capsys.readouterr().out.splitlines() == expected
    assert main(["translate", str(run_dir), "abcd"]) == 0  # with the alignment heatmap
    assert "abcd" in capsys.readouterr().out


def test_evaluate_command(run_dir, tmp_path, capsys):
    report = tmp_path / "scores.json"
    assert main(["evaluate", str(run_dir), "--size", "30", "--json", str(report)]) == 0
    scores = json.loads(report.read_text())
    spec = json.loads((run_dir / "run.json").read_text())
    pairs = load_pairs("reverse", "test", size=30, seed=spec["seed"], min_len=spec["min_len"],
                       max_len=spec["max_len"])
    preds = attnkit.load(run_dir / "model").translate([s for s, _ in pairs])
    assert scores["examples"] == 30
    assert scores["exact_match"] == pytest.approx(sum(p == t for p, (_, t) in zip(preds, pairs, strict=True)) / 30)


@pytest.mark.parametrize(("flags", "message"), [
    (["--norm", "mid"], "--norm must be one of post, pre. Received: 'mid'"),
    (["--share-embeddings", "both"], "--share-embeddings must be one of none, decoder, all. Received: 'both'"),
    (["--d-model", "30", "--heads", "4"], "--d-model must be a positive multiple of --heads. Received: --d-model 30"),
    (["--dropout", "1.5"], "--dropout must be <= 1. Received: 1.5"),
    (["--data", "no/such/file.tsv"], "Unknown data 'no/such/file.tsv'"),
])
def test_bad_flags_exit_2_and_write_nothing(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main(["train", "transformer", *TINY, "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attnkit: error: ") and message in err and "Traceback" not in err
    assert not out.exists()


def test_existing_run_needs_resume(run_dir, capsys):
    assert main(["train", "transformer", *TINY, "--out", str(run_dir)]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    from attnkit.cli.main import main

    assert main(["train", "transformer", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--d-model", "--heads", "--layers", "--decoder-layers", "--ff-dim", "--dropout",
                 "--label-smoothing", "--norm", "--positional", "--share-embeddings", "--schedule", "--warmup",
                 "--resume", "--time-budget"):
        assert flag in text


def test_transformer_dates_example_runs(capsys):
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "transformer_dates.py"
    namespace = runpy.run_path(str(script), run_name="example")
    em = namespace["main"](steps=5, train_size=2000, test_size=40)
    printed = capsys.readouterr().out
    assert "held-out exact match after 5 steps" in printed and 0.0 <= em <= 1.0
    assert "martes, 4 de marzo de 2031 ->" in printed
