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
