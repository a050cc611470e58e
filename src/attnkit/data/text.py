"""Language-model data from any UTF-8 text file: tokenizers, GPT blocks and BERT sentence pairs.

Shape legend: ``B`` batch size, ``T`` block size (GPT) or longest pair in the batch (BERT).

* :func:`read_text` reads a UTF-8 file and says clearly what is wrong with a missing, empty or
  non-UTF-8 one (``InputError``).
* :func:`train_byte_bpe` (GPT) and :func:`train_wordpiece` (BERT) train Hugging Face ``tokenizers``
  objects, saved as a standard ``tokenizer.json``. Byte-level BPE encodes any string (every byte is in
  the alphabet); WordPiece lower-cases and maps what it never saw to ``[UNK]``.
* :class:`BlockStream` cuts one long id sequence into contiguous blocks of ``T`` tokens (GPT: the model
  learns ``p(x_{t+1} | x_1..x_t)`` inside each block).
* :class:`SentencePairStream` builds next-sentence pairs ``[CLS] A [SEP] B [SEP]``: for each sentence
  with a successor in its document, B is that successor (``IsNext``, label 0) or, with probability 1/2,
  a random other sentence (``NotNext``, label 1); then masks tokens for the masked LM with the
  ``mask_fn`` it is given (the 80/10/10 rule of ``attnkit.models.bert.mask_tokens``; passed in so that
  data never imports models).

A "sentence" of :func:`split_sentences` is a non-empty line; blank lines separate documents.

Both streams are deterministic by seed: the batches of an epoch are a pure function of
``(seed, epoch)`` (the masks of a batch of ``(seed, epoch, index)``), and ``state_dict()`` /
``load_state_dict()`` resume exactly where a run stopped (the protocol of ``attnkit.training.Trainer``).

Example:
    >>> text = "the cat sat on the mat.\\nthe dog sat on the log.\\n" * 20
    >>> tok = train_byte_bpe([text], vocab_size=300)
    >>> ids = encode_text(tok, text)
    >>> tok.decode(ids) == text
    True
    >>> stream = BlockStream(ids, block_size=8, batch_size=4, seed=0)
    >>> next(stream).input_ids.shape
    torch.Size([4, 8])
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from attnkit.errors import InputError

EOS_TOKEN = "<|endoftext|>"
#: BERT's special tokens, at ids 0..4 in every WordPiece vocabulary trained here.
BERT_SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
BYTE_ALPHABET = 256
IS_NEXT, NOT_NEXT = 0, 1

MaskFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
"""``mask_fn(input_ids (B, T), special_tokens_mask (B, T) bool, generator) -> (inputs, labels)``,
labels -100 where nothing is predicted (e.g. ``functools.partial(mask_tokens, mask_token_id=4,
vocab_size=V)`` called with keyword arguments ``special_tokens_mask`` and ``generator``)."""


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------


def read_text(path: str | Path) -> str:
    """The contents of a UTF-8 text file (a leading byte-order mark is dropped).

    Raises:
        InputError: the file does not exist, is a directory, is not valid UTF-8 (the message gives
            the line and byte offset of the first bad byte) or holds only whitespace.

    Example:
        >>> read_text("/no/such/file.txt")
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: text file '/no/such/file.txt' does not exist
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"text file {str(p)!r} does not exist")
    if p.is_dir():
        raise InputError(f"text file {str(p)!r} is a directory. Expected a UTF-8 text file")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"text file {str(p)!r} is not valid UTF-8: byte 0x{data[err.start]:02x} at line {line} "
            f"(byte offset {err.start}). Expected UTF-8 text (convert it, e.g. with iconv)"
        ) from None
    if not text.strip():
        raise InputError(
            f"text file {str(p)!r} is empty: no text to train on"
            + (f" (only {len(text)} whitespace characters)" if text else "")
        )
    return text


