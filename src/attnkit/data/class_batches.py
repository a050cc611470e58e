"""Batches of token ids with one class label each, for the classifiers (a resumable stream).

Shape legend: B batch, T longest text of the batch (after truncation).

Example:
    >>> s = LabelBatchStream([[5, 6, 7], [8], [9, 9]], [0, 1, 0], batch_size=2, seed=0)
    >>> ids, labels = next(s)
    >>> ids.shape[0], labels.dtype, s.batches_per_epoch
    (2, torch.int64, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from attnkit.data.batches import epoch_order
from attnkit.data.stream import ResumableStream


def pad_ids(rows: Sequence[Sequence[int]], pad_id: int = 0) -> Tensor:
    """Right-pad lists of ids to one ``(B, T)`` long tensor, ``T`` the longest row (at least 1).

    Example:
        >>> pad_ids([[4, 5], [6]])
        tensor([[4, 5],
                [6, 0]])
    """
    width = max(1, max((len(r) for r in rows), default=0))
    out = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(list(r), dtype=torch.long)
    return out


class LabelBatchStream(ResumableStream):
    """Endless ``(ids (B, T), labels (B,))`` batches over epochs, in a seeded order; resumable by position.

    Args:
        ids: token ids of each example (already truncated).
        labels: class index of each example.
        batch_size: examples per batch (the last batch of an epoch may be smaller).
        seed: order of the examples in each epoch (see :func:`attnkit.data.batches.epoch_order`).
        pad_id: the padding id.

    Example:
        >>> s = LabelBatchStream([[5], [6], [7]], [0, 1, 2], batch_size=2, seed=3)
        >>> _ = next(s); state = s.state_dict()
        >>> t = LabelBatchStream([[5], [6], [7]], [0, 1, 2], batch_size=2, seed=3); t.load_state_dict(state)
        >>> torch.equal(next(s)[1], next(t)[1])
        True
    """

    resume_keys = ("seed", "num_examples", "batch_size")
    resume_hint = " (was the data changed?)"

    def __init__(self, ids: Sequence[Sequence[int]], labels: Sequence[int], batch_size: int, seed: int = 0,
                 pad_id: int = 0) -> None:
        if len(ids) != len(labels) or not ids:
            raise ValueError(f"Expected one label per example and at least one example. "
                             f"Received: {len(ids)} examples, {len(labels)} labels")
        self.ids, self.labels = list(ids), list(labels)
        self.batch_size, self.seed, self.pad_id = batch_size, seed, pad_id
        self.num_examples = len(self.ids)

    def _plan_epoch(self, epoch: int) -> list[list[int]]:
        return epoch_order(self.num_examples, self.batch_size, epoch=epoch, seed=self.seed)

    def _make_batch(self, plan: list[int], epoch: int, index: int) -> tuple[Tensor, Tensor]:
        ids = pad_ids([self.ids[i] for i in plan], self.pad_id)  # (B, T)
        return ids, torch.tensor([self.labels[i] for i in plan], dtype=torch.long)  # (B,)
