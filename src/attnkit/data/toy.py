"""Toy sequence tasks: ``copy``, ``reverse`` and ``sort`` strings over a small alphabet.

Sources are strings of symbols with no separator (tokenise them character by character)::

    copy     "cabd" -> "cabd"
    reverse  "cabd" -> "dbac"
    sort     "cabd" -> "abcd"

Lengths are drawn uniformly in ``[min_len, max_len]``; the test split may hold longer strings
(``test_max_len``), which is how the "score against input length" experiment (Bahdanau et al. 2015,
Fig. 2) is run on a toy task. Splits are by the string itself (:mod:`attnkit.data.splits`): a test source
never appears in training.

Example:
    >>> toy_target("reverse", "cabd")
    'dbac'
    >>> pairs = generate_toy("sort", "train", size=2, seed=0, max_len=5)
    >>> all(tgt == "".join(sorted(src)) for src, tgt in pairs)
    True
"""

from __future__ import annotations

import random
from collections.abc import Callable

from attnkit.data.splits import check_split, sample_split

TOY_TASKS: tuple[str, ...] = ("copy", "reverse", "sort")
DEFAULT_ALPHABET: str = "abcdefghijklmnopqrst"


def toy_target(task: str, source: str) -> str:
    """The answer of ``task`` for ``source``: itself, reversed, or its symbols sorted."""
    if task == "copy":
        return source
    if task == "reverse":
        return source[::-1]
    if task == "sort":
        return "".join(sorted(source))
    raise ValueError(f"Expected task to be one of {TOY_TASKS}. Received: task={task!r}")


def generate_toy(
    task: str,
    split: str = "train",
    size: int = 10_000,
    seed: int = 0,
    *,
    alphabet: str = DEFAULT_ALPHABET,
    min_len: int = 1,
    max_len: int = 20,
    test_max_len: int | None = None,
) -> list[tuple[str, str]]:
    """Sample ``size`` distinct ``(source, target)`` pairs of a toy task.

    Args:
        task: ``"copy"``, ``"reverse"`` or ``"sort"``.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        size: number of pairs (distinct sources).
        seed: split and sampling seed.
        alphabet: the symbols (distinct characters, no whitespace).
        min_len, max_len: source length range.
        test_max_len: source length upper bound for the test split (default ``max_len``).

    Returns:
        list of ``(source, target)`` string pairs.
    """
    toy_target(task, "")  # validates the task name
    check_split(split)
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"Expected size to be a non-negative int. Received: size={size!r}")
    if not alphabet or len(set(alphabet)) != len(alphabet) or any(c.isspace() for c in alphabet):
        raise ValueError(
            f"Expected alphabet of distinct non-space characters. Received: alphabet={alphabet!r}"
        )
    top = test_max_len if (split == "test" and test_max_len is not None) else max_len
    if not 1 <= min_len <= max_len or top < min_len:
        raise ValueError(
            "Expected 1 <= min_len <= max_len (and <= test_max_len). "
            f"Received: min_len={min_len}, max_len={max_len}, test_max_len={test_max_len}"
        )

    def draw(rng: random.Random) -> tuple[str, Callable[[], tuple[str, str]]]:
        n = rng.randint(min_len, top)
        src = "".join(alphabet[rng.randrange(len(alphabet))] for _ in range(n))
        return src, lambda: (src, toy_target(task, src))

    what = f"strings for split {split!r} with lengths {min_len}..{top} over {len(alphabet)} symbols"
    return sample_split(split, size, seed, draw, what)
