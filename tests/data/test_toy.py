"""Toy tasks: copy, reverse, sort with variable lengths."""

import pytest

from attnkit.data.toy import TOY_TASKS, generate_toy, toy_target


def test_targets_against_plain_python():
    src = "tacbba"
    assert toy_target("copy", src) == "tacbba"
    assert toy_target("reverse", src) == "abbcat"
    assert toy_target("sort", src) == "aabbct"


@pytest.mark.parametrize("task", TOY_TASKS)
def test_pairs_and_lengths(task):
    pairs = generate_toy(task, "train", 500, seed=0, min_len=3, max_len=9, alphabet="abc123")
    ref = {
        "copy": lambda s: s,
        "reverse": lambda s: "".join(reversed(s)),
        "sort": lambda s: "".join(sorted(s)),
    }[task]
    assert len(pairs) == 500 and len({s for s, _ in pairs}) == 500
    for s, t in pairs:
        assert 3 <= len(s) <= 9 and set(s) <= set("abc123") and t == ref(s)
    assert {len(s) for s, _ in pairs} == set(range(3, 10))


def test_disjoint_splits_and_longer_test():
    train = generate_toy("reverse", "train", 2000, seed=0, max_len=6, test_max_len=12)
    test = generate_toy("reverse", "test", 300, seed=0, max_len=6, test_max_len=12)
    assert {s for s, _ in train}.isdisjoint({s for s, _ in test})
    assert max(len(s) for s, _ in train) == 6 and max(len(s) for s, _ in test) == 12


def test_deterministic_by_seed():
    assert generate_toy("sort", "train", 100, seed=2) == generate_toy("sort", "train", 100, seed=2)
    assert generate_toy("sort", "train", 100, seed=2) != generate_toy("sort", "train", 100, seed=3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Expected task to be one of .* Received: task='shuffle'"):
        generate_toy("shuffle", "train", 3)
    with pytest.raises(
        ValueError, match="Expected alphabet of distinct non-space characters. Received: alphabet='aab'"
    ):
        generate_toy("copy", "train", 3, alphabet="aab")
    with pytest.raises(ValueError, match="Could not draw 100 distinct strings"):
        generate_toy("copy", "train", 100, alphabet="ab", max_len=2)
