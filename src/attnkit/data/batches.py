"""Pairs of token-id sequences -> padded tensor batches, in a seeded, resumable order.

Shape legend: ``B`` batch size, ``S`` longest source in the batch, ``T`` longest target in the batch
minus one (``tgt_in`` and ``tgt_out`` are the target shifted by one).

A target encoded as ``[<sos>, y_1, ..., y_n, <eos>]`` gives the decoder input ``tgt_in = [<sos>, y_1,
..., y_n]`` and what it must predict, ``tgt_out = [y_1, ..., y_n, <eos>]``. Sources are used as encoded
(``Tokenizer.encode`` adds ``<sos>``/``<eos>`` there too; use the same call at inference). Padding id 0.

The order of an epoch is a pure function of ``(seed, epoch)`` (a ``torch.Generator`` seeded with both),
so a run resumed at position ``(epoch, index)`` sees exactly the batches an uninterrupted run would
(:class:`BatchStream`, ``state_dict()`` / ``load_state_dict()``). Optional bucketing groups similar
lengths to waste less padding. Nothing here knows about models.

Example:
    >>> b = collate([[1, 5, 6, 2], [1, 7, 2]], [[1, 8, 2], [1, 9, 9, 2]])
    >>> b.src.tolist(), b.src_lengths.tolist()
    ([[1, 5, 6, 2], [1, 7, 2, 0]], [4, 3])
    >>> b.tgt_in.tolist(), b.tgt_out.tolist()
    ([[1, 8, 0], [1, 9, 9]], [[8, 2, 0], [9, 9, 2]])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import torch

from attnkit.data.stream import ResumableStream
from attnkit.data.tokenize import Tokenizer


@dataclass
class Batch:
    """One padded batch (pad id 0).

    Attributes:
        src: ``(B, S)`` long, source ids.
        src_lengths: ``(B,)`` long, real source lengths.
        tgt_in: ``(B, T)`` long, decoder inputs, each row starts with ``<sos>``.
        tgt_out: ``(B, T)`` long, decoder targets, each row ends with ``<eos>`` (then padding).
        tgt_lengths: ``(B,)`` long, real lengths of ``tgt_out`` rows.
        indices: ``(B,)`` long, positions of these pairs in the data set (to match outputs to references).
        position: ``(epoch, index)`` of this batch in its stream (``(0, i)`` outside a stream).
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    tgt_lengths: torch.Tensor
    indices: torch.Tensor
    position: tuple[int, int] = (0, 0)

    @property
    def src_mask(self) -> torch.Tensor:
        """``(B, S)`` bool, True = real source token (may be attended to)."""
        return torch.arange(self.src.shape[1], device=self.src.device) < self.src_lengths.unsqueeze(1)

    @property
    def tgt_mask(self) -> torch.Tensor:
        """``(B, T)`` bool, True = real target position (counts in the loss)."""
        return torch.arange(self.tgt_out.shape[1], device=self.tgt_out.device) < self.tgt_lengths.unsqueeze(1)

    @property
    def num_tokens(self) -> int:
        """Number of real target tokens (``tgt_mask.sum()``), for tokens/s and per-token losses."""
        return int(self.tgt_lengths.sum())

    def __len__(self) -> int:
        return self.src.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device``."""
        names = ("src", "src_lengths", "tgt_in", "tgt_out", "tgt_lengths", "indices")
        return replace(self, **{n: getattr(self, n).to(device, non_blocking=non_blocking) for n in names})


def _pad(rows: Sequence[Sequence[int]], pad_id: int) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0)
    return torch.tensor([[*r, *([pad_id] * (width - len(r)))] for r in rows], dtype=torch.long)  # (B, L)


def collate(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    *,
    pad_id: int = 0,
    indices: Sequence[int] | None = None,
    position: tuple[int, int] = (0, 0),
) -> Batch:
    """Pad encoded pairs into a :class:`Batch`.

    Args:
        src_ids: ``B`` source id lists (as encoded, e.g. ``[<sos>, x_1, ..., <eos>]``), non-empty.
        tgt_ids: ``B`` target id lists ``[<sos>, y_1, ..., y_n, <eos>]`` (at least 2 ids each).
        pad_id: padding id (0 in every attnkit tokenizer).
        indices: data-set positions of the pairs (default ``0 .. B-1``).
        position: stream position recorded on the batch.
    """
    if len(src_ids) != len(tgt_ids):
        raise ValueError(
            f"Expected as many sources as targets. Received: {len(src_ids)} sources, {len(tgt_ids)} targets"
        )
    if not src_ids:
        raise ValueError("Expected at least one pair. Received: 0 pairs")
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids, strict=True)):
        if len(s) < 1 or len(t) < 2:
            raise ValueError(
                f"Expected a non-empty source and a target of >= 2 ids (<sos> ... <eos>). "
                f"Received: pair {i} with source length {len(s)}, target length {len(t)}"
            )
    idx = list(range(len(src_ids))) if indices is None else list(indices)
    return Batch(
        src=_pad(src_ids, pad_id),  # (B, S)
        src_lengths=torch.tensor([len(s) for s in src_ids], dtype=torch.long),  # (B,)
        tgt_in=_pad([t[:-1] for t in tgt_ids], pad_id),  # (B, T)
        tgt_out=_pad([t[1:] for t in tgt_ids], pad_id),  # (B, T)
        tgt_lengths=torch.tensor([len(t) - 1 for t in tgt_ids], dtype=torch.long),  # (B,)
        indices=torch.tensor(idx, dtype=torch.long),  # (B,)
        position=position,
    )


@dataclass
class EncodedPairs:
    """Token ids of a list of pairs, encoded once: ``src[i]``, ``tgt[i]`` with ``<sos>``/``<eos>``."""

    src: list[list[int]]
    tgt: list[list[int]]

    def __len__(self) -> int:
        return len(self.src)


def encode_pairs(
    pairs: Sequence[tuple[str, str]], src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer
) -> EncodedPairs:
    """Encode ``(source, target)`` strings with both tokenizers (``add_special=True``)."""
    pairs = list(pairs)
    return EncodedPairs(
        src=src_tokenizer.encode_batch([s for s, _ in pairs]),
        tgt=tgt_tokenizer.encode_batch([t for _, t in pairs]),
    )


def epoch_order(
    n: int,
    batch_size: int,
    *,
    epoch: int = 0,
    seed: int = 0,
    shuffle: bool = True,
    lengths: Sequence[int] | None = None,
    bucket_size: int | None = None,
    drop_last: bool = False,
) -> list[list[int]]:
    """The batches of one epoch as lists of example indices; a pure function of its arguments.

    Without bucketing: a random permutation (``torch.randperm`` with a generator seeded from ``seed``
    and ``epoch``) cut into batches. With ``bucket_size=k`` and ``lengths``: the permutation is cut into
    chunks of ``k * batch_size`` examples, each chunk sorted by length (longest first), cut into
    batches, and the batches shuffled. ``shuffle=False`` keeps file order (sorted within chunks when
    bucketing). A last partial batch is kept unless ``drop_last``.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected batch_size to be a positive int. Received: batch_size={batch_size!r}")
    if bucket_size is not None and (lengths is None or len(lengths) != n or bucket_size < 1):
        raise ValueError(
            f"Bucketing needs bucket_size >= 1 and one length per example. Received: bucket_size={bucket_size}, "
            f"{None if lengths is None else len(lengths)} lengths for {n} examples"
        )
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))
    if bucket_size is not None:
        assert lengths is not None
        chunk = bucket_size * batch_size
        order = [
            i for c in range(0, n, chunk) for i in sorted(order[c : c + chunk], key=lambda j: -lengths[j])
        ]
    out = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if drop_last and out and len(out[-1]) < batch_size:
        out.pop()
    if bucket_size is not None and shuffle:
        out = [out[i] for i in torch.randperm(len(out), generator=g).tolist()]
    return out


