"""``attnkit bench``: the --quick smoke test (every figure measured, files written) and its input errors.

No timed assertion: figures must be finite and positive, never how fast. Memory is checked only against a
known property (the naive path builds the T x T score matrix, attnkit's fused path does not).
"""

from __future__ import annotations

import json
import math

import pytest

from attnkit.cli.main import main

DEFAULT_SUITES = ("functional", "layers", "models", "kinds")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "report"
    assert main(["bench", "--quick", "--threads", "1", "--out", str(out)]) == 0
    return out, json.loads((out / "bench.json").read_text())


def _figures(report: dict) -> dict[str, float]:
    figures = dict(report["machine"]["figures"])
    for section in report["suites"].values():
        figures.update(section["figures"])
    return figures


def test_quick_runs_every_suite_and_writes_every_file(quick_report):
    out, report = quick_report
    assert list(report["suites"]) == list(DEFAULT_SUITES) and report["failed"] == {}
    for name in ("bench.json", "bench.md", "scaling_time.png", "scaling_memory.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    md = (out / "bench.md").read_text()
    assert md.index("## Machine") < md.index("## Functional core")  # the machine's limit first
    assert "vector flags:" in md and "GFLOP/s" in md


def test_every_figure_was_measured(quick_report):
    _, report = quick_report
    figures = _figures(report)
    # a fitted exponent is measured when finite (on a short quick range under load it may even be negative);
    # every other figure (times, rates, bytes, ratios) is also positive
    bad = {k: v for k, v in figures.items() if not (isinstance(v, (int, float)) and math.isfinite(v)
                                                    and (v > 0 or "/exponent_" in k))}
    assert not bad
    for suite in DEFAULT_SUITES:
        assert report["suites"][suite]["figures"], suite
    assert figures["machine/matmul_gflops"] > 0 and figures["machine/sdpa_share_of_limit"] > 0
    # installed peers are measured, not skipped
    assert any("/keras_ms" in k for k in figures) and any(k.endswith("transformers_per_s") for k in figures)
    assert any(k.startswith("models/bf16/") for k in figures)
    for path in ("sdpa", "attnkit", "naive"):
        assert f"kinds/{path}/exponent_time_fwd" in figures


def test_scaling_memory_follows_what_each_path_allocates(quick_report):
    _, report = quick_report
    memory = {(m["path"], m["length"], m["backward"]): m for m in report["suites"]["kinds"]["raw"]["memory"]
              if m["mask"] == "none" and "error" not in m}
    length = 1024
    score_matrix = 4 * length * length  # one float32 (T, T) matrix
    assert memory["naive", length, False]["working_bytes"] >= score_matrix
    assert memory["attnkit", length, False]["working_bytes"] < score_matrix


def test_unknown_suite_is_exit_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "functional", "nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("attnkit: error: unknown benchmark suite 'nope'. "
                           "Expected one of: functional, layers, models, kinds, compile")
    assert not out.exists()


def test_out_that_is_a_file_is_exit_2(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["bench", "functional", "--out", str(target)]) == 2
    assert "is a file. Expected a directory" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_models_generate_the_same_greedy_tokens_as_transformers(quick_report):
    _, report = quick_report
    assert report["suites"]["models"]["raw"]["same_tokens"] is True  # same weights, same greedy tokens
