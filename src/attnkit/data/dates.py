"""The ``dates`` task: a date written in many human ways -> the same date in ISO 8601 (``YYYY-MM-DD``).

Sources are rendered with Babel's CLDR locale data in six locales (es, en, fr, de, pt, it), in the four
CLDR lengths (full / long / medium / short) plus a few free-form patterns, and lower-cased by default
(one fewer thing for a small model to learn). Examples for 2031-03-04::

    es full    "martes, 4 de marzo de 2031"
    de long    "4. märz 2031"
    fr short   "04/03/2031"
    en medium  "mar 4, 2031"

Every source string has exactly one right answer. Formats that would clash are left out: English short
``M/d/yy`` reads "4/3/31" as 3 April 2031 while Spanish short ``d/M/yy`` reads it as 4 March, so
``en short`` is excluded (see :data:`EXCLUDED_FORMATS`); :func:`find_clashes` checks a format set over a
whole date range and the tests run it over 1950-2049.

Train / validation / test are split by the *date*, not by the string (:mod:`attnkit.data.splits`): a
date in the test split never appears in training in any format.

Example:
    >>> import datetime
    >>> render(datetime.date(2031, 3, 4), DateFormat("de", "long", "d. MMMM y"))
    '4. märz 2031'
    >>> pairs = generate_dates("train", size=3, seed=0)
    >>> len(pairs), all(len(tgt) == 10 for _, tgt in pairs)
    (3, True)
"""

from __future__ import annotations

import datetime
import random
import re
from dataclasses import dataclass
from functools import cache

from babel import Locale
from babel.dates import DateTimeFormat, get_date_format, parse_pattern

from attnkit.data.splits import check_split, split_of, split_seed

LOCALES: tuple[str, ...] = ("es", "en", "fr", "de", "pt", "it")
CLDR_LENGTHS: tuple[str, ...] = ("full", "long", "medium", "short")
START: datetime.date = datetime.date(1950, 1, 1)
END: datetime.date = datetime.date(2049, 12, 31)

# (locale, CLDR length) pairs left out because they give one string two meanings.
EXCLUDED_FORMATS: tuple[tuple[str, str], ...] = (
    ("en", "short"),
)  # M/d/yy clashes with es d/M/yy, it dd/MM/yy

# Free-form patterns (CLDR pattern syntax) beyond the four standard lengths. All are day-first or
# year-first, so none clashes with another (checked by the tests over START..END).
FREE_FORM_PATTERNS: tuple[tuple[str, str], ...] = (
    ("en", "d MMMM y"),
    ("en", "EEE, MMM d, y"),
    ("en", "y/MM/dd"),
    ("es", "dd-MM-y"),
    ("es", "EEEE d 'de' MMMM, y"),
    ("fr", "EEE d MMM y"),
    ("de", "d.M.y"),
    ("de", "EEE, d. MMM y"),
    ("pt", "d/M/y"),
    ("it", "EEEE d MMM y"),
)


@dataclass(frozen=True)
class DateFormat:
    """One way of writing a date.

    Attributes:
        locale: CLDR locale code, e.g. ``"es"``.
        name: ``"full"``, ``"long"``, ``"medium"``, ``"short"`` or ``"custom"`` for a free-form pattern.
        pattern: the CLDR pattern, e.g. ``"d 'de' MMMM 'de' y"``.
    """

    locale: str
    name: str
    pattern: str


def date_formats(include_excluded: bool = False) -> tuple[DateFormat, ...]:
    """All formats of the task: the CLDR lengths of :data:`LOCALES` and :data:`FREE_FORM_PATTERNS`.

    Args:
        include_excluded: also return :data:`EXCLUDED_FORMATS` (they clash; useful to show the clash).
    """
    out = []
    for loc in LOCALES:
        for length in CLDR_LENGTHS:
            if (loc, length) in EXCLUDED_FORMATS and not include_excluded:
                continue
            out.append(DateFormat(loc, length, get_date_format(length, locale=loc).pattern))
    out += [DateFormat(loc, "custom", pat) for loc, pat in FREE_FORM_PATTERNS]
    return tuple(out)


DATE_FORMATS: tuple[DateFormat, ...] = date_formats()


def _component(field: str, d: datetime.date) -> int | None:
    """The part of the date a CLDR field depends on, or None when it is not one we can cache by."""
    c = field[0]
    if c == "d":
        return d.day
    if c in "ML":
        return d.month
    if c == "y":
        return d.year
    if c in "Ec":
        return d.weekday()
    return None


@cache
def _compiled(pattern: str) -> str:
    return parse_pattern(pattern).format  # '%(d)s de %(MMMM)s de %(y)s'


@cache
def _locale(code: str) -> Locale:
    return Locale.parse(code)


_FIELD_CACHE: dict[tuple[str, str, int], str] = {}


def _normalise(text: str, lowercase: bool) -> str:
    # CLDR uses narrow/no-break spaces in some locales; a plain space keeps vocabularies small.
    text = text.replace("\u202f", " ").replace("\xa0", " ").strip()
    return text.lower() if lowercase else text


