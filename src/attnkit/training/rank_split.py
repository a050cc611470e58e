"""Which rows of each batch a rank trains on, so N processes take exactly one process's batches.

Every rank reads the same seeded stream of **global** batches (``global_batch_size``: the per-process
batch size times the number of processes) and keeps its own rows of each one: rank r of W takes a
contiguous block of ``n // W`` or ``n // W + 1`` rows (the first ``n % W`` ranks one more), so a batch of n
rows is split whatever n is; the last, smaller batch of an epoch too. The trainer weights each rank's loss
by its number of items (``attnkit.training.numerics.rank_weight``), so the gradient DDP averages is the one
one process computes on the whole batch.

A rank left with no row (a batch of fewer rows than processes) still has to run forward and backward, or
DDP's gradient all-reduce would wait for it: it runs on a stand-in, the batch's first row, whose loss
counts with weight 0 (``RankPart.real`` is False) and whose stats are not logged.

A batch is split by its tensors: every tensor whose first dimension is the batch's row count (the first
tensor found fixes it) is sliced, inside dataclasses, dicts, lists and tuples; anything else (positions,
counts) is kept as it is.

Example:
    >>> import torch
    >>> batch = (torch.arange(10).view(5, 2), torch.arange(5))        # (ids (5, 2), labels (5,))
    >>> [part.batch[1].tolist() for part in (split_for_rank(batch, r, 2) for r in range(2))]
    [[0, 1, 2], [3, 4]]
    >>> lone = split_for_rank((torch.zeros(1, 2), torch.ones(1)), rank=1, world_size=2)
    >>> lone.real, lone.batch[1].tolist()                               # a stand-in row, weight 0
    (False, [1.0])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from attnkit.training.runtime import Runtime


@dataclass(frozen=True)
class RankPart:
    """This rank's share of one global batch.

    Attributes:
        batch: the rank's rows (of the batch's own type), or a stand-in row when it has none.
        real: False for a stand-in: its loss counts with weight 0 and its stats are not logged.
    """

    batch: Any
    real: bool = True


def batch_rows(batch: Any) -> int | None:
    """The row count of a batch: the first dimension of its first tensor (depth first), None without one.

    Example:
        >>> batch_rows({"ids": torch.zeros(3, 7), "labels": torch.zeros(3)}), batch_rows([1, 2])
        (3, None)
    """
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() >= 1 else None
    for value in _children(batch):
        rows = batch_rows(value)
        if rows is not None:
            return rows
    return None


def _children(batch: Any) -> list[Any]:
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return [getattr(batch, f.name) for f in dataclasses.fields(batch) if f.init]
    if isinstance(batch, dict):
        return list(batch.values())
    if isinstance(batch, (list, tuple)):
        return list(batch)
    return []


def take_rows(batch: Any, start: int, stop: int, rows: int) -> Any:
    """``batch`` with rows ``start:stop`` of every tensor whose first dimension is ``rows``; same type.

    Example:
        >>> take_rows({"x": torch.arange(6).view(3, 2), "step": 4}, 1, 3, rows=3)
        {'x': tensor([[2, 3],
                [4, 5]]), 'step': 4}
    """
    if isinstance(batch, torch.Tensor):
        return batch[start:stop] if batch.dim() >= 1 and batch.shape[0] == rows else batch
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: take_rows(getattr(batch, f.name), start, stop, rows)
                                             for f in dataclasses.fields(batch) if f.init})
    if isinstance(batch, dict):
        return type(batch)({k: take_rows(v, start, stop, rows) for k, v in batch.items()})
    if isinstance(batch, (list, tuple)):
        parts = [take_rows(v, start, stop, rows) for v in batch]
        return type(batch)(*parts) if hasattr(batch, "_fields") else type(batch)(parts)
    return batch


def rank_rows(rows: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s rows in a batch of ``rows``: contiguous blocks, the first
    ``rows % world_size`` ranks one row more; ``start == stop`` when the rank has none.

    Example:
        >>> [rank_rows(5, r, 3) for r in range(3)], rank_rows(1, 1, 2)
        ([(0, 2), (2, 4), (4, 5)], (1, 1))
    """
    share, extra = divmod(rows, world_size)
    start = rank * share + min(rank, extra)
    return start, start + share + (1 if rank < extra else 0)


def split_for_rank(batch: Any, rank: int, world_size: int) -> RankPart:
    """Rank ``rank``'s rows of ``batch`` (see the module docstring); the whole batch when ``world_size == 1``.

    Raises:
        ValueError: a batch with no tensor to split, under several processes.
    """
    if world_size == 1:
        return RankPart(batch)
    rows = batch_rows(batch)
    if rows is None or rows < 1:
        raise ValueError(f"Expected a batch holding tensors whose first dimension is the batch (its rows), to split "
                         f"them over {world_size} processes. Received: {type(batch).__name__} with no such tensor")
    start, stop = rank_rows(rows, rank, world_size)
    if start == stop:  # fewer rows than processes: a stand-in row keeps DDP in step, with weight 0
        return RankPart(take_rows(batch, 0, 1, rows), real=False)
    return RankPart(take_rows(batch, start, stop, rows))


class RankShard:
    """The stream of this rank's ``RankPart`` of every batch of ``source``; resumable like the source.

    Every rank builds the same seeded source of global batches and reads all of it, so its position (and
    ``state_dict``) is the same on every rank: rank 0's checkpoint restores each of them, and a run
    resumes under any number of processes that keeps the global batch. With ``world_size == 1`` each batch
    is passed through whole.

    Args:
        source: an iterable of batches with ``state_dict()`` and ``load_state_dict(state)``.
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: number of processes.

    Example:
        >>> class Stream(list):                     # any resumable iterable of batches
        ...     def state_dict(self): return {}
        ...     def load_state_dict(self, state): pass
        >>> batches = Stream([torch.arange(4), torch.arange(4, 7)])
        >>> [p.batch.tolist() for p in RankShard(batches, rank=1, world_size=2)]   # rank 1 of 2
        [[2, 3], [6]]
    """

    def __init__(self, source: Iterable[Any], rank: int, world_size: int) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"Expected 0 <= rank < world_size. Received: rank={rank}, world_size={world_size}")
        self.source = source
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[RankPart]:
        for batch in self.source:
            yield split_for_rank(batch, self.rank, self.world_size)

    def state_dict(self) -> Any:
        return self.source.state_dict()  # type: ignore[attr-defined]

    def load_state_dict(self, state: Any) -> None:
        self.source.load_state_dict(state)  # type: ignore[attr-defined]


def shard_for_rank(source: Any, rt: Runtime) -> RankShard:
    """This rank's parts of ``source``'s batches (``RankShard``; whole batches in one process).

    The source must be the whole stream of global batches (same seed on every rank, ``num_shards == 1``
    if it has that attribute): rank 0's saved position then restores every rank.

    Raises:
        ValueError: a source that is already sharded while training with several processes.
    """
    n = getattr(source, "num_shards", 1)
    if rt.distributed and n != 1:
        raise ValueError(f"train_data is already sharded (num_shards={n}); give the trainer the whole stream "
                         f"(num_shards=1): each of the {rt.world_size} ranks takes its rows of every batch, so "
                         f"rank 0's checkpoint restores every rank")
    return RankShard(source, rt.rank, rt.world_size)
