"""The ``numbers`` task: a number written out in words -> its digits.

Words come from ``num2words`` in German, Spanish, English and French. German makes attention visible:
"einundzwanzig" (21) says the units before the tens, so the alignment is not monotonic. Sources are
lower-cased. Examples::

    de  "einundzwanzig"                     -> "21"
    es  "mil doscientos treinta y cuatro"   -> "1234"
    fr  "quatre-vingt-dix-neuf"             -> "99"

Splits are by the *number* (:mod:`attnkit.data.splits`): a number in the test split never appears in
training in any language. ``max_len`` bounds the number of digits; the test split may allow longer
numbers than training (``test_max_len``), to measure how a model extrapolates.

Example:
    >>> number_words(21, "de")
    'einundzwanzig'
    >>> pairs = generate_numbers("train", size=4, seed=0, max_len=3)
    >>> all(tgt.isdigit() and len(tgt) <= 3 for _, tgt in pairs)
    True
"""

from __future__ import annotations

import random
from collections.abc import Callable

from num2words import num2words

from attnkit.data.splits import check_split, sample_split

NUMBER_LANGUAGES: tuple[str, ...] = ("de", "es", "en", "fr")


def number_words(n: int, lang: str) -> str:
    """``n`` written in words in language ``lang`` (lower-cased, single spaces)."""
    if lang not in NUMBER_LANGUAGES:
        raise ValueError(f"Expected lang to be one of {NUMBER_LANGUAGES}. Received: lang={lang!r}")
    return " ".join(num2words(n, lang=lang).lower().split())


def generate_numbers(
    split: str = "train",
    size: int = 20_000,
    seed: int = 0,
    *,
    languages: tuple[str, ...] = NUMBER_LANGUAGES,
    min_len: int = 1,
    max_len: int = 6,
    test_max_len: int | None = None,
) -> list[tuple[str, str]]:
    """Sample ``size`` distinct ``(words, digits)`` pairs of one split.

    A number is drawn by first drawing its digit count uniformly in ``[min_len, L]`` (``L = max_len``,
    or ``test_max_len`` for the test split when given), then a value with that many digits uniformly,
    then a language uniformly; numbers not in ``split`` (by :func:`split_of` on the decimal string) are
    redrawn. Deterministic in all arguments.

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"``.
        size: number of pairs (distinct sources).
        seed: split and sampling seed.
        languages: subset of :data:`NUMBER_LANGUAGES`.
        min_len, max_len: digit-count range of the numbers (``0`` counts as one digit).
        test_max_len: digit-count upper bound for the test split (default ``max_len``).

    Returns:
        list of ``(source, target)`` string pairs.
    """
    check_split(split)
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"Expected size to be a non-negative int. Received: size={size!r}")
    if not languages or any(lang not in NUMBER_LANGUAGES for lang in languages):
        raise ValueError(f"Expected languages from {NUMBER_LANGUAGES}. Received: languages={languages!r}")
    top = test_max_len if (split == "test" and test_max_len is not None) else max_len
    if not 1 <= min_len <= max_len or top < min_len or top > 15:
        raise ValueError(
            "Expected 1 <= min_len <= max_len (and test_max_len) <= 15. "
            f"Received: min_len={min_len}, max_len={max_len}, test_max_len={test_max_len}"
        )

    def draw(rng: random.Random) -> tuple[str, Callable[[], tuple[str, str]]]:
        k = rng.randint(min_len, top)
        n = rng.randint(0 if k == 1 else 10 ** (k - 1), 10**k - 1)
        lang = languages[rng.randrange(len(languages))]
        return str(n), lambda: (number_words(n, lang), str(n))

    what = f"pairs for split {split!r} with digit counts {min_len}..{top}"
    return sample_split(split, size, seed, draw, what)
