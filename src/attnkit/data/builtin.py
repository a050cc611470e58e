"""One entry point for every data set: :func:`load_pairs` (built-in task name or a TSV path).

Built-in tasks (:data:`BUILTIN_TASKS`) are generated offline, deterministically by ``seed``; a path is
read with :func:`attnkit.data.tsv.read_tsv` and split by a seeded shuffle. Every split of a built-in
task is drawn from disjoint underlying items (dates, numbers, sentences, strings), so the test split measures
generalisation, never memory.

Example:
    >>> train = load_pairs("reverse", "train", size=5, seed=0, max_len=8)
    >>> test = load_pairs("reverse", "test", size=5, seed=0, max_len=8, test_max_len=12)
    >>> len(train), train[0][1] == train[0][0][::-1]
    (5, True)
    >>> set(train).isdisjoint(test)
    True
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import Any

from attnkit.data.dates import generate_dates
from attnkit.data.numbers import generate_numbers
from attnkit.data.phrases import generate_phrases
from attnkit.data.splits import SPLITS, check_split
from attnkit.data.toy import TOY_TASKS, generate_toy
from attnkit.data.tsv import read_tsv
from attnkit.errors import InputError

BUILTIN_TASKS: tuple[str, ...] = ("dates", "numbers", "phrases", "copy", "reverse", "sort")
# Pairs per split when ``size`` is not given.
DEFAULT_SIZES: dict[str, int] = {"train": 20_000, "validation": 1_000, "test": 1_000}
# Share of a user TSV file given to validation and test.
TSV_FRACTIONS: dict[str, float] = {"validation": 0.05, "test": 0.05}


def _split_file_pairs(
    pairs: list[tuple[str, str]], split: str, seed: int, fractions: dict[str, float]
) -> list[tuple[str, str]]:
    """Shuffle with ``seed`` and cut into test / validation / train (in that order)."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n = len(order)
    n_test = int(round(n * fractions.get("test", 0.0)))
    n_val = int(round(n * fractions.get("validation", 0.0)))
    if n >= 3:  # every split gets at least one pair when the file allows it
        n_test, n_val = max(n_test, 1), max(n_val, 1)
    cut = {
        "test": order[:n_test],
        "validation": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    return [pairs[i] for i in sorted(cut[split])]


def load_pairs(
    name_or_path: str | os.PathLike,
    split: str = "train",
    *,
    size: int | None = None,
    seed: int = 0,
    max_len: int | None = None,
    test_max_len: int | None = None,
    min_len: int | None = None,
    on_error: str = "raise",
    fractions: dict[str, float] | None = None,
    **options: Any,
) -> list[tuple[str, str]]:
    """``(source, target)`` string pairs of one split of a built-in task or a user TSV file.

    Args:
        name_or_path: one of :data:`BUILTIN_TASKS`, or a path to a ``source<TAB>target`` file (a task
            name wins over a file of the same name; write ``./dates`` for such a file).
        split: ``"train"``, ``"validation"``, ``"test"`` (or ``"all"`` for a whole TSV file).
        size: number of pairs; default :data:`DEFAULT_SIZES` for built-in tasks, the whole split for a
            file (a smaller ``size`` takes the first ``size`` pairs of the split).
        seed: split and sampling seed (same seed, same data, in every process).
        max_len, min_len: length bounds: digits for ``numbers``, characters for toy tasks (ignored by
            ``dates``, ``phrases`` and files).
        test_max_len: a larger upper bound for the test split only (numbers and toy tasks).
        on_error: for files: ``"raise"`` on the first malformed line, or ``"skip"`` them with a warning
            naming their line numbers.
        fractions: for files: ``{"validation": f, "test": f}`` (default :data:`TSV_FRACTIONS`).
        **options: passed to the task's generator (``languages=`` for numbers, ``alphabet=`` for toy
            tasks, ``formats=``/``start=``/``end=``/``lowercase=`` for dates).

    Returns:
        list of ``(source, target)`` pairs.

    Raises:
        InputError: an unknown task name that is not an existing file, or a bad file.
        ValueError: a bad split, size or length.
    """
    if not (split == "all" and not _is_builtin(name_or_path)):
        check_split(split)
    if size is not None and (not isinstance(size, int) or size < 0):
        raise ValueError(f"Expected size to be a non-negative int or None. Received: size={size!r}")
    if _is_builtin(name_or_path):
        name = str(name_or_path)
        n = DEFAULT_SIZES[split] if size is None else size
        lengths: dict[str, Any] = {}
        if max_len is not None:
            lengths["max_len"] = max_len
        if min_len is not None:
            lengths["min_len"] = min_len
        if test_max_len is not None:
            lengths["test_max_len"] = test_max_len
        if name == "dates":
            return generate_dates(split, n, seed, **options)
        if name == "numbers":
            return generate_numbers(split, n, seed, **lengths, **options)
        if name == "phrases":
            return generate_phrases(split, n, seed, **options)
        return generate_toy(name, split, n, seed, **lengths, **options)
    path = Path(name_or_path)
    if not path.exists():
        raise InputError(
            f"Unknown data {str(name_or_path)!r}: expected one of {BUILTIN_TASKS} or an existing TSV file"
        )
    if options:
        raise ValueError(f"Options {sorted(options)} apply to built-in tasks only, not to file {str(path)!r}")
    data = read_tsv(path, on_error=on_error)
    if data.problems:
        warnings.warn(f"{path}: {data.describe_problems()}", stacklevel=2)
    pairs = (
        data.pairs
        if split == "all"
        else _split_file_pairs(data.pairs, split, seed, TSV_FRACTIONS if fractions is None else fractions)
    )
    return pairs if size is None else pairs[:size]


def tokenizer_options(name_or_path: str | os.PathLike, side: str = "source") -> dict[str, Any]:
    """Suggested :meth:`Tokenizer.train` keyword arguments for the sources (or targets) of a data set.

    Built-in tasks are character-level, except ``phrases``, word-level on both sides (its gold alignments
    are over words); ``dates`` and ``numbers`` sources are lower-cased text, so their source tokenizer
    lower-cases too and "4. März 2031" typed by a user is read like "4. märz 2031". Targets of the other
    built-in tasks are character-level, case kept. A file gets ``{"scheme": "word"}``.

    Example:
        >>> tokenizer_options("dates"), tokenizer_options("dates", side="target")
        ({'scheme': 'char', 'lowercase': True}, {'scheme': 'char'})
        >>> tokenizer_options("phrases", side="target")
        {'scheme': 'word'}
    """
    if side not in ("source", "target"):
        raise ValueError(f"Expected side to be 'source' or 'target'. Received: side={side!r}")
    if name_or_path == "phrases":
        return {"scheme": "word"}
    if _is_builtin(name_or_path):
        if name_or_path in ("dates", "numbers") and side == "source":
            return {"scheme": "char", "lowercase": True}
        return {"scheme": "char"}
    return {"scheme": "word"}


def _is_builtin(name_or_path: str | os.PathLike) -> bool:
    return isinstance(name_or_path, str) and name_or_path in BUILTIN_TASKS


__all__ = [
    "BUILTIN_TASKS",
    "DEFAULT_SIZES",
    "SPLITS",
    "TOY_TASKS",
    "TSV_FRACTIONS",
    "load_pairs",
    "tokenizer_options",
]
