"""Language-model training streams: contiguous GPT blocks and BERT sentence pairs.

Shape legend: ``B`` batch size, ``T`` block size (GPT) or longest pair in the batch (BERT).

* :class:`BlockStream` cuts one long id sequence into contiguous blocks of ``T`` tokens (GPT: the model
  learns ``p(x_{t+1} | x_1..x_t)`` inside each block); :func:`eval_blocks` gives fixed validation blocks.
* :class:`SentencePairStream` builds next-sentence pairs ``[CLS] A [SEP] B [SEP]``: for each sentence
  with a successor in its document, B is that successor (``IsNext``, label 0) or, with probability 1/2,
  a random other sentence (``NotNext``, label 1); then masks tokens for the masked LM with the
  ``mask_fn`` it is given (the 80/10/10 rule of ``attnkit.models.bert_data.mask_tokens``; passed in so that
  data never imports models).

Both are :class:`~attnkit.data.stream.ResumableStream`: the batches of an epoch are a pure function of
``(seed, epoch)`` (the masks of a batch of ``(seed, epoch, index)``), and ``state_dict()`` /
``load_state_dict()`` resume exactly where a run stopped (the protocol of ``attnkit.training.Trainer``).

Example:
    >>> stream = BlockStream(list(range(40)), block_size=8, batch_size=4, seed=0)
    >>> batch = next(stream)
    >>> batch.input_ids.shape, batch.position
    (torch.Size([4, 8]), (0, 0))
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from attnkit.data.stream import ResumableStream, mix_seed
from attnkit.errors import InputError

IS_NEXT, NOT_NEXT = 0, 1

MaskFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
"""``mask_fn(input_ids (B, T), special_tokens_mask (B, T) bool, generator) -> (inputs, labels)``,
labels -100 where nothing is predicted (e.g. ``functools.partial(mask_tokens, mask_token_id=4,
vocab_size=V)`` called with keyword arguments ``special_tokens_mask`` and ``generator``)."""


@dataclass
class BlockBatch:
    """GPT training batch.

    Attributes:
        input_ids: ``(B, T)`` long, contiguous blocks of the text; the model predicts ``input_ids[:, 1:]``
            from the positions before.
        position: ``(epoch, index)`` of this batch in its stream.
    """

    input_ids: torch.Tensor
    position: tuple[int, int] = (0, 0)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> BlockBatch:
        """A copy on ``device``."""
        return replace(self, input_ids=self.input_ids.to(device, non_blocking=non_blocking))


class BlockStream(ResumableStream):
    """Endless, resumable stream of :class:`BlockBatch` cut from one id sequence.

    Epoch ``e`` starts the blocks at a random offset in ``[0, T)`` (so block borders move between
    epochs), takes every whole block of ``T`` tokens from there, shuffles them and groups them by
    ``batch_size`` (the last batch may be smaller). Offset and order come from ``(seed, e)`` only.

    Args:
        ids: the token ids of the text, at least ``block_size`` of them.
        block_size: ``T``, tokens per block (at most the model's position table).
        batch_size: blocks per batch.
        seed: seed of offsets and order.

    Raises:
        InputError: fewer than ``block_size`` ids.

    Example:
        >>> s = BlockStream(list(range(20)), block_size=4, batch_size=2, seed=0)
        >>> b = next(s); b.input_ids.shape, b.position
        (torch.Size([2, 4]), (0, 0))
        >>> [int(x) for x in b.input_ids[0].diff()]  # contiguous
        [1, 1, 1]
    """

    resume_keys = ("seed", "num_tokens", "block_size", "batch_size")
    resume_hint = " (was the text file changed?)"

    def __init__(self, ids: Sequence[int], block_size: int, batch_size: int, seed: int = 0) -> None:
        if block_size < 2:
            raise ValueError(f"block_size must be >= 2. Received: {block_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: {batch_size}")
        if len(ids) < block_size:
            raise InputError(
                f"text too short: {len(ids)} tokens, fewer than one block of {block_size} "
                f"(give a longer text or a smaller block size)"
            )
        self.ids = torch.as_tensor(list(ids), dtype=torch.long)  # (N,)
        self.block_size, self.batch_size, self.seed = block_size, batch_size, seed
        self.epoch, self.index = 0, 0

    @property
    def num_tokens(self) -> int:
        """Tokens in the text."""
        return len(self.ids)

    def _plan_epoch(self, epoch: int) -> list[torch.Tensor]:
        """Start positions of the blocks of each batch of ``epoch``."""
        n, t = len(self.ids), self.block_size
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
        offset = int(torch.randint(min(t, n - t + 1), (1,), generator=g))
        starts = torch.arange(offset, n - t + 1, t)  # (num_blocks,)
        starts = starts[torch.randperm(len(starts), generator=g)]
        return list(starts.split(self.batch_size))

    def _make_batch(self, plan: torch.Tensor, epoch: int, index: int) -> BlockBatch:
        rows = plan[:, None] + torch.arange(self.block_size)  # (B, T)
        return BlockBatch(self.ids[rows], position=(epoch, index))


def eval_blocks(ids: Sequence[int], block_size: int, batch_size: int) -> list[BlockBatch]:
    """Non-overlapping blocks from the start of ``ids``, in order (validation); empty if too short.

    Example:
        >>> [b.input_ids.tolist() for b in eval_blocks(list(range(7)), block_size=3, batch_size=4)]
        [[[0, 1, 2], [3, 4, 5]]]
    """
    t = torch.as_tensor(list(ids), dtype=torch.long)
    n = len(t) // block_size
    blocks = t[: n * block_size].view(n, block_size)  # (num_blocks, T)
    return [BlockBatch(b, position=(0, i)) for i, b in enumerate(blocks.split(batch_size))]


@dataclass
class PairBatch:
    """BERT pretraining batch (pad id 0).

    Attributes:
        input_ids: ``(B, T)`` ``[CLS] A [SEP] B [SEP]`` after masking.
        attention_mask: ``(B, T)`` bool, True = real token.
        token_type_ids: ``(B, T)`` 0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``, 0 on padding.
        labels: ``(B, T)`` the original id where a token was chosen for the masked LM, else -100.
        next_sentence_label: ``(B,)`` 0 = B follows A (IsNext), 1 = B is random (NotNext).
        position: ``(epoch, index)`` of this batch in its stream.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    labels: torch.Tensor
    next_sentence_label: torch.Tensor
    position: tuple[int, int] = (0, 0)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PairBatch:
        """A copy with every tensor on ``device``."""
        names = ("input_ids", "attention_mask", "token_type_ids", "labels", "next_sentence_label")
        return replace(self, **{n: getattr(self, n).to(device, non_blocking=non_blocking) for n in names})


def _truncate_pair(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Drop tokens from the end of the longer of ``a``/``b`` until ``len(a) + len(b) <= budget``."""
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        (a if len(a) >= len(b) else b).pop()
    return a, b


class SentencePairStream(ResumableStream):
    """Endless, resumable stream of :class:`PairBatch` for masked-LM + next-sentence pretraining.

    Epoch ``e``: every sentence with a successor in its document gives one pair, whose B is the
    successor (IsNext) or, with probability 1/2, a sentence drawn uniformly among all the others
    except A and its successor (NotNext); pairs are truncated longest-first to ``max_len`` tokens
    with ``[CLS]``/``[SEP]``, shuffled and batched. ``mask_fn`` then corrupts each batch with a
    generator seeded by ``(seed, epoch, index)``.

    Args:
        documents: documents of sentences, each sentence a list of ids (no special tokens).
        mask_fn: see :data:`MaskFn`.
        max_len: longest ``[CLS] A [SEP] B [SEP]``, at least 5.
        batch_size: pairs per batch.
        seed: seed of pairs, order and masks.
        cls_id, sep_id, pad_id: special ids (defaults: the vocabularies of ``train_wordpiece``).

    Raises:
        InputError: fewer than 3 sentences, or no sentence with a successor in its document.

    Example:
        >>> from attnkit.models.bert_data import mask_tokens
        >>> from functools import partial
        >>> docs = [[[5, 6], [7, 8, 9], [10], [11, 12]]]
        >>> s = SentencePairStream(docs, partial(mask_tokens, mask_token_id=4, vocab_size=13),
        ...                        max_len=8, batch_size=2, seed=0)
        >>> b = next(s); b.input_ids.shape[0], b.next_sentence_label.shape
        (2, torch.Size([2]))
    """

    resume_keys = ("seed", "num_sentences", "num_tokens", "max_len", "batch_size")
    resume_hint = " (was the text file changed?)"

    def __init__(self, documents: Sequence[Sequence[Sequence[int]]], mask_fn: MaskFn, max_len: int = 128,
                 batch_size: int = 32, seed: int = 0, cls_id: int = 2, sep_id: int = 3, pad_id: int = 0) -> None:
        if max_len < 5:
            raise ValueError(f"max_len must be >= 5 ([CLS] a [SEP] b [SEP]). Received: {max_len}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: {batch_size}")
        self.sentences: list[list[int]] = []
        self.has_next: list[int] = []  # indices of sentences followed by another in the same document
        for doc in documents:
            for j, sent in enumerate(doc):
                if j + 1 < len(doc):
                    self.has_next.append(len(self.sentences))
                self.sentences.append(list(sent))
        if len(self.sentences) < 3:
            raise InputError(
                f"text too short: {len(self.sentences)} sentence(s) (non-empty lines); next-sentence "
                f"prediction needs at least 3"
            )
        if not self.has_next:
            raise InputError(
                "text too short: no two consecutive non-empty lines in one document (blank lines "
                "separate documents); next-sentence prediction needs sentence pairs"
            )
        self.mask_fn, self.max_len, self.batch_size, self.seed = mask_fn, max_len, batch_size, seed
        self.cls_id, self.sep_id, self.pad_id = cls_id, sep_id, pad_id
        self.epoch, self.index = 0, 0

    @property
    def num_sentences(self) -> int:
        """Sentences in all documents."""
        return len(self.sentences)

    @property
    def num_tokens(self) -> int:
        """Tokens in all sentences (no special tokens)."""
        return sum(len(s) for s in self.sentences)

    def _plan_epoch(self, epoch: int) -> list[list[tuple[int, int, int]]]:
        """``(a, b, label)`` sentence indices of each batch of ``epoch``."""
        rng = random.Random(mix_seed(self.seed, epoch, 1))
        n = len(self.sentences)
        pairs = []
        for i in self.has_next:
            if rng.random() < 0.5:
                pairs.append((i, i + 1, IS_NEXT))
            else:
                j = rng.randrange(n - 2)  # uniform over the n - 2 sentences other than i, i + 1
                j = j if j < i else j + 2
                pairs.append((i, j, NOT_NEXT))
        rng.shuffle(pairs)
        return [pairs[k : k + self.batch_size] for k in range(0, len(pairs), self.batch_size)]

    def make_batch(
        self,
        pairs: Sequence[tuple[int, int, int]],
        generator: torch.Generator,
        position: tuple[int, int] = (0, 0),
    ) -> PairBatch:
        """Encode, pad and mask ``(a, b, label)`` sentence-index triples."""
        rows, types = [], []
        for a, b, _ in pairs:
            ta, tb = _truncate_pair(self.sentences[a], self.sentences[b], self.max_len - 3)
            rows.append([self.cls_id, *ta, self.sep_id, *tb, self.sep_id])
            types.append([0] * (len(ta) + 2) + [1] * (len(tb) + 1))
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)  # (B, T)
        token_types = torch.zeros_like(ids)  # (B, T)
        for k, (r, t) in enumerate(zip(rows, types, strict=True)):
            ids[k, : len(r)] = torch.tensor(r)
            token_types[k, : len(t)] = torch.tensor(t)
        real = torch.arange(width) < torch.tensor([len(r) for r in rows])[:, None]  # (B, T)
        special = ~real | (ids == self.cls_id) | (ids == self.sep_id)  # (B, T) never masked
        inputs, labels = self.mask_fn(ids, special_tokens_mask=special, generator=generator)
        nsp = torch.tensor([label for _, _, label in pairs], dtype=torch.long)  # (B,)
        return PairBatch(inputs, real, token_types, labels, nsp, position)

    def _make_batch(self, plan: list[tuple[int, int, int]], epoch: int, index: int) -> PairBatch:
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, index, 2))
        return self.make_batch(plan, g, (epoch, index))

    def fixed_batches(self) -> list[PairBatch]:
        """The batches of epoch 0 with their masks, always the same (validation)."""
        return [self._make_batch(p, 0, i) for i, p in enumerate(self._plan_epoch(0))]
