"""Multi-query associative recall: the structure of every sequence, re-read token by token in plain Python (the
reference), with pairwise-different sizes (batch 3, length 46, 5 pairs, 7 keys, 9 values)."""

from __future__ import annotations

import pytest
import torch

from attnkit.data.recall import check_recall, min_distance, recall_batch
from attnkit.errors import InputError

B, T, P, K, V = 3, 46, 5, 7, 9


def _batch(seed: int = 0):
    return recall_batch(B, T, P, K, V, torch.Generator().manual_seed(seed))


def test_shapes_and_token_ranges():
    ids, scored = _batch()
    assert ids.shape == (B, T) and ids.dtype == torch.int64
    assert scored.shape == (B, T - 1) and scored.dtype == torch.bool
    assert int(ids.min()) >= 0 and int(ids.max()) <= K + V  # K + V: the filler
    assert scored.sum(dim=1).tolist() == [P] * B


def test_keys_and_values_are_distinct_within_a_sequence_and_from_their_own_ranges():
    ids, _ = _batch(1)
    for row in ids.tolist():
        keys, values = row[0:2 * P:2], row[1:2 * P:2]
        assert len(set(keys)) == P and len(set(values)) == P
        assert all(0 <= k < K for k in keys) and all(K <= v < K + V for v in values)


def test_every_answer_is_the_value_bound_to_its_key_and_every_key_is_asked_once():
    ids, scored = _batch(2)
    for row, marks in zip(ids.tolist(), scored.tolist(), strict=True):
        bound = {row[2 * i]: row[2 * i + 1] for i in range(P)}
        asked = []
        for t, is_answer in enumerate(marks):
            if is_answer:  # ids[t] is the query, ids[t + 1] its answer
                assert row[t + 1] == bound[row[t]]
                asked.append(row[t])
                assert t >= T // 2 and t - (2 * P - 1) >= min_distance(T, P)
        assert sorted(asked) == sorted(bound)


def test_the_same_seed_gives_the_same_sequences_and_another_seed_others():
    a, b, c = _batch(5), _batch(5), _batch(6)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_queries_spread_over_the_second_half():
    _, scored = recall_batch(64, T, P, K, V, torch.Generator().manual_seed(0))
    used = scored.any(dim=0).nonzero().flatten().tolist()
    assert used == list(range(T // 2, T - 1, 2))  # every query slot drawn at least once in 64 sequences


@pytest.mark.parametrize(("length", "pairs", "keys", "values", "message"), [
    (40, 11, 20, 20, "4 * pairs <= length"),
    (40, 5, 4, 20, "pairs <= keys"),
    (40, 5, 20, 3, "pairs <= values"),
    (40, 0, 20, 20, "1 <= pairs"),
])
def test_sizes_that_do_not_fit_are_refused(length, pairs, keys, values, message):
    with pytest.raises(InputError, match="Received"):
        check_recall(length, pairs, keys, values)
    with pytest.raises(InputError) as err:
        recall_batch(2, length, pairs, keys, values, torch.Generator().manual_seed(0))
    assert message in str(err.value)


def test_every_other_position_holds_the_filler_token():
    ids, scored = _batch(3)
    for row, marks in zip(ids.tolist(), scored.tolist(), strict=True):
        asked = {t for t, m in enumerate(marks) if m} | {t + 1 for t, m in enumerate(marks) if m}
        rest = [row[t] for t in range(2 * P, T) if t not in asked]
        assert rest == [K + V] * (T - 2 * P - 2 * P)