def split_sentences(text: str) -> list[list[str]]:
    """Documents of sentences: each non-empty line is a sentence, blank lines separate documents.

    Example:
        >>> split_sentences("a b.\\nc d.\\n\\n  \\ne f.\\n")
        [['a b.', 'c d.'], ['e f.']]
    """
    docs: list[list[str]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if line:
            docs[-1].append(line)
        elif docs[-1]:
            docs.append([])
    return [d for d in docs if d]


# ----------------------------------------------------------------------------------------------------------
# Tokenizers
# ----------------------------------------------------------------------------------------------------------


def _check_vocab_size(vocab_size: int, minimum: int, what: str) -> None:
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < minimum:
        raise ValueError(f"vocab_size must be an int >= {minimum} for {what}. Received: {vocab_size!r}")


def train_byte_bpe(texts: Sequence[str], vocab_size: int = 1000, min_frequency: int = 2) -> Tokenizer:
    """A GPT-2-style byte-level BPE tokenizer (Radford et al. 2019) trained on ``texts``.

    The alphabet is the 256 bytes (so any string encodes, nothing is unknown), then ``<|endoftext|>``
    at id 0, then merges until ``vocab_size`` (fewer when the text offers no more pairs seen
    ``min_frequency`` times). ``decode(encode(s)) == s`` for every string.

    Example:
        >>> tok = train_byte_bpe(["hello world, hello there"], vocab_size=300)
        >>> tok.token_to_id("<|endoftext|>"), tok.decode(tok.encode("héllo ✓").ids)
        (0, 'héllo ✓')
    """
    _check_vocab_size(vocab_size, BYTE_ALPHABET + 1, "byte-level BPE (256 bytes + <|endoftext|>)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    return tok


def train_wordpiece(
    texts: Sequence[str], vocab_size: int = 2000, lowercase: bool = True, min_frequency: int = 1
) -> Tokenizer:
    """A BERT WordPiece tokenizer (Wu et al. 2016; Devlin et al. 2019) trained on ``texts``.

    Special tokens ``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4``; BERT's normaliser (lower-casing
    when ``lowercase``) and pre-tokeniser (whitespace and punctuation); continuation pieces start
    with ``##``. The saved ``tokenizer.json`` adds ``[CLS] A [SEP] (B [SEP])`` when encoding with
    special tokens, as ``transformers`` expects.

    Example:
        >>> tok = train_wordpiece(["The cat sat.", "The dog ran."], vocab_size=100)
        >>> tok.encode("the cat ran").tokens
        ['[CLS]', 'the', 'cat', 'ran', '[SEP]']
    """
    _check_vocab_size(vocab_size, len(BERT_SPECIAL_TOKENS) + 1, "WordPiece (5 special tokens + pieces)")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(BERT_SPECIAL_TOKENS),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tok


def load_tokenizer(path: str | Path, required: Sequence[str] = ()) -> Tokenizer:
    """A ``tokenizer.json`` file (or a directory holding one, e.g. a saved model) as a ``Tokenizer``.

    Reusing a saved vocabulary makes runs reproducible: the WordPiece trainer of the ``tokenizers``
    library breaks ties between equally frequent merges in hash-map order, so two trainings on the
    same text can differ (huggingface/tokenizers issue 1794); byte-level BPE training is stable.

    Args:
        path: the file, or a directory with ``tokenizer.json``.
        required: tokens the vocabulary must have (e.g. :data:`BERT_SPECIAL_TOKENS`).

    Raises:
        InputError: no such file, not a tokenizer file, or required tokens missing (listed).

    Example:
        >>> load_tokenizer("/no/such/dir")
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: tokenizer file '/no/such/dir' does not exist
    """
    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.is_file():
        raise InputError(f"tokenizer file {str(p)!r} does not exist")
    try:
        tok = Tokenizer.from_file(str(p))
    except Exception as err:  # tokenizers raises a plain Exception on malformed files
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{str(p)!r} is not a tokenizer.json file: {first}") from None
    missing = [t for t in required if tok.token_to_id(t) is None]
    if missing:
        raise InputError(
            f"tokenizer {str(p)!r} lacks the special tokens {missing}. Expected all of {list(required)}"
        )
    return tok


def encode_text(tok: Tokenizer, text: str) -> list[int]:
    """Ids of the whole ``text`` (no special tokens), encoded line by line with the newlines kept.

    Example:
        >>> tok = train_byte_bpe(["ab ab ab\\n"], vocab_size=260)
        >>> tok.decode(encode_text(tok, "ab ab\\nab"))
        'ab ab\\nab'
    """
    lines = text.splitlines(keepends=True)
    ids: list[int] = []
    for enc in tok.encode_batch(lines, add_special_tokens=False):
        ids.extend(enc.ids)
    return ids


def unknown_pieces(tok: Tokenizer, text: str) -> list[str]:
    """The pieces of ``text`` the tokenizer can only encode as its unknown token (empty for byte-level BPE).

    Example:
        >>> tok = train_wordpiece(["abc abc"], vocab_size=50)
        >>> unknown_pieces(tok, "abc xyz")
        ['xyz']
    """
    unk = getattr(tok.model, "unk_token", None)
    unk_id = tok.token_to_id(unk) if unk else None
    if unk_id is None:
        return []
    enc = tok.encode(text, add_special_tokens=False)
    return [text[a:b] for i, (a, b) in zip(enc.ids, enc.offsets, strict=True) if i == unk_id]


# ----------------------------------------------------------------------------------------------------------
# GPT: contiguous blocks
# ----------------------------------------------------------------------------------------------------------


def _mix(*parts: int) -> int:
    """A 63-bit seed from integers (stable across runs and platforms)."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (p & 0xFFFFFFFFFFFFFFFF)) * 1099511628211) & 0x7FFFFFFFFFFFFFFF
    return h


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


class BlockStream:
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
        self._cache: tuple[int, list[torch.Tensor]] | None = None

    def _epoch_batches(self, epoch: int) -> list[torch.Tensor]:
        """Start positions of the blocks of each batch of ``epoch``."""
        if self._cache is None or self._cache[0] != epoch:
            n, t = len(self.ids), self.block_size
            g = torch.Generator().manual_seed(_mix(self.seed, epoch))
            offset = int(torch.randint(min(t, n - t + 1), (1,), generator=g))
            starts = torch.arange(offset, n - t + 1, t)  # (num_blocks,)
            starts = starts[torch.randperm(len(starts), generator=g)]
            self._cache = (epoch, list(starts.split(self.batch_size)))
        return self._cache[1]

    @property
    def batches_per_epoch(self) -> int:
        """Batches in the current epoch (it may differ by one between epochs, with the offset)."""
        return len(self._epoch_batches(self.epoch))

    @property
    def num_tokens(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[BlockBatch]:
        return self

    def __next__(self) -> BlockBatch:
        order = self._epoch_batches(self.epoch)
        if self.index >= len(order):
            self.epoch, self.index = self.epoch + 1, 0
            order = self._epoch_batches(self.epoch)
        starts = order[self.index]
        rows = starts[:, None] + torch.arange(self.block_size)  # (B, T)
        batch = BlockBatch(self.ids[rows], position=(self.epoch, self.index))
        self.index += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Position (``epoch``, ``index`` of the next batch) and what must match on resume."""
        return {
            "epoch": self.epoch,
            "index": self.index,
            "seed": self.seed,
            "num_tokens": len(self.ids),
            "block_size": self.block_size,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position; raises ``ValueError`` if the text or batching differ."""
        _check_resume(self.state_dict(), state, ("seed", "num_tokens", "block_size", "batch_size"))
        self.epoch, self.index = int(state["epoch"]), int(state["index"])


def _check_resume(mine: dict[str, Any], state: dict[str, Any], keys: Sequence[str]) -> None:
    for key in keys:
        if key in state and state[key] != mine[key]:
            raise ValueError(
                f"Cannot resume the data stream: {key} differs (was the text file changed?). "
                f"Expected: {mine[key]!r}. Received: {state[key]!r}"
            )


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


# ----------------------------------------------------------------------------------------------------------
# BERT: sentence pairs + masked LM
# ----------------------------------------------------------------------------------------------------------


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


class SentencePairStream:
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
        cls_id, sep_id, pad_id: special ids (defaults: the vocabularies of :func:`train_wordpiece`).

    Raises:
        InputError: fewer than 3 sentences, or no sentence with a successor in its document.

    Example:
        >>> from attnkit.models.bert import mask_tokens
        >>> from functools import partial
        >>> docs = [[[5, 6], [7, 8, 9], [10], [11, 12]]]
        >>> s = SentencePairStream(docs, partial(mask_tokens, mask_token_id=4, vocab_size=13),
        ...                        max_len=8, batch_size=2, seed=0)
        >>> b = next(s); b.input_ids.shape[0], b.next_sentence_label.shape
        (2, torch.Size([2]))
    """

    def __init__(
        self,
        documents: Sequence[Sequence[Sequence[int]]],
        mask_fn: MaskFn,
        max_len: int = 128,
        batch_size: int = 32,
        seed: int = 0,
        cls_id: int = 2,
        sep_id: int = 3,
        pad_id: int = 0,
    ) -> None:
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
        self._cache: tuple[int, list[list[tuple[int, int, int]]]] | None = None

    def _epoch_batches(self, epoch: int) -> list[list[tuple[int, int, int]]]:
        """``(a, b, label)`` sentence indices of each batch of ``epoch``."""
        if self._cache is None or self._cache[0] != epoch:
            rng = random.Random(_mix(self.seed, epoch, 1))
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
            self._cache = (
                epoch,
                [pairs[k : k + self.batch_size] for k in range(0, len(pairs), self.batch_size)],
            )
        return self._cache[1]

    @property
    def batches_per_epoch(self) -> int:
        return len(self._epoch_batches(self.epoch))

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

    def __iter__(self) -> Iterator[PairBatch]:
        return self

    def __next__(self) -> PairBatch:
        order = self._epoch_batches(self.epoch)
        if self.index >= len(order):
            self.epoch, self.index = self.epoch + 1, 0
            order = self._epoch_batches(self.epoch)
        g = torch.Generator().manual_seed(_mix(self.seed, self.epoch, self.index, 2))
        batch = self.make_batch(order[self.index], g, (self.epoch, self.index))
        self.index += 1
        return batch

    def fixed_batches(self) -> list[PairBatch]:
        """The batches of epoch 0 with their masks, always the same (validation)."""
        order = self._epoch_batches(0)
        return [
            self.make_batch(p, torch.Generator().manual_seed(_mix(self.seed, 0, i, 2)), (0, i))
            for i, p in enumerate(order)
        ]

    def state_dict(self) -> dict[str, Any]:
        """Position (``epoch``, ``index`` of the next batch) and what must match on resume."""
        return {
            "epoch": self.epoch,
            "index": self.index,
            "seed": self.seed,
            "num_sentences": len(self.sentences),
            "num_tokens": sum(len(s) for s in self.sentences),
            "max_len": self.max_len,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position; raises ``ValueError`` if the text or batching differ."""
        _check_resume(
            self.state_dict(), state, ("seed", "num_sentences", "num_tokens", "max_len", "batch_size")
        )
        self.epoch, self.index = int(state["epoch"]), int(state["index"])


def encode_documents(tok: Tokenizer, documents: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """Ids (no special tokens) of each sentence of each document; sentences without tokens are dropped.

    Example:
        >>> tok = train_wordpiece(["a b. c d."], vocab_size=40)
        >>> encode_documents(tok, [["a b.", "c d."]]) == [[tok.encode("a b.", add_special_tokens=False).ids,
        ...                                              tok.encode("c d.", add_special_tokens=False).ids]]
        True
    """
    out = []
    for doc in documents:
        encoded = [e.ids for e in tok.encode_batch(list(doc), add_special_tokens=False)]
        out.append([ids for ids in encoded if ids])
    return [d for d in out if d]


def split_documents(
    documents: Sequence[Sequence[Any]], valid_fraction: float, min_sentences: int = 3
) -> tuple[list[list[Any]], list[list[Any]]]:
    """Hold out the trailing ``valid_fraction`` of the sentences (documents cut where needed).

    Returns ``(train, valid)``; ``valid`` is empty when it would hold fewer than ``min_sentences``
    sentences or leave ``train`` with fewer.

    Example:
        >>> split_documents([["a", "b", "c"], ["d", "e", "f", "g"]], 0.5)
        ([['a', 'b', 'c'], ['d']], [['e', 'f', 'g']])
    """
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1). Received: {valid_fraction}")
    flat = [(d, s) for d, doc in enumerate(documents) for s in doc]
    n_valid = int(len(flat) * valid_fraction)
    if n_valid < min_sentences or len(flat) - n_valid < min_sentences:
        return [list(doc) for doc in documents], []

    def regroup(items: list[tuple[int, Any]]) -> list[list[Any]]:
        docs: list[list[Any]] = []
        last = None
        for d, s in items:
            if d != last:
                docs.append([])
                last = d
            docs[-1].append(s)
        return docs

    return regroup(flat[: len(flat) - n_valid]), regroup(flat[len(flat) - n_valid :])
