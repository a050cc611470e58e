"""The report helpers: power-law fits against exact power laws, table formatting, skipped lines."""

from __future__ import annotations

import math

import pytest

from attnkit.bench.report import Section, fit_exponent, format_cell


@pytest.mark.parametrize("exponent", [1.0, 2.0, 0.5])
def test_fit_exponent_recovers_an_exact_power_law(exponent):
    lengths = [128, 512, 2048, 32768]
    values = [3.7 * t**exponent for t in lengths]
    assert math.isclose(fit_exponent(lengths, values), exponent, rel_tol=1e-9)


def test_fit_exponent_is_the_least_squares_slope():
    # log2 lengths 0, 1, 2 with log2 values 0, 1, 4: slope of the least-squares line = 2
    assert math.isclose(fit_exponent([1, 2, 4], [1, 2, 16]), 2.0, rel_tol=1e-12)


def test_fit_exponent_rejects_what_it_cannot_fit():
    with pytest.raises(ValueError, match="Expected at least two distinct lengths"):
        fit_exponent([128, 128], [1.0, 2.0])
    with pytest.raises(ValueError, match="Expected positive values"):
        fit_exponent([128, 256], [1.0, 0.0])


def test_section_markdown_lists_skipped_peers_and_never_zero():
    s = Section("demo", "Demo")
    s.skip("keras", "keras is not installed")
    s.table("t", ["peer", "ms"], [["torch", 2.5], ["keras", None]])
    md = s.markdown()
    assert "- skipped: keras (keras is not installed)" in md
    assert "| keras | - |" in md and "| keras | 0" not in md
    assert format_cell(float("nan")) == "nan"
