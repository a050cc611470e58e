"""Deterministic train/validation/test assignment shared by the built-in tasks.

Every built-in task splits by its *underlying item* (a calendar date, an integer, a toy string), never
by the rendered source string, so an item that lands in the test split never appears in training in any
surface form. The assignment is a pure function of ``(seed, key)``: no global RNG, no state.

Example:
    >>> split_of("2031-03-04", seed=0) in SPLITS
    True
    >>> split_of("2031-03-04", seed=0) == split_of("2031-03-04", seed=0)
    True
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Literal

Split = Literal["train", "validation", "test"]
SPLITS: tuple[str, ...] = ("train", "validation", "test")
# Share of underlying items that go to each split (train gets the rest).
SPLIT_FRACTIONS: dict[str, float] = {"validation": 0.1, "test": 0.1}


def check_split(split: str) -> str:
    """Return ``split`` if it is one of :data:`SPLITS`, else raise a ``ValueError`` naming it."""
    if split not in SPLITS:
        raise ValueError(f"Expected split to be one of {SPLITS}. Received: split={split!r}")
    return split


def unit_hash(key: str, seed: int) -> float:
    """Map ``(seed, key)`` to a float in ``[0, 1)`` with a stable hash (BLAKE2b, not Python's ``hash``).

    The value is the same in every process and Python version, which keeps splits reproducible.
    """
    digest = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def split_of(key: str, seed: int, fractions: dict[str, float] | None = None) -> str:
    """The split (``"train"``, ``"validation"`` or ``"test"``) an underlying item belongs to.

    Args:
        key: a canonical name of the item (``"2031-03-04"``, ``"1234"``, ``"abc"``).
        seed: split seed; a different seed gives an independent partition.
        fractions: shares of ``"validation"`` and ``"test"`` (default :data:`SPLIT_FRACTIONS`).
    """
    fr = SPLIT_FRACTIONS if fractions is None else fractions
    u = unit_hash(key, seed)
    test = fr.get("test", 0.0)
    if u < test:
        return "test"
    if u < test + fr.get("validation", 0.0):
        return "validation"
    return "train"


def split_seed(seed: int, split: str) -> int:
    """A sampling seed for ``split`` derived from ``seed`` (different splits draw independently)."""
    return seed * 1_000_003 + SPLITS.index(check_split(split)) + 17


def sample_split(
    split: str,
    size: int,
    seed: int,
    draw: Callable[[random.Random], tuple[str, Callable[[], tuple[str, str]]]],
    what: str,
) -> list[tuple[str, str]]:
    """``size`` pairs with distinct sources, drawn until enough items of ``split`` are found.

    ``draw(rng)`` draws one item and returns its key (for :func:`split_of`) and a function making its
    ``(source, target)`` pair, called only for items of ``split``. The random stream is
    ``random.Random(split_seed(seed, split))``, so the result is deterministic in all arguments. After
    ``50 * size + 1000`` draws a ``ValueError`` says ``"Could not draw {size} distinct {what}; ..."``.

    Example:
        >>> def draw(rng):
        ...     n = rng.randrange(1000)
        ...     return str(n), lambda: (str(n), str(n)[::-1])
        >>> pairs = sample_split("train", 5, 0, draw, "numbers")
        >>> len(pairs), len({source for source, _ in pairs})
        (5, 5)
    """
    rng = random.Random(split_seed(seed, split))
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    attempts = 0
    while len(pairs) < size:
        attempts += 1
        if attempts > 50 * size + 1000:
            raise ValueError(f"Could not draw {size} distinct {what}; ask for fewer. Received: size={size}")
        key, make_pair = draw(rng)
        if split_of(key, seed) != split:
            continue
        src, tgt = make_pair()
        if src not in seen:
            seen.add(src)
            pairs.append((src, tgt))
    return pairs
