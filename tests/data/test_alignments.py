"""Gold alignments of the built-in tasks, checked on hand-written pairs (links worked out by hand)."""

from __future__ import annotations

import datetime

import pytest
import torch

from attnkit.data import load_pairs
from attnkit.data.alignments import GOLD_ALIGNMENTS, _find_date_format, alignment_units, gold_alignment


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
    assert sure.shape == possible.shape == (2, 13) and not sure.any()  # words: every letter possible, none sure
    assert linked(source, possible[0]) == "undzwanzig" and linked(source, possible[1]) == "einund"
    assert possible[0].nonzero().min() > possible[1].nonzero().max() - 3  # "2" reads after "1": the links cross


def test_numbers_zero_digits_have_no_links_and_scale_words_go_with_their_digit():
    source = "dos mil treinta y uno"
    _, possible = gold_alignment("numbers", source, "2031")
    assert [linked(source, r) for r in possible] == ["dosmil", "", "treintay", "yuno"]  # "y" joins both
    _, possible = gold_alignment("numbers", "zweitausenddreihundert", "2300")
    assert [linked("zweitausenddreihundert", r) for r in possible] == ["zweitausend", "dreihundert", "", ""]
    _, possible = gold_alignment("numbers", "cero", "0")  # the one zero that is said
    assert linked("cero", possible[0]) == "cero"


def test_spanish_eleven_is_one_word_for_both_digits_so_both_links_are_possible():
    sure, possible = gold_alignment("numbers", "once", "11")
    assert not sure.any() and [linked("once", r) for r in possible] == ["once", "once"]


def test_spanish_date_with_a_month_name():
    source = "martes, 4 de marzo de 2031"
    sure, possible = gold_alignment("dates", source, "2031-03-04")
    assert [linked(source, r) for r in sure] == ["2", "0", "3", "1", "", "", "", "", "", "4"]
    assert [linked(source, r) for r in possible[5:7]] == ["marzo", "marzo"]  # a name: any letter of it
    assert linked(source, possible[8]) == "4"  # the day's leading 0 is implied by the one-digit "4"
    assert not possible[4].any() and not possible[7].any()  # ISO separators
    assert not (possible[:, :6]).any()  # the weekday says nothing the digits do not


def test_french_abbreviated_month_and_numeric_formats():
    source = "4 mars 2031"
    sure, possible = gold_alignment("dates", source, "2031-03-04")
    assert [linked(source, r) for r in possible[5:7]] == ["mars", "mars"] and not sure[5:7].any()
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
                assert sure[3].any() and sure[9].any(), source  # last digit of the year and the day
                month = [source[a:b] for field, a, b in _find_date_format(source, d.isoformat()) if field[0] in "ML"]
                assert sure[6].any() == month[0].isdigit(), source  # a month's name: possible links only
                assert not possible[4].any() and not possible[7].any()


def test_every_generated_pair_has_gold_links_with_sure_within_possible():
    for task in GOLD_ALIGNMENTS:
        for source, target in load_pairs(task, "validation", size=40, seed=1):
            sure, possible = gold_alignment(task, source, target)
            units = (len(alignment_units(task, target)), len(alignment_units(task, source)))
            assert sure.shape == units and sure.dtype == torch.bool
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
