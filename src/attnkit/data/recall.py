"""Multi-query associative recall (MQAR; Arora et al. 2023, "Zoology", section 3): recall over long distances.

A sequence starts with ``P`` key-value pairs ``k_1 v_1 k_2 v_2 .. k_P v_P`` (keys distinct, values distinct),
and its second half asks every key once, in random order, each query followed by the value bound to it
earlier; the other positions hold one filler token. A language model is scored on the answers only: the
token after each query, predictable only by finding the query's key among the pairs and reading the value
beside it (chance ``1 / V``). Token ids: keys ``0 .. K - 1``, values ``K .. K + V - 1``, the filler ``K + V``
(vocabulary ``K + V + 1``)::

    position   0   1   2   3  ..  2P-1 | .. T/2 ..                       T - 1
    token      k3  v7  k0  v2 ..  v5   | _  k0  v2  _  _  k3  v7  _ .. _
                                            ^ query, answer ^

As in Zoology each key is queried once; the filler is Zoology's ``random_non_queries=False`` form (random
filler over a vocabulary this small would repeat keys between the queries, each a false match of a query);
unlike Zoology (which draws each query's gap from a power law favouring short gaps), queries sit at random even
offsets of the second half, so every query is at least :func:`min_distance` tokens after its pair: a
model whose attention reaches fewer tokens back (a sliding window of ``w`` keys over ``L`` layers reaches
``w * L``) cannot answer from the pair itself.

Example:
    >>> ids, scored = recall_batch(2, 32, pairs=4, keys=8, values=8, gen=torch.Generator().manual_seed(0))
    >>> ids.shape, scored.shape, int(scored.sum())       # 4 answers per sequence
    (torch.Size([2, 32]), torch.Size([2, 31]), 8)
    >>> pair_value = dict(zip(ids[0, 0:8:2].tolist(), ids[0, 1:8:2].tolist()))
    >>> t = scored[0].nonzero()[0, 0].item()             # target index t: ids[:, t + 1] is an answer
    >>> ids[0, t + 1].item() == pair_value[ids[0, t].item()]
    True
"""

from __future__ import annotations

import torch

from attnkit.errors import InputError


def min_distance(length: int, pairs: int) -> int:
    """The fewest positions between a query and the value of its pair (queries start at ``length // 2``,
    the last value sits at ``2 * pairs - 1``).

    Example:
        >>> min_distance(256, 8)
        113
    """
    return length // 2 - 2 * pairs + 1


def check_recall(length: int, pairs: int, keys: int, values: int) -> None:
    """``InputError`` unless ``pairs`` distinct keys and values fit the vocabularies and the pairs fit the
    first half of ``length`` and the queries its second half.

    Example:
        >>> check_recall(16, 5, 8, 8)
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: MQAR needs 4 * pairs <= length (pairs in the first half, a query and its answer per pair in the second). Received: pairs=5, length=16
    """
    if pairs < 1 or keys < pairs or values < pairs:
        raise InputError(f"MQAR needs 1 <= pairs <= keys and pairs <= values (keys and values distinct in a "
                         f"sequence). Received: pairs={pairs}, keys={keys}, values={values}")
    if 4 * pairs > length:
        raise InputError(f"MQAR needs 4 * pairs <= length (pairs in the first half, a query and its answer per "
                         f"pair in the second). Received: pairs={pairs}, length={length}")


def _distinct(batch: int, count: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``(B, count)`` distinct draws from ``0 .. size - 1`` per row, in random order."""
    return torch.rand(batch, size, generator=gen).argsort(dim=-1)[:, :count]


def recall_batch(batch: int, length: int, pairs: int, keys: int, values: int,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` MQAR sequences drawn from ``gen``: ids ``(B, T)`` and which next-token targets are answers.

    Args:
        batch: B sequences; length: T tokens each; pairs: P key-value pairs per sequence;
        keys: K key tokens (ids ``0 .. K - 1``); values: V value tokens (ids ``K .. K + V - 1``);
        gen: the random source (seed it for the same sequences).

    Returns:
        ``ids`` ``(B, T)`` int64 (the filler is ``K + V``) and ``scored`` ``(B, T - 1)`` bool: ``scored[b, t]`` is True when
        ``ids[b, t + 1]`` is an answer (``ids[b, t]`` its query), P per row.
    """
    check_recall(length, pairs, keys, values)
    start = length // 2
    slots = (length - start) // 2  # query positions start, start + 2, ..: each with its answer after it
    key = _distinct(batch, pairs, keys, gen)  # (B, P)
    value = keys + _distinct(batch, pairs, values, gen)  # (B, P)
    ids = torch.full((batch, length), keys + values, dtype=torch.int64)  # (B, T) filler
    ids[:, 0:2 * pairs:2], ids[:, 1:2 * pairs:2] = key, value
    query = start + 2 * _distinct(batch, pairs, slots, gen)  # (B, P) positions, pair i asked at query[:, i]
    ids.scatter_(1, query, key)
    ids.scatter_(1, query + 1, value)
    scored = torch.zeros(batch, length - 1, dtype=torch.bool).scatter_(1, query, True)  # (B, T - 1)
    return ids, scored


__all__ = ["check_recall", "min_distance", "recall_batch"]
