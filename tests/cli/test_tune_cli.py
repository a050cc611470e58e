"""``attnkit tune``: times the cases it is given, keeps each winner in the cache file the dispatcher reads, and
refuses bad sizes with one line (exit 2) before timing anything."""

from __future__ import annotations

import json

import pytest

from attnkit.cli.main import main
from attnkit.functional import tuning


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tuning, "_tables", {})
    return tmp_path / "tuning.json"


def test_tune_keeps_one_winner_per_case_for_this_machine(cache, capsys):
    assert main(["tune", "--lengths", "24,40", "--batch", "2", "--heads", "3", "--head-dim", "5", "--mask",
                 "padding", "--causal", "--threads", "1"]) == 0
    entries = json.loads(cache.read_text())["machines"][tuning.machine_key()]
    assert len(entries) == 4  # two lengths x (forward, training)
    assert {e["path"] for e in entries.values()} <= set(tuning.CANDIDATES)
    assert all(sorted(e["ms"]) == sorted(tuning.CANDIDATES) for e in entries.values())
    assert all("rows=6" in cls and "mask=keys causal=1" in cls for cls in entries)
    out = capsys.readouterr().out
    assert "kept in" in out and "ATTNKIT_TUNE=0 is set" in out  # the suite runs with tuning off: it says so
    assert main(["tune", "--show"]) == 0
    assert "4 shape classes" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--lengths", "0"], "--lengths must be comma-separated integers in 1..65536"),
    (["--lengths", "12,abc"], "--lengths must be comma-separated integers"),
    (["--batch", "0"], "--batch must be >= 1. Received: 0"),
    (["--heads", "2000"], "--heads must be <= 1024"),
    (["--head-dim", "-1"], "--head-dim must be >= 1"),
    (["--mask", "full"], "--mask must be none or padding"),
    (["--mode", "fast"], "--mode must be one of both, forward, training"),
])
def test_bad_sizes_are_refused_before_timing(cache, capsys, args, message):
    assert main(["tune", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not cache.exists()
