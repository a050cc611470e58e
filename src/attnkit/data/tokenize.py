"""Tokenizers for sequence-to-sequence data: character, word and BPE, stored as ``tokenizer.json``.

All three kinds are Hugging Face ``tokenizers`` objects underneath, so a saved vocabulary is a standard
``tokenizer.json`` file. Every kind reserves the same special tokens at the same ids::

    <pad> = 0    <sos> = 1    <eos> = 2    <unk> = 3

* ``"char"``: one token per character, spaces included; ``decode(encode(s))`` gives ``s`` back exactly
  when every character of ``s`` is in the vocabulary.
* ``"word"``: words and punctuation marks; a word token carries a leading ``▁`` when a space preceded it,
  so decoding restores the original spacing ("Hello, world!" round-trips).
* ``"bpe"``: byte-pair encoding (Sennrich et al. 2016) trained to ``vocab_size`` on the same
  word/punctuation pre-tokenisation.

Anything outside the vocabulary becomes ``<unk>``; :meth:`Tokenizer.count_unknown` and
:meth:`Tokenizer.unknown_counts` say how often and what, so callers can report it.

Example:
    >>> tok = Tokenizer.train(["4 de marzo de 2031", "2031-03-04"], kind="char")
    >>> ids = tok.encode("2031-03-04")
    >>> ids[0] == tok.sos_id and ids[-1] == tok.eos_id
    True
    >>> tok.decode(ids)
    '2031-03-04'
    >>> tok.count_unknown(["año"])  # 'ñ' was never seen
    1
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import Tokenizer as _HFTokenizer

from attnkit.errors import InputError

PAD, SOS, EOS, UNK = "<pad>", "<sos>", "<eos>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, SOS, EOS, UNK)  # ids 0, 1, 2, 3
TOKENIZER_KINDS: tuple[str, ...] = ("char", "word", "bpe")
DEFAULT_BPE_VOCAB = 2000


def _word_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    # "Hello, world!" -> "▁Hello" "," "▁world" "!": spaces become a ▁ prefix, punctuation splits off.
    return pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])


def _new_backend(kind: str, model: models.Model, lowercase: bool) -> _HFTokenizer:
    tok = _HFTokenizer(model)
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    if kind == "char":
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character
        tok.decoder = decoders.Fuse()
    else:
        tok.pre_tokenizer = _word_pre_tokenizer()
        tok.decoder = decoders.Metaspace()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return tok


def _kind_of(tok: _HFTokenizer) -> str:
    if isinstance(tok.model, models.BPE):
        return "bpe"
    if isinstance(tok.model, models.WordLevel):
        return "char" if isinstance(tok.pre_tokenizer, pre_tokenizers.Split) else "word"
    raise InputError(f"Unsupported tokenizer model {type(tok.model).__name__!r}; expected WordLevel or BPE")


class Tokenizer:
    """Text <-> token ids with ``<pad>=0, <sos>=1, <eos>=2, <unk>=3``; kinds ``"char"``, ``"word"``, ``"bpe"``.

    Build one with :meth:`train` or :meth:`load`; the constructor wraps an existing Hugging Face
    ``tokenizers.Tokenizer`` and checks its special tokens.

    Example:
        >>> tok = Tokenizer.train(["Go.", "Hello, world!"], kind="word")
        >>> tok.tokens(tok.encode("Hello, world!"))
        ['<sos>', 'Hello', ',', 'world', '!', '<eos>']
        >>> tok.decode(tok.encode("Hello, world!"))
        'Hello, world!'
    """

    def __init__(self, backend: _HFTokenizer) -> None:
        for i, special in enumerate(SPECIAL_TOKENS):
            got = backend.token_to_id(special)
            if got != i:
                raise InputError(
                    f"Expected special token {special!r} at id {i}. Received: id={got} "
                    f"(the vocabulary must reserve {', '.join(f'{s}={j}' for j, s in enumerate(SPECIAL_TOKENS))})"
                )
        self._tok = backend
        self.kind: str = _kind_of(backend)
        # Char-level fast path: a dict lookup per character gives the same ids as the backend (tested)
        # at a fraction of the cost. Only for the normalisers this class itself sets.
        self._chars: dict[str, int] | None = None
        self._lower = isinstance(backend.normalizer, normalizers.Lowercase)
        if self.kind == "char" and (backend.normalizer is None or self._lower):
            self._chars = backend.get_vocab(with_added_tokens=False)
            self._char_of = {i: c for c, i in self._chars.items() if i >= len(SPECIAL_TOKENS)}

    # ---- building -------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        kind: str = "char",
        vocab_size: int | None = None,
        min_frequency: int = 1,
        lowercase: bool = False,
    ) -> Tokenizer:
        """Learn a vocabulary from ``texts``.

        Args:
            texts: training strings.
            kind: ``"char"``, ``"word"`` or ``"bpe"``.
            vocab_size: largest vocabulary, specials included (most frequent items kept); ``None`` keeps
                every item for char/word and means 2000 for BPE.
            min_frequency: drop items seen fewer times (char/word).
            lowercase: lower-case text before tokenising (also when encoding later).
        """
        if kind not in TOKENIZER_KINDS:
            raise ValueError(f"Expected kind to be one of {TOKENIZER_KINDS}. Received: kind={kind!r}")
        if vocab_size is not None and (not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS)):
            raise ValueError(
                f"Expected vocab_size to be None or an int > {len(SPECIAL_TOKENS)}. Received: vocab_size={vocab_size!r}"
            )
        texts = list(texts)
        if any(not isinstance(t, str) for t in texts):
            bad = next(t for t in texts if not isinstance(t, str))
            raise TypeError(f"Expected texts to be strings. Received: {type(bad).__name__} {bad!r}")
        if kind == "char":
            counts = Counter(c for t in texts for c in (t.lower() if lowercase else t))
            items = sorted(
                (c for c, n in counts.items() if n >= min_frequency), key=lambda c: (-counts[c], c)
            )
            if vocab_size is not None:
                items = items[: vocab_size - len(SPECIAL_TOKENS)]
            vocab = {s: i for i, s in enumerate(SPECIAL_TOKENS)}
            vocab.update({c: len(SPECIAL_TOKENS) + i for i, c in enumerate(items)})
            return cls(_new_backend(kind, models.WordLevel(vocab, unk_token=UNK), lowercase))
        if kind == "word":
            backend = _new_backend(kind, models.WordLevel(unk_token=UNK), lowercase)
            trainer = trainers.WordLevelTrainer(
                vocab_size=vocab_size if vocab_size is not None else 10**9,
                min_frequency=min_frequency,
                special_tokens=list(SPECIAL_TOKENS),
                show_progress=False,
            )
        else:
            backend = _new_backend(kind, models.BPE(unk_token=UNK), lowercase)
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size if vocab_size is not None else DEFAULT_BPE_VOCAB,
                min_frequency=min_frequency,
                special_tokens=list(SPECIAL_TOKENS),
                show_progress=False,
            )
        backend.train_from_iterator(texts, trainer)
        return cls(backend)

    @classmethod
    def from_str(cls, text: str) -> Tokenizer:
        """Rebuild from the JSON text :meth:`to_str` returns (a ``tokenizer.json`` document)."""
        try:
            return cls(_HFTokenizer.from_str(text))
        except Exception as e:  # tokenizers raises a plain Exception on bad JSON
            if isinstance(e, InputError):
                raise
            raise InputError(f"Not a valid tokenizer.json document: {e}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Read a tokenizer saved by :meth:`save` (a ``tokenizer.json`` file, or a directory holding one)."""
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        if not p.is_file():
            raise InputError(f"Tokenizer file not found: {str(p)!r}")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{p}: tokenizer file is not valid UTF-8") from None
        try:
            return cls.from_str(text)
        except InputError as e:
            raise InputError(f"{p}: {e}") from None

    def to_str(self) -> str:
        """The ``tokenizer.json`` document as a string."""
        return self._tok.to_str()

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``tokenizer.json`` to ``path`` (a file name, or a directory to write it into).

        Returns the path written. The write is atomic (temporary file, then rename).
        """
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(self.to_str(), encoding="utf-8")
        os.replace(tmp, p)
        return p

    # ---- vocabulary -----------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included (ids are ``0 .. vocab_size - 1``)."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def sos_id(self) -> int:
        return 1

    @property
    def eos_id(self) -> int:
        return 2

    @property
    def unk_id(self) -> int:
        return 3

    @property
    def backend(self) -> _HFTokenizer:
        """The Hugging Face ``tokenizers.Tokenizer`` underneath."""
        return self._tok

    # ---- encoding -------------------------------------------------------------------------------

    def encode(self, text: str, add_special: bool = True) -> list[int]:
        """Token ids of ``text``: ``[<sos>, t_1, ..., t_n, <eos>]`` (or ``[t_1, ..., t_n]``).

        Unknown items map to ``unk_id``; the empty string gives ``[<sos>, <eos>]``.
        """
        return self.encode_batch([text], add_special)[0]

    def encode_batch(self, texts: Sequence[str], add_special: bool = True) -> list[list[int]]:
        """:meth:`encode` for many texts at once (faster)."""
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"Expected text to be a str. Received: {type(t).__name__} {t!r}")
        if self._chars is not None:
            v, unk = self._chars, self.unk_id
            rows = [[v.get(c, unk) for c in (t.lower() if self._lower else t)] for t in texts]
        else:
            rows = [list(e.ids) for e in self._tok.encode_batch(texts, add_special_tokens=False)]
        if add_special:
            return [[self.sos_id, *r, self.eos_id] for r in rows]
        return rows

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        out = [int(i) for i in ids]  # accepts a 1-D tensor too
        n = self.vocab_size
        for i in out:
            if not 0 <= i < n:
                raise ValueError(f"Expected ids in [0, {n}). Received: id={i}")
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``: stops at the first ``<eos>`` (after any leading ``<sos>``), skips specials.

        ``ids`` may be a list or a 1-D tensor. Char-level decoding restores spaces exactly.
        """
        out = self._check_ids(ids)
        if self.eos_id in out:
            out = out[: out.index(self.eos_id)]
        if self._chars is not None:
            return "".join(self._char_of[i] for i in out if i >= len(SPECIAL_TOKENS))
        return self._tok.decode([i for i in out if i >= len(SPECIAL_TOKENS)], skip_special_tokens=True)

    def decode_batch(self, batch: Iterable[Iterable[int]]) -> list[str]:
        """:meth:`decode` for each row (a list of lists or a 2-D tensor)."""
        return [self.decode(row) for row in batch]

    def tokens(self, ids: Iterable[int] | str) -> list[str]:
        """Display strings of ``ids``, one per id (specials included), e.g. axis labels of alignment plots.

        A string is encoded first (``encode(text)``, so ``<sos>``/``<eos>`` included): ``tokens(text)``
        labels the columns of an alignment over ``encode(text)``. Word/BPE tokens lose their ``▁`` space
        marker (a lone space token shows as ``▁``); a char-level space shows as ``" "``.
        """
        if isinstance(ids, str):
            ids = self.encode(ids)
        out = []
        for i in self._check_ids(ids):
            t = self._tok.id_to_token(i)
            if self.kind != "char" and t != "▁":
                t = t.removeprefix("▁")
            out.append(t)
        return out

    def unknown_counts(self, texts: Iterable[str]) -> Counter[str]:
        """How often each out-of-vocabulary piece of ``texts`` was mapped to ``<unk>``."""
        counts: Counter[str] = Counter()
        texts = list(texts)
        for text, enc in zip(texts, self._tok.encode_batch(texts, add_special_tokens=False), strict=True):
            for i, (a, b) in zip(enc.ids, enc.offsets, strict=True):
                if i == self.unk_id:
                    counts[text[a:b]] += 1
        return counts

    def count_unknown(self, texts: Iterable[str]) -> int:
        """Number of tokens of ``texts`` mapped to ``<unk>``."""
        return sum(self.unknown_counts(texts).values())

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and json.loads(self.to_str()) == json.loads(other.to_str())

    __hash__ = None  # type: ignore[assignment]
