"""The dates task: one right answer per source, disjoint splits by date, agreement with Babel."""

import datetime
import random

import babel.dates
import pytest

from attnkit.data.dates import (
    DATE_FORMATS,
    END,
    START,
    DateFormat,
    all_dates,
    date_formats,
    find_clashes,
    generate_dates,
    render,
    render_with_spans,
)
from attnkit.data.splits import split_of


def test_every_source_has_one_target_over_the_whole_range():
    assert (START, END) == (datetime.date(1950, 1, 1), datetime.date(2049, 12, 31))
    assert len(DATE_FORMATS) >= 30
    assert find_clashes(DATE_FORMATS, START, END) == {}


def test_english_short_is_excluded_because_it_clashes_with_spanish_short():
    en_short = next(f for f in date_formats(include_excluded=True) if (f.locale, f.name) == ("en", "short"))
    es_short = next(f for f in DATE_FORMATS if (f.locale, f.name) == ("es", "short"))
    assert en_short not in DATE_FORMATS
    clashes = find_clashes((en_short, es_short), datetime.date(2031, 3, 1), datetime.date(2031, 4, 30))
    assert clashes["4/3/31"] == {"2031-03-04", "2031-04-03"}  # M/d/yy vs d/M/yy, worked by hand


def test_render_matches_babel_format_date():
    rng = random.Random(0)
    days = rng.sample(all_dates(), 150)
    for d in days:
        for fmt in DATE_FORMATS:
            want = babel.dates.format_date(d, fmt.pattern, locale=fmt.locale)
            want = want.replace("\u202f", " ").replace("\xa0", " ").strip().lower()
            assert render(d, fmt) == want, (d, fmt)
    d = datetime.date(2031, 3, 4)
    assert render(d, DateFormat("es", "x", "d MMM y"), lowercase=False) == babel.dates.format_date(
        d, "d MMM y", locale="es"
    )


def test_hand_checked_renderings():
    d = datetime.date(2031, 3, 4)  # a Tuesday
    by_key = {(f.locale, f.name): f for f in DATE_FORMATS}
    assert render(d, by_key["es", "full"]) == "martes, 4 de marzo de 2031"
    assert render(d, by_key["de", "long"]) == "4. märz 2031"
    assert render(d, by_key["fr", "short"]) == "04/03/2031"
    assert render(d, by_key["it", "full"]) == "martedì 4 marzo 2031"
    assert render(d, by_key["de", "short"]) == "04.03.31"


def test_splits_hold_disjoint_dates_and_targets_are_right():
    train = generate_dates("train", 20_000, seed=0)
    val = generate_dates("validation", 1_000, seed=0)
    test = generate_dates("test", 2_000, seed=0)
    tr_dates, va_dates, te_dates = ({t for _, t in p} for p in (train, val, test))
    assert tr_dates.isdisjoint(te_dates) and tr_dates.isdisjoint(va_dates) and va_dates.isdisjoint(te_dates)
    for split, pairs in (("train", train), ("validation", val), ("test", test)):
        assert len({s for s, _ in pairs}) == len(pairs)  # distinct sources
        for src, tgt in pairs[:300]:
            d = datetime.date.fromisoformat(tgt)
            assert START <= d <= END and split_of(tgt, 0) == split
            assert src in {render(d, f) for f in DATE_FORMATS}


def test_split_shares_are_about_80_10_10():
    days = all_dates()
    counts = {"train": 0, "validation": 0, "test": 0}
    for d in days:
        counts[split_of(d.isoformat(), 0)] += 1
    assert abs(counts["test"] / len(days) - 0.1) < 0.01
    assert abs(counts["validation"] / len(days) - 0.1) < 0.01


def test_deterministic_by_seed():
    a = generate_dates("train", 500, seed=3)
    assert a == generate_dates("train", 500, seed=3)
    assert a != generate_dates("train", 500, seed=4)
    # the split of a date depends on the seed
    assert any(split_of(d.isoformat(), 3) != split_of(d.isoformat(), 4) for d in all_dates()[:100])


def test_bad_arguments():
    with pytest.raises(ValueError, match="Expected split to be one of .* Received: split='dev'"):
        generate_dates("dev", 10)
    with pytest.raises(ValueError, match="Expected size <= .* Received: size=100000000"):
        generate_dates("test", 100_000_000)
    with pytest.raises(ValueError, match="Two-digit-year formats are ambiguous"):
        generate_dates("train", 10, start=datetime.date(1900, 1, 1), end=datetime.date(2049, 12, 31))
    with pytest.raises(ValueError, match="Expected start <= end"):
        all_dates(END, START)


def test_render_with_spans_places_each_field_where_babel_writes_it():
    for d in (datetime.date(1950, 1, 1), datetime.date(2031, 3, 4)):
        for fmt in DATE_FORMATS:
            text, spans = render_with_spans(d, fmt, lowercase=False)
            assert text == render(d, fmt, lowercase=False)
            for field, a, b in spans:
                alone = babel.dates.format_date(d, field, locale=fmt.locale).replace("\u202f", " ").replace("\xa0", " ")
                assert text[a:b] == alone, (fmt, field)