@dataclass
class BatchStream(ResumableStream):
    """An endless, resumable stream of :class:`Batch` over epochs (a :class:`ResumableStream`).

    Position ``(epoch, index)`` names the next batch to yield; ``state_dict()`` saves it and
    ``load_state_dict()`` restores it, so a resumed run continues with exactly the batches an
    uninterrupted run would have seen. With ``num_shards > 1`` (one per process) shard ``r`` yields the
    batches ``r, r + num_shards, ...`` of each epoch, so processes see disjoint data; the epoch's last
    ``len % num_shards`` batches are dropped so every shard yields the same number of batches.

    Args:
        data: the encoded pairs.
        batch_size, seed, shuffle, bucket_size, drop_last: the order of an epoch, see :func:`epoch_order`.
        pad_id: padding id.
        num_shards, shard: this process's part of every epoch.
        device: put each batch there (None: leave it on the CPU).
        epoch, index: the starting position.

    Example:
        >>> data = EncodedPairs(src=[[1, 4, 2]] * 5, tgt=[[1, 5, 2]] * 5)
        >>> s = BatchStream(data, batch_size=2, seed=0)
        >>> [next(s).position for _ in range(4)]
        [(0, 0), (0, 1), (0, 2), (1, 0)]
        >>> s.state_dict()["epoch"], s.state_dict()["index"]
        (1, 1)
    """

    data: EncodedPairs = field(repr=False)
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    bucket_size: int | None = None
    drop_last: bool = False
    pad_id: int = 0
    num_shards: int = 1
    shard: int = 0
    device: torch.device | str | None = None
    epoch: int = 0
    index: int = 0

    resume_keys = ("seed", "num_examples", "batch_size", "shuffle", "bucket_size", "drop_last", "num_shards",
                   "shard")

    def __post_init__(self) -> None:
        if len(self.data) == 0:
            raise ValueError("Expected a non-empty data set. Received: 0 pairs")
        if not 0 <= self.shard < self.num_shards:
            raise ValueError(
                f"Expected 0 <= shard < num_shards. Received: shard={self.shard}, num_shards={self.num_shards}"
            )
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"No batch in an epoch: {len(self.data)} pairs, batch_size={self.batch_size}, "
                f"drop_last={self.drop_last}, num_shards={self.num_shards}"
            )

    @property
    def num_examples(self) -> int:
        """Pairs in the data set."""
        return len(self.data)

    def _plan_epoch(self, epoch: int) -> list[list[int]]:
        """Example indices of each batch this shard yields in ``epoch``."""
        lengths = [len(s) for s in self.data.src] if self.bucket_size is not None else None
        full = epoch_order(len(self.data), self.batch_size, epoch=epoch, seed=self.seed, shuffle=self.shuffle,
                           lengths=lengths, bucket_size=self.bucket_size, drop_last=self.drop_last)
        if self.num_shards > 1:  # equal batch counts per shard, so processes stay in step
            full = full[: len(full) - len(full) % self.num_shards]
        return full[self.shard :: self.num_shards]

    def _make_batch(self, plan: list[int], epoch: int, index: int) -> Batch:
        batch = collate([self.data.src[i] for i in plan], [self.data.tgt[i] for i in plan], pad_id=self.pad_id,
                        indices=plan, position=(epoch, index))
        return batch if self.device is None else batch.to(self.device)


def batches(
    data: EncodedPairs,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    start: int = 0,
    bucket_size: int | None = None,
    drop_last: bool = False,
    pad_id: int = 0,
    device: torch.device | str | None = None,
) -> Iterator[Batch]:
    """The batches of one epoch, from batch number ``start`` (e.g. for evaluation: ``shuffle=False``).

    ``batch.indices`` says which pairs each batch holds, so outputs can be matched to references.
    """
    order = epoch_order(
        len(data),
        batch_size,
        epoch=epoch,
        seed=seed,
        shuffle=shuffle,
        lengths=[len(s) for s in data.src] if bucket_size is not None else None,
        bucket_size=bucket_size,
        drop_last=drop_last,
    )
    for k in range(start, len(order)):
        idx = order[k]
        b = collate(
            [data.src[i] for i in idx],
            [data.tgt[i] for i in idx],
            pad_id=pad_id,
            indices=idx,
            position=(epoch, k),
        )
        yield b if device is None else b.to(device)
