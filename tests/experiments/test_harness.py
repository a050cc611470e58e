"""The experiment harness: aggregation against figures worked out by hand (``statistics`` on tiny tables), the
seeds option, and the report files' content (JSON, Markdown, the PNG's error bars)."""

from __future__ import annotations

import json
import statistics

import pytest

from attnkit.errors import InputError
from attnkit.experiments.harness import (
    Experiment,
    Panel,
    Table,
    aggregate,
    figure,
    format_figure,
    parse_seeds,
    run_experiment,
)

# one table, three seeds; "b" has no row in seed 2 and no memory figure in seed 0
PER_SEED = [
    [{"model": "a", "length": 8, "score": 0.50, "memory": 10.0}, {"model": "b", "length": 8, "score": 0.2, "memory": None}],
    [{"model": "a", "length": 8, "score": 0.70, "memory": 12.0}, {"model": "b", "length": 8, "score": 0.4, "memory": 5.0}],
    [{"model": "a", "length": 8, "score": 0.90, "memory": 11.0}],
]


def test_aggregate_by_hand():
    rows = aggregate(PER_SEED, ("model", "length"), ("score", "memory"))
    assert [(r["model"], r["length"]) for r in rows] == [("a", 8), ("b", 8)]
    a, b = rows
    assert a["score"]["mean"] == pytest.approx(statistics.mean([0.5, 0.7, 0.9])) == pytest.approx(0.7)
    assert a["score"]["sd"] == pytest.approx(statistics.stdev([0.5, 0.7, 0.9])) == pytest.approx(0.2)
    assert a["memory"]["mean"] == pytest.approx(11.0) and a["memory"]["sd"] == pytest.approx(1.0)
    assert (b["score"]["n"], b["score"]["values"]) == (2, [0.2, 0.4, None])  # the missing seed counts as no value
    assert b["score"]["mean"] == pytest.approx(0.3) and b["score"]["sd"] == pytest.approx(0.1414213562)
    assert (b["memory"]["n"], b["memory"]["mean"], b["memory"]["sd"]) == (1, 5.0, None)  # one value: no sd
    # a seed in the middle without the row: its place in "values" stays empty
    (c,) = aggregate([PER_SEED[1], PER_SEED[2][:0], PER_SEED[0]], ("model",), ("score",))[1:]
    assert c["score"]["values"] == [0.4, None, 0.2]


def test_format_figure():
    rows = aggregate(PER_SEED, ("model",), ("score", "memory"))
    assert format_figure(rows[0]["score"], seeds=3) == "0.7 ± 0.2"
    assert format_figure(rows[1]["score"], seeds=3) == "0.3 ± 0.14 (n=2)"
    assert format_figure(rows[1]["memory"], seeds=3) == "5 (n=1)"
    assert format_figure({"mean": None, "sd": None, "n": 0, "values": [None]}, seeds=1) == "-"


@pytest.mark.parametrize("text, seeds", [("0,1,2", (0, 1, 2)), ("7", (7,)), (" 3, 1", (3, 1))])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "0,x", "1,1", "-1", "0-2"])
def test_parse_seeds_refuses(text):
    with pytest.raises(InputError, match="--seeds must be distinct comma-separated integers >= 0, e.g. 0,1,2. Received"):
        parse_seeds(text)


def _experiment(calls: list[int]) -> Experiment:
    def run(seed: int) -> dict:
        calls.append(seed)
        return {"scores": [row for row in PER_SEED[seed] if row["model"] == "a"]}

    return Experiment("toy", "A toy experiment", (Table("scores", "Scores", ("model", "length"), ("score",),
                                                        note="a note"),),
                      (Panel("scores", "length", "score", ("model",)),), run, settings={"steps": 3})


def test_report_files(tmp_path):
    calls: list[int] = []
    exp = _experiment(calls)
    report = run_experiment(exp, (0, 1, 2), tmp_path / "out", command="attnkit experiment toy --seeds 0,1,2")
    assert calls == [0, 1, 2]
    saved = json.loads((tmp_path / "out" / "toy.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["command"] == "attnkit experiment toy --seeds 0,1,2" and saved["seeds"] == [0, 1, 2]
    assert "CPU" in saved["machine"] and "vector flags" in saved["machine"]
    assert saved["per_seed"]["1"]["scores"] == [PER_SEED[1][0]] and saved["settings"] == {"steps": 3}
    assert saved["tables"]["scores"][0]["score"]["mean"] == pytest.approx(0.7)
    md = (tmp_path / "out" / "toy.md").read_text()
    assert "`attnkit experiment toy --seeds 0,1,2`" in md and saved["machine"] in md
    assert "| model | length | score |" in md and "| a | 8 | 0.7 ± 0.2 |" in md and "a note" in md
    assert "![A toy experiment](toy.png)" in md
    assert (tmp_path / "out" / "toy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_seed_says_n_1(tmp_path):
    run_experiment(_experiment([]), (2,), tmp_path, command="attnkit experiment toy")
    md = (tmp_path / "toy.md").read_text()
    assert "| a | 8 | 0.9 (n=1) |" in md and "±" not in md.split("## Scores")[1]


def test_the_picture_has_error_bars_of_one_sd(tmp_path):
    report = run_experiment(_experiment([]), (0, 1, 2), tmp_path, command="x")
    ax = figure(_experiment([]), report).axes[0]
    (bars,) = ax.containers
    (segment,) = bars.lines[2][0].get_segments()  # the vertical bar at x = 8: mean - sd to mean + sd
    assert [float(v) for point in segment for v in point] == pytest.approx([8, 0.5, 8, 0.9])
