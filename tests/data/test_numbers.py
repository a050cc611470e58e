"""The numbers task: num2words words -> digits, checked by hand, unique, split by number."""

import random

import pytest

from attnkit.data.numbers import NUMBER_LANGUAGES, generate_numbers, number_words
from attnkit.data.splits import split_of


@pytest.mark.parametrize(
    "n, lang, words",
    [
        (21, "de", "einundzwanzig"),  # units before tens: the non-monotonic alignment
        (1234, "de", "eintausendzweihundertvierunddreißig"),
        (101, "de", "einhunderteins"),
        (1234, "es", "mil doscientos treinta y cuatro"),
        (21, "es", "veintiuno"),
        (71, "fr", "soixante et onze"),
        (99, "fr", "quatre-vingt-dix-neuf"),
        (21, "en", "twenty-one"),
        (0, "de", "null"),
    ],
)
def test_hand_checked_words(n, lang, words):
    assert number_words(n, lang) == words


def test_words_name_one_number_across_languages():
    rng = random.Random(0)
    numbers = list(range(1500)) + rng.sample(range(1500, 10**6), 300)
    seen: dict[str, int] = {}
    for n in numbers:
        for lang in NUMBER_LANGUAGES:
            w = number_words(n, lang)
            assert seen.setdefault(w, n) == n, (w, seen[w], n)


def test_splits_are_disjoint_by_number_and_targets_are_right():
    train = generate_numbers("train", 3000, seed=0, max_len=4)
    test = generate_numbers("test", 300, seed=0, max_len=4)
    assert {t for _, t in train}.isdisjoint({t for _, t in test})
    for src, tgt in train[:200] + test[:200]:
        assert tgt == str(int(tgt)) and len(tgt) <= 4
        assert src in {number_words(int(tgt), lang) for lang in NUMBER_LANGUAGES}
    assert all(split_of(t, 0) == "test" for _, t in test)


def test_test_split_can_hold_longer_numbers():
    train = generate_numbers("train", 400, seed=1, max_len=3, test_max_len=6)
    test = generate_numbers("test", 400, seed=1, max_len=3, test_max_len=6)
    assert max(len(t) for _, t in train) == 3
    assert max(len(t) for _, t in test) == 6
    assert min(len(t) for _, t in test) == 1


def test_deterministic_and_language_subset():
    a = generate_numbers("validation", 200, seed=5, languages=("de",))
    assert a == generate_numbers("validation", 200, seed=5, languages=("de",))
    assert all(number_words(int(t), "de") == s for s, t in a)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Expected lang to be one of .* Received: lang='xx'"):
        number_words(3, "xx")
    with pytest.raises(ValueError, match="Expected languages from .* Received: languages=\\('it',\\)"):
        generate_numbers("train", 3, languages=("it",))
    with pytest.raises(ValueError, match="Received: min_len=3, max_len=2"):
        generate_numbers("train", 3, min_len=3, max_len=2)
    with pytest.raises(ValueError, match="Could not draw 50 distinct pairs"):
        generate_numbers("train", 50, max_len=1, languages=("en",))