class _Fields:
    """Mapping ``field -> text`` for ``str % mapping``, cached by (locale, field, date component)."""

    def __init__(self, d: datetime.date, locale: str) -> None:
        self.d, self.locale = d, locale

    def __getitem__(self, field: str) -> str:
        comp = _component(field, self.d)
        if comp is None:
            return DateTimeFormat(self.d, _locale(self.locale))[field]
        key = (self.locale, field, comp)
        val = _FIELD_CACHE.get(key)
        if val is None:
            val = _FIELD_CACHE[key] = DateTimeFormat(self.d, _locale(self.locale))[field]
        return val


def render(d: datetime.date, fmt: DateFormat, lowercase: bool = True) -> str:
    """Write date ``d`` in format ``fmt``; equals ``babel.dates.format_date(d, fmt.pattern, fmt.locale)``.

    Spaces are normalised (CLDR's no-break spaces become plain spaces) and the text lower-cased when
    ``lowercase``. Field values are cached, which makes rendering a whole century in every format fast.
    """
    return _normalise(_compiled(fmt.pattern) % _Fields(d, fmt.locale), lowercase)


_FIELD = re.compile(r"%\((\w+)\)s")  # a field of a compiled pattern: '%(MMMM)s'


def render_with_spans(d: datetime.date, fmt: DateFormat, lowercase: bool = True) -> tuple[str, list[tuple[str, int, int]]]:
    """:func:`render`'s text and where each field landed in it: ``(field, start, end)`` per field.

    Example:
        >>> text, spans = render_with_spans(datetime.date(2031, 3, 4), DateFormat("es", "long", "d 'de' MMMM 'de' y"))
        >>> [(field, text[a:b]) for field, a, b in spans]
        [('d', '4'), ('MMMM', 'marzo'), ('y', '2031')]
    """
    fields, text, spans = _Fields(d, fmt.locale), "", []
    for k, part in enumerate(_FIELD.split(_compiled(fmt.pattern))):
        if k % 2:  # a field name
            value = _normalise(fields[part], lowercase=False)
            spans.append((part, len(text), len(text) + len(value)))
            text += value
        else:
            text += part.replace("%%", "%")
    raw = text.replace("\u202f", " ").replace("\xa0", " ")
    shift = len(raw) - len(raw.lstrip())  # render strips leading spaces
    return _normalise(text, lowercase), [(f, a - shift, b - shift) for f, a, b in spans]


def all_dates(start: datetime.date = START, end: datetime.date = END) -> list[datetime.date]:
    """Every date from ``start`` to ``end`` inclusive."""
    if end < start:
        raise ValueError(f"Expected start <= end. Received: start={start}, end={end}")
    return [start + datetime.timedelta(days=i) for i in range((end - start).days + 1)]


def find_clashes(
    formats: tuple[DateFormat, ...] = DATE_FORMATS,
    start: datetime.date = START,
    end: datetime.date = END,
    lowercase: bool = True,
) -> dict[str, set[str]]:
    """Sources that more than one date renders to: ``{source: {iso_date, ...}}`` (empty = unambiguous).

    Builds the map source -> targets over every date in ``start..end`` and every format.
    """
    targets: dict[str, str] = {}
    clashes: dict[str, set[str]] = {}
    for d in all_dates(start, end):
        iso = d.isoformat()
        for fmt in formats:
            src = render(d, fmt, lowercase)
            prev = targets.setdefault(src, iso)
            if prev != iso:
                clashes.setdefault(src, {prev}).add(iso)
    return clashes


def generate_dates(
    split: str = "train",
    size: int = 20_000,
    seed: int = 0,
    *,
    formats: tuple[DateFormat, ...] | None = None,
    start: datetime.date = START,
    end: datetime.date = END,
    lowercase: bool = True,
) -> list[tuple[str, str]]:
    """Sample ``size`` distinct ``(source, "YYYY-MM-DD")`` pairs of one split.

    Dates are assigned to splits by :func:`attnkit.data.splits.split_of` on their ISO form and ``seed``;
    each sampled pair is one date of that split in one uniformly drawn format. Deterministic in
    ``(split, size, seed, formats, start, end, lowercase)``.

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"``.
        size: number of pairs (distinct sources).
        seed: split and sampling seed.
        formats: formats to draw from (default :data:`DATE_FORMATS`).
        start, end: inclusive date range. Two-digit-year formats need a range under 100 years.
        lowercase: lower-case the sources.

    Returns:
        list of ``(source, target)`` string pairs.
    """
    check_split(split)
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"Expected size to be a non-negative int. Received: size={size!r}")
    fmts = DATE_FORMATS if formats is None else tuple(formats)
    if not fmts:
        raise ValueError("Expected at least one date format. Received: formats=()")
    if end.year - start.year >= 100 and any("yy" in f.pattern.replace("yyyy", "") for f in fmts):
        raise ValueError(
            f"Two-digit-year formats are ambiguous over 100 years or more. Received: start={start}, end={end}"
        )
    days = [d for d in all_dates(start, end) if split_of(d.isoformat(), seed) == split]
    capacity = len(days) * len(fmts)
    if size > capacity:
        raise ValueError(f"Expected size <= {capacity} for split {split!r}. Received: size={size}")
    rng = random.Random(split_seed(seed, split))
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    while len(pairs) < size:
        d = days[rng.randrange(len(days))]
        src = render(d, fmts[rng.randrange(len(fmts))], lowercase)
        if src not in seen:  # distinct sources; formats that coincide (fr medium == fr long) are skipped
            seen.add(src)
            pairs.append((src, d.isoformat()))
    return pairs
