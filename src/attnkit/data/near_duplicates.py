"""Near-duplicate texts kept on one side of a split: word-set Jaccard, groups and a grouped stratified split.

A text's *word set* is the set of its lower-cased runs of letters and digits (``\\w+``). Two texts are near
duplicates when the Jaccard similarity of their word sets, ``|A ∩ B| / |A ∪ B|``, is at least a threshold
(:data:`NEAR_DUPLICATE_JACCARD`, 0.9: the BBC News corpus holds re-published articles that differ by a
word or a sentence, e.g. the same story with an updated figure, at 0.986 and above). Near duplicates are
joined into groups (connected components of the near-duplicate pairs, so a chain of near duplicates is one
group) and :func:`grouped_split` sends every group wholly to train, validation or test: no test text then
has a near-duplicate in training.

The Jaccard of all pairs is computed exactly, not estimated (no MinHash): a sparse ``(N, V)`` 0/1 matrix of
word sets gives every intersection as one sparse product, row block by row block (``N = 2,127`` BBC
articles take about a second).

Example:
    >>> texts = ["the cup final was won by united", "the cup final was won by united today", "vote on the budget"]
    >>> near_duplicate_pairs(texts, threshold=0.8)
    [(0, 1, 0.875)]
    >>> near_duplicate_groups(texts, threshold=0.8)
    [0, 0, 2]
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence

import numpy as np

from attnkit.data.news import LabeledTexts

NEAR_DUPLICATE_JACCARD = 0.9
"""The default threshold: texts whose word sets have a Jaccard similarity >= 0.9 are near duplicates."""
_WORD = re.compile(r"\w+")
_BLOCK_CELLS = 4_000_000  # Jaccard values computed at once (rows of a block x all columns)


def word_set(text: str) -> frozenset[str]:
    """The lower-cased words (runs of letters and digits) of ``text``.

    Example:
        >>> sorted(word_set("The cup, the CUP final!"))
        ['cup', 'final', 'the']
    """
    return frozenset(_WORD.findall(text.lower()))


def _word_matrices(a: Sequence[str], b: Sequence[str]) -> tuple[object, object]:
    """0/1 sparse matrices ``(len(a), V)`` and ``(len(b), V)`` of the word sets over one vocabulary."""
    from scipy.sparse import csr_matrix

    vocab: dict[str, int] = {}

    def matrix(texts: Sequence[str]) -> object:
        rows, cols = [], []
        for i, text in enumerate(texts):
            ids = [vocab.setdefault(w, len(vocab)) for w in word_set(text)]
            rows += [i] * len(ids)
            cols += ids
        return rows, cols, len(texts)

    built = [matrix(a), matrix(b)]
    return tuple(csr_matrix((np.ones(len(r), dtype=np.int64), (r, c)), shape=(n, max(1, len(vocab))))
                 for r, c, n in built)


def jaccard_blocks(a: Sequence[str], b: Sequence[str]) -> Iterator[tuple[int, np.ndarray]]:
    """Word-set Jaccard of every text of ``a`` with every text of ``b``, as ``(first row, block)`` pairs:
    ``block[i, j]`` (float64, ``(rows, len(b))``) is the Jaccard of ``a[first + i]`` and ``b[j]``. Two texts
    without words have Jaccard 1, one without words and one with words 0.

    Example:
        >>> [(start, block.round(3).tolist()) for start, block in jaccard_blocks(["a b", "c"], ["a b c", "c"])]
        [(0, [[0.667, 0.0], [0.333, 1.0]])]
    """
    xa, xb = _word_matrices(a, b)
    size_a, size_b = np.asarray(xa.sum(axis=1)).ravel(), np.asarray(xb.sum(axis=1)).ravel()  # (Na,), (Nb,)
    rows = max(1, _BLOCK_CELLS // max(1, len(b)))
    xbt = xb.T.tocsc()
    for start in range(0, len(a), rows):
        inter = np.asarray((xa[start:start + rows] @ xbt).todense(), dtype=np.float64)  # (rows, Nb)
        union = size_a[start:start + rows, None] + size_b[None, :] - inter  # (rows, Nb)
        with np.errstate(invalid="ignore", divide="ignore"):
            yield start, np.where(union > 0, inter / np.where(union > 0, union, 1.0), 1.0)


def near_duplicate_pairs(texts: Sequence[str], threshold: float = NEAR_DUPLICATE_JACCARD) -> list[tuple[int, int, float]]:
    """Every pair ``(i, j, jaccard)`` with ``i < j`` whose word sets have Jaccard >= ``threshold``, sorted.

    Args:
        texts: the texts.
        threshold: in ``(0, 1]``.

    Example:
        >>> near_duplicate_pairs(["a b c d", "a b c d e", "x"], threshold=0.8)
        [(0, 1, 0.8)]
    """
    check_threshold(threshold)
    pairs = []
    for start, block in jaccard_blocks(texts, texts):
        i, j = np.nonzero(block >= threshold)
        i = i + start
        keep = i < j
        pairs += [(int(p), int(q), float(block[p - start, q])) for p, q in zip(i[keep], j[keep], strict=True)]
    return sorted(pairs)


def check_threshold(threshold: float) -> float:
    """``threshold`` if it is in ``(0, 1]``, else ``ValueError``."""
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"Expected a Jaccard threshold in (0, 1]. Received: {threshold}")
    return float(threshold)


def near_duplicate_groups(texts: Sequence[str], threshold: float = NEAR_DUPLICATE_JACCARD) -> list[int]:
    """The group of each text: texts joined by chains of near-duplicate pairs share a group, whose id is the
    index of its first text (union-find over :func:`near_duplicate_pairs`).

    Example:
        >>> near_duplicate_groups(["a b c d", "x y", "a b c d e", "x y"], threshold=0.8)
        [0, 1, 0, 1]
    """
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in near_duplicate_pairs(texts, threshold):
        ri, rj = root(i), root(j)
        parent[max(ri, rj)] = min(ri, rj)  # the smaller index is the root: the group's id is its first text
    return [root(i) for i in range(len(texts))]


def grouped_split(data: LabeledTexts, seed: int = 0, valid_fraction: float = 0.1, test_fraction: float = 0.2,
                  threshold: float = NEAR_DUPLICATE_JACCARD) -> dict[str, LabeledTexts]:
    """Train / validation / test with every near-duplicate group wholly on one side, stratified by class.

    Each group counts for the most common label of its texts (the first in sorted order on a tie). Per class
    (sorted), the class's groups are shuffled by ``random.Random(seed)`` and dealt in that order: to test while
    it holds fewer than ``floor(n * test_fraction)`` of the class's ``n`` texts, then to validation while it
    holds fewer than ``floor(n * valid_fraction)``, then to train; the last group always goes to train. A
    group of ``k`` texts can overshoot a share by up to ``k - 1`` texts. Without near duplicates this is exactly
    :func:`attnkit.data.news.stratified_split` with the same seed.

    Args:
        data: the texts.
        seed: the split seed.
        valid_fraction, test_fraction: shares in ``[0, 1)`` with a sum below 1.
        threshold: the near-duplicate Jaccard threshold, in ``(0, 1]``.

    Returns:
        ``{"train": ..., "validation": ..., "test": ...}``, each in the data's original order.

    Example:
        >>> d = LabeledTexts(["cup final won", "cup final won !", "goal", "vote", "poll", "law"],
        ...                  ["s", "s", "s", "p", "p", "p"], "mem")
        >>> s = grouped_split(d, seed=0, valid_fraction=0.0, test_fraction=0.34)
        >>> ("cup final won" in s["test"].texts) == ("cup final won !" in s["test"].texts)
        True
    """
    if not (0 <= valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ValueError("Expected valid_fraction and test_fraction in [0, 1) with a sum below 1. "
                         f"Received: valid_fraction={valid_fraction}, test_fraction={test_fraction}")
    members: dict[int, list[int]] = {}
    for i, g in enumerate(near_duplicate_groups(data.texts, threshold)):
        members.setdefault(g, []).append(i)
    by_class: dict[str, list[int]] = {}
    for g, idx in members.items():  # groups in the order of their first text
        counts = Counter(data.labels[i] for i in idx)
        by_class.setdefault(min(counts, key=lambda y: (-counts[y], y)), []).append(g)
    rng = random.Random(seed)
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for label in sorted(by_class):
        groups = by_class[label]
        rng.shuffle(groups)
        n = sum(len(members[g]) for g in groups)
        wanted = {"test": int(n * test_fraction), "validation": int(n * valid_fraction)}
        taken = {"test": 0, "validation": 0}
        for g in groups[:-1]:  # the last group stays in train: every class is trained on
            part = next((p for p in ("test", "validation") if taken[p] < wanted[p]), "train")
            parts[part] += members[g]
            taken[part] = taken.get(part, 0) + len(members[g])
        parts["train"] += members[groups[-1]]
    return {name: data.subset(sorted(idx)) for name, idx in parts.items()}


def max_jaccard(a: Sequence[str], b: Sequence[str]) -> list[float]:
    """For each text of ``a``, the highest word-set Jaccard with any text of ``b`` (0.0 when ``b`` is empty).

    Example:
        >>> [round(x, 3) for x in max_jaccard(["a b", "z"], ["a b c", "c"])]
        [0.667, 0.0]
    """
    if not len(b):
        return [0.0] * len(a)
    return [float(x) for _, block in jaccard_blocks(a, b) for x in block.max(axis=1)]


__all__ = ["NEAR_DUPLICATE_JACCARD", "check_threshold", "grouped_split", "jaccard_blocks", "max_jaccard",
           "near_duplicate_groups", "near_duplicate_pairs", "word_set"]
