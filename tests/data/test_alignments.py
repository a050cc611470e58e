"""Gold alignments of the built-in tasks, checked on hand-written pairs (links worked out by hand)."""

from __future__ import annotations

import datetime

import pytest
import torch

from attnkit.data import load_pairs
from attnkit.data.alignments import GOLD_ALIGNMENTS, gold_alignment


def linked(source: str, row: torch.Tensor) -> str:
    return "".join(c for c, x in zip(source, row.tolist(), strict=True) if x)


def links(*pairs: tuple[int, int], shape: tuple[int, int]) -> torch.Tensor:
    out = torch.zeros(shape, dtype=torch.bool)
    for t, j in pairs:
        out[t, j] = True
    return out


def test_copy_and_reverse_are_the_position_maps():
    sure, possible = gold_alignment("copy", "cab", "cab")
    assert torch.equal(sure, links((0, 0), (1, 1), (2, 2), shape=(3, 3))) and torch.equal(possible, sure)
    sure, possible = gold_alignment("reverse", "cabd", "dbac")
    assert torch.equal(sure, links((0, 3), (1, 2), (2, 1), (3, 0), shape=(4, 4))) and torch.equal(possible, sure)


def test_sort_links_each_character_to_where_it_was_and_ties_are_possible():
    sure, possible = gold_alignment("sort", "cbab", "abbc")
    assert torch.equal(sure, links((0, 2), (3, 0), shape=(4, 4)))
    assert torch.equal(possible, links((0, 2), (3, 0), (1, 1), (1, 3), (2, 1), (2, 3), shape=(4, 4)))


def test_german_numbers_cross():
    source = "einundzwanzig"
    sure, possible = gold_alignment("numbers", source, "21")
    assert sure.shape == (2, 13)
    assert linked(source, sure[0]) == "zwanzig" and linked(source, sure[1]) == "ein"
    assert linked(source, possible[0]) == "undzwanzig" and linked(source, possible[1]) == "einund"


def test_numbers_zero_digits_have_no_links_and_scale_words_go_with_their_digit():
    source = "dos mil treinta y uno"
    sure, possible = gold_alignment("numbers", source, "2031")
    assert [linked(source, r) for r in sure] == ["dosmil", "", "treinta", "uno"]
    assert [linked(source, r) for r in possible] == ["dosmil", "", "treintay", "yuno"]  # "y" joins both
    sure, _ = gold_alignment("numbers", "zweitausenddreihundert", "2300")
    assert [linked("zweitausenddreihundert", r) for r in sure] == ["zweitausend", "dreihundert", "", ""]
    sure, _ = gold_alignment("numbers", "cero", "0")  # the one zero that is said
    assert linked("cero", sure[0]) == "cero"


def test_spanish_eleven_is_one_word_for_both_digits_so_both_links_are_possible():
    sure, possible = gold_alignment("numbers", "once", "11")
    assert not sure.any() and [linked("once", r) for r in possible] == ["once", "once"]


def test_spanish_date_with_a_month_name():
    source = "martes, 4 de marzo de 2031"
    sure, possible = gold_alignment("dates", source, "2031-03-04")
    assert [linked(source, r) for r in sure] == ["2", "0", "3", "1", "", "marzo", "marzo", "", "", "4"]
    assert linked(source, possible[8]) == "4"  # the day's leading 0 is implied by the one-digit "4"
    assert not possible[4].any() and not possible[7].any()  # ISO separators
    assert not (possible[:, :6]).any()  # the weekday says nothing the digits do not


def test_french_abbreviated_month_and_numeric_formats():
    source = "4 mars 2031"
    sure, _ = gold_alignment("dates", source, "2031-03-04")
    assert [linked(source, r) for r in sure[5:7]] == ["mars", "mars"]
    source = "04/03/31"  # it short dd/MM/yy: the century is possible on the two-digit year
    sure, possible = gold_alignment("dates", source, "2031-03-04")
    assert [linked(source, r) for r in sure] == ["", "", "3", "1", "", "0", "3", "", "0", "4"]
    assert linked(source, possible[0]) == "31" and linked(source, possible[1]) == "31"


def test_every_date_format_links_each_iso_digit():
    from attnkit.data.dates import DATE_FORMATS, render

    for d in (datetime.date(1950, 1, 1), datetime.date(2031, 3, 4), datetime.date(2049, 12, 31)):
        for fmt in DATE_FORMATS:
            for lowercase in (True, False):
                source = render(d, fmt, lowercase)
                sure, possible = gold_alignment("dates", source, d.isoformat())
                assert all(possible[t].any() for t in (0, 1, 2, 3, 5, 6, 8, 9)), source
                assert sure[3].any() and sure[6].any() and sure[9].any(), source  # last digit of each field
                assert not possible[4].any() and not possible[7].any()


def test_every_generated_pair_has_gold_links_with_sure_within_possible():
    for task in GOLD_ALIGNMENTS:
        for source, target in load_pairs(task, "validation", size=40, seed=1):
            sure, possible = gold_alignment(task, source, target)
            assert sure.shape == (len(target), len(source)) and sure.dtype == torch.bool
            assert not (sure & ~possible).any()


def test_refusals():
    with pytest.raises(ValueError, match="Expected a task with gold alignments"):
        gold_alignment("corpus.tsv", "a", "b")
    with pytest.raises(ValueError, match="Expected the reverse target"):
        gold_alignment("reverse", "ab", "ab")
    with pytest.raises(ValueError, match="in words"):
        gold_alignment("numbers", "einundzwanzig", "12")
    with pytest.raises(ValueError, match="formats"):
        gold_alignment("dates", "4 de marzo de 2031", "2031-03-05")
