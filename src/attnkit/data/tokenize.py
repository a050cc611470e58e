"""attnkit's one tokenizer: a wrapper of any Hugging Face ``tokenizer.json``, for every model.

:class:`Tokenizer` wraps a ``tokenizers.Tokenizer`` (the back end) in attnkit's names: ``encode`` gives a
list of ids, ``decode`` takes one; ``vocab_size`` and the special ids (``pad_id``, ``sos_id``, ``eos_id``,
``unk_id``, ``cls_id``, ``sep_id``, ``mask_id``; None when absent) are attributes. It is saved as a standard
``tokenizer.json`` (``save``, ``to_str``) and read by ``from_file`` / ``from_str`` / ``from_bytes`` or
:func:`attnkit.data.lm_tokenizers.load_tokenizer`. The vocabulary chooses one of two conventions:

* **sequence-to-sequence** (``Tokenizer.train``, schemes ``"char"``, ``"word"``, ``"bpe"``): ``<pad>=0 <sos>=1
  <eos>=2 <unk>=3``; ``encode`` puts ``<sos>``/``<eos>`` around the text, ``decode`` stops at the first
  ``<eos>``; word tokens carry a leading ``▁`` after a space, so "Hello, world!" round-trips.
* **any other tokenizer.json** (GPT's byte-level BPE, BERT's WordPiece, a Hugging Face checkpoint's):
  ``encode(text, pair)`` adds what the file's post-processor adds (``[CLS] A [SEP] B [SEP]`` for BERT,
  nothing for GPT-2); ``decode`` skips special tokens.

Calling it, ``tok(texts, padding=True, truncation=True, return_tensors="pt")``, gives model inputs as a Hugging
Face tokenizer does (:mod:`attnkit.data.batch_encoding`); a file's own padding is turned off when it is read.

Example:
    >>> tok = Tokenizer.train(["4 de marzo de 2031", "2031-03-04"], scheme="char")
    >>> ids = tok.encode("2031-03-04")
    >>> ids[0] == tok.sos_id and ids[-1] == tok.eos_id
    True
    >>> tok.decode(ids)
    '2031-03-04'
    >>> tok.count_unknown(["año"])  # 'ñ' was never seen
    1
    >>> Tokenizer.from_str(tok.to_str()) == tok
    True
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer as _HFTokenizer
from tokenizers import normalizers

from attnkit.data._tokenizer_checks import Required, check_required, check_token_ids, scheme_of
from attnkit.data.batch_encoding import BatchEncoding, encode_inputs
from attnkit.data.tokenizer_training import SPECIAL_TOKENS, TOKENIZER_SCHEMES, train_seq2seq_backend
from attnkit.errors import InputError

TOKENIZER_FILE = "tokenizer.json"
#: The sequence-to-sequence convention as ``required=`` of the constructors: token -> id it must have.
SEQ2SEQ_SPECIAL_IDS: dict[str, int] = {s: i for i, s in enumerate(SPECIAL_TOKENS)}
#: Names a special token may have, by role (the first one present in the vocabulary is used).
SPECIAL_NAMES: dict[str, tuple[str, ...]] = {
    "pad": ("<pad>", "[PAD]"),
    "sos": ("<sos>", "<s>"),
    "eos": ("<eos>", "</s>", "<|endoftext|>"),
    "unk": ("<unk>", "[UNK]"),
    "cls": ("[CLS]",),
    "sep": ("[SEP]",),
    "mask": ("[MASK]", "<mask>"),
}


class Tokenizer:
    """Text <-> token ids for every attnkit model; wraps any Hugging Face ``tokenizers.Tokenizer``.

    Build one with :meth:`train` (sequence-to-sequence schemes), :func:`~attnkit.data.lm_tokenizers.train_byte_bpe`
    (GPT), :func:`~attnkit.data.lm_tokenizers.train_wordpiece` (BERT), or read a ``tokenizer.json`` with
    :meth:`from_file` / :meth:`from_str` / :meth:`from_bytes`; :meth:`wrap` accepts a raw back end too.

    Args:
        backend: the ``tokenizers.Tokenizer`` to wrap.
        required: special tokens the vocabulary must have: a sequence of tokens, or a mapping token -> id
            (e.g. :data:`SEQ2SEQ_SPECIAL_IDS`).

    Raises:
        InputError: a required token is missing or at another id.

    Example:
        >>> tok = Tokenizer.train(["Go.", "Hello, world!"], scheme="word")
        >>> tok.tokens(tok.encode("Hello, world!"))
        ['<sos>', 'Hello', ',', 'world', '!', '<eos>']
        >>> tok.decode(tok.encode("Hello, world!"))
        'Hello, world!'
        >>> tok.scheme, tok.vocab_size, tok.pad_id, tok.cls_id
        ('word', 10, 0, None)
    """

    def __init__(self, backend: _HFTokenizer, *, required: Required = ()) -> None:
        if not isinstance(backend, _HFTokenizer):
            raise TypeError(f"Expected a tokenizers.Tokenizer. Received: {type(backend).__name__}")
        check_required(backend, required)
        self._tok = backend
        #: Longest input the model takes (``truncation=True`` cuts to it); the file's truncation length or None.
        self.model_max_length: int | None = (backend.truncation or {}).get("max_length")
        self.padding_side = "right"  #: where ``tok(..., padding=True)`` pads: "right" or "left" (GPT prompts)
        #: How text is cut into tokens: "char", "word", "bpe", "byte_bpe", "wordpiece", ... (:func:`scheme_of`).
        self.scheme: str = scheme_of(backend)
        #: True for the sequence-to-sequence convention (<pad>, <sos>, <eos>, <unk> at ids 0..3).
        self.seq2seq = all(backend.token_to_id(s) == i for s, i in SEQ2SEQ_SPECIAL_IDS.items())
        self._special = {role: next((i for i in map(backend.token_to_id, names) if i is not None), None)
                         for role, names in SPECIAL_NAMES.items()}
        unk = getattr(backend.model, "unk_token", None)
        if unk and backend.token_to_id(unk) is not None:
            self._special["unk"] = backend.token_to_id(unk)
        # Char-level fast path: a dict lookup per character gives the same ids as the backend (tested)
        # at a fraction of the cost. Only for the normalisers Tokenizer.train itself sets.
        self._chars: dict[str, int] | None = None
        self._lower = isinstance(backend.normalizer, normalizers.Lowercase)
        if self.seq2seq and self.scheme == "char" and (backend.normalizer is None or self._lower):
            self._chars = backend.get_vocab(with_added_tokens=False)
            self._char_of = {i: c for c, i in self._chars.items() if i >= len(SPECIAL_TOKENS)}

    # ---- building -------------------------------------------------------------------------------

    @classmethod
    def train(cls, texts: Iterable[str], *, scheme: str = "char", vocab_size: int | None = None,
              min_frequency: int = 1, lowercase: bool = False) -> Tokenizer:
        """Learn a sequence-to-sequence vocabulary (``<pad>=0 <sos>=1 <eos>=2 <unk>=3``) from ``texts``.

        Arguments as :func:`attnkit.data.tokenizer_training.train_seq2seq_backend`: ``scheme`` ``"char"``,
        ``"word"`` or ``"bpe"``; ``vocab_size`` specials included (None: every item, BPE 2000);
        ``min_frequency``; ``lowercase`` (also when encoding later).

        Example:
            >>> Tokenizer.train(["aab"], scheme="char").tokens("ab")
            ['<sos>', 'a', 'b', '<eos>']
        """
        return cls(train_seq2seq_backend(list(texts), scheme=scheme, vocab_size=vocab_size,
                                         min_frequency=min_frequency, lowercase=lowercase))

    @classmethod
    def wrap(cls, tok: Tokenizer | _HFTokenizer) -> Tokenizer:
        """``tok`` itself when it is a ``Tokenizer``, else a ``Tokenizer`` around the raw back end.

        Example:
            >>> from tokenizers import Tokenizer as HF, models
            >>> Tokenizer.wrap(HF(models.WordLevel({"a": 0, "<unk>": 1}, unk_token="<unk>"))).unk_id
            1
        """
        return tok if isinstance(tok, Tokenizer) else cls(tok)

    @classmethod
    def from_str(cls, text: str, *, required: Required = ()) -> Tokenizer:
        """Read the JSON text of a ``tokenizer.json`` document (what :meth:`to_str` returns).

        Raises:
            InputError: not a tokenizer.json document, or a required token missing.

        Example:
            >>> tok = Tokenizer.train(["ab"])
            >>> Tokenizer.from_str(tok.to_str()).encode("ba") == tok.encode("ba")
            True
        """
        try:
            backend = _HFTokenizer.from_str(text)
        except Exception as e:  # tokenizers raises a plain Exception on bad JSON
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InputError(f"Not a valid tokenizer.json document: {first}") from None
        backend.no_padding()  # a file's padding (MiniLM's: every text to 128) only when a call asks for it
        return cls(backend, required=required)

    @classmethod
    def from_bytes(cls, data: bytes, *, required: Required = ()) -> Tokenizer:
        """Read the bytes of a ``tokenizer.json`` file (UTF-8), e.g. from a checkpoint directory.

        Example:
            >>> Tokenizer.from_bytes(Tokenizer.train(["ab"]).to_str().encode()).vocab_size
            6
        """
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("Not a valid tokenizer.json document: not UTF-8") from None
        return cls.from_str(text, required=required)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, required: Required = ()) -> Tokenizer:
        """Read a ``tokenizer.json`` file, or a directory holding one (e.g. a saved model).

        Raises:
            InputError: no such file, not a tokenizer file, or required tokens missing (listed).

        Example:
            >>> Tokenizer.from_file("/no/such/dir")
            Traceback (most recent call last):
            ...
            attnkit.errors.InputError: tokenizer file '/no/such/dir' does not exist
        """
        p = Path(path)
        if p.is_dir():
            p = p / TOKENIZER_FILE
        if not p.is_file():
            raise InputError(f"tokenizer file {str(p)!r} does not exist")
        try:
            backend = _HFTokenizer.from_str(p.read_bytes().decode("utf-8"))
        except Exception as err:  # tokenizers raises a plain Exception on malformed files
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InputError(f"{str(p)!r} is not a tokenizer.json file ({first}): the file is damaged; restore it or "
                             f"save the model again") from None
        check_required(backend, required, where=repr(str(p)))
        backend.no_padding()  # as from_str
        return cls(backend)

    load = from_file  # the name seq2seq models and KitModel directories use

    def to_str(self) -> str:
        """The ``tokenizer.json`` document as a string.

        Example:
            >>> '"model"' in Tokenizer.train(["ab"]).to_str()
            True
        """
        return self._tok.to_str()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``tokenizer.json`` to ``path`` (a file name, or a directory to write it into), atomically.

        Returns:
            The path written.

        Example:
            >>> import tempfile
            >>> tok = Tokenizer.train(["ab"])
            >>> Tokenizer.from_file(tok.save(tempfile.mkdtemp())) == tok
            True
        """
        p = Path(path)
        if p.is_dir():
            p = p / TOKENIZER_FILE
        from attnkit.storage import atomic_write_text  # the one writer (storage sits below data)

        atomic_write_text(p, self.to_str())
        return p

    # ---- vocabulary -----------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included (ids are ``0 .. vocab_size - 1``)."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    def get_vocab_size(self) -> int:
        """``vocab_size``, spelled as ``tokenizers.Tokenizer`` spells it (for code written against it)."""
        return self.vocab_size

    def get_vocab(self) -> dict[str, int]:
        """Token -> id, specials included.

        Example:
            >>> sorted(Tokenizer.train(["a"]).get_vocab().items(), key=lambda kv: kv[1])[-1]
            ('a', 4)
        """
        return self._tok.get_vocab(with_added_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        """The id of ``token``, or None if it is not in the vocabulary."""
        return self._tok.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        """The token of id ``i``, or None if there is no such id."""
        return self._tok.id_to_token(i)

    @property
    def pad_id(self) -> int | None:
        """Id of <pad> / [PAD], or None; settable (``tok.pad_id = tok.eos_id``) to pad with another token."""
        return self._special["pad"]

    @pad_id.setter
    def pad_id(self, value: int | None) -> None:
        self._special["pad"] = None if value is None else check_token_ids([value], self.vocab_size)[0]

    sos_id = property(lambda self: self._special["sos"], doc="Id of <sos> / <s>, or None.")
    eos_id = property(lambda self: self._special["eos"], doc="Id of <eos> / </s> / <|endoftext|>, or None.")
    has_token_types = property(lambda self: not self.seq2seq and None not in (self.cls_id, self.sep_id),
                               doc="True when calls return token_type_ids (BERT-style [CLS] ... [SEP] tokenizers).")
    unk_id = property(lambda self: self._special["unk"], doc="Id of the unknown token, or None (byte-level BPE).")
    cls_id = property(lambda self: self._special["cls"], doc="Id of [CLS], or None.")
    sep_id = property(lambda self: self._special["sep"], doc="Id of [SEP], or None.")
    mask_id = property(lambda self: self._special["mask"], doc="Id of [MASK] / <mask>, or None.")

    @property
    def backend(self) -> _HFTokenizer:
        """The Hugging Face ``tokenizers.Tokenizer`` underneath."""
        return self._tok

    # ---- encoding -------------------------------------------------------------------------------

    def __call__(self, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None, *,
                 padding: bool | str = False, truncation: bool | str | None = False, max_length: int | None = None,
                 return_tensors: str | None = None, add_special_tokens: bool = True,
                 padding_side: str | None = None) -> BatchEncoding:
        """Model inputs, as a Hugging Face tokenizer gives them: ``input_ids``, ``attention_mask`` (1 = real
        token) and, for BERT-style tokenizers, ``token_type_ids``; pass them on with ``model(**enc)``.

        Nothing is padded or truncated unless asked: ``padding=True`` pads to the longest text (on
        ``padding_side``, default :attr:`padding_side`), ``"max_length"`` to ``max_length``; ``truncation=True``
        cuts to ``max_length`` (default :attr:`model_max_length`). ``return_tensors="pt"`` gives ``(B, T)``
        tensors, None lists. See :mod:`attnkit.data.batch_encoding`.

        Example:
            >>> tok = Tokenizer.train(["abc", "a"], scheme="char")
            >>> enc = tok(["abc", "a"], padding=True, return_tensors="pt")
            >>> enc["attention_mask"].tolist()
            [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
            >>> tok("a")["input_ids"]  # one text, not padded
            [1, 4, 2]
        """
        return encode_inputs(self, text, text_pair, padding=padding, truncation=truncation, max_length=max_length,
                             return_tensors=return_tensors, add_special_tokens=add_special_tokens,
                             padding_side=padding_side)

    def encode(self, text: str, pair: str | None = None, add_special: bool = True) -> list[int]:
        """Token ids of ``text`` (and of a second segment ``pair``, for tokenizers with a pair template).

        Sequence-to-sequence tokenizers give ``[<sos>, t_1, ..., t_n, <eos>]`` (``[t_1, ..., t_n]`` with
        ``add_special=False``; the empty string gives ``[<sos>, <eos>]``); any other tokenizer adds what its
        post-processor adds (BERT: ``[CLS] A [SEP] (B [SEP])``). Unknown items map to ``unk_id``.

        Example:
            >>> Tokenizer.train(["ab"]).encode("ba", add_special=False)
            [5, 4]
        """
        if pair is None:
            return self.encode_batch([text], add_special)[0]
        if self.seq2seq:
            raise ValueError("Expected pair=None: a sequence-to-sequence tokenizer encodes one text at a time. "
                             f"Received: pair={pair!r}")
        return list(self._tok.encode(text, pair, add_special_tokens=add_special).ids)

    def encode_batch(self, texts: Sequence[str], add_special: bool = True) -> list[list[int]]:
        """:meth:`encode` for many texts at once (faster).

        Example:
            >>> Tokenizer.train(["ab"]).encode_batch(["a", "b"])
            [[1, 4, 2], [1, 5, 2]]
        """
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"Expected text to be a str. Received: {type(t).__name__} {t!r}")
        if not self.seq2seq:
            return [list(e.ids) for e in self._tok.encode_batch(texts, add_special_tokens=add_special)]
        if self._chars is not None:
            v, unk = self._chars, self.unk_id
            rows = [[v.get(c, unk) for c in (t.lower() if self._lower else t)] for t in texts]
        else:
            rows = [list(e.ids) for e in self._tok.encode_batch(texts, add_special_tokens=False)]
        if add_special:
            return [[self.sos_id, *r, self.eos_id] for r in rows]
        return rows

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids`` (a list or a 1-D tensor), special tokens skipped (``skip_special_tokens=False``
        keeps them, as ``transformers``' ``decode`` does by default).

        A sequence-to-sequence tokenizer stops at the first ``<eos>`` and restores char-level spaces exactly.

        Example:
            >>> tok = Tokenizer.train(["ab"])
            >>> tok.decode([1, 4, 5, 2, 4])
            'ab'
            >>> tok.decode([1, 4, 5, 2, 4], skip_special_tokens=False)
            '<sos>ab<eos>a'
        """
        out = check_token_ids(ids, self.vocab_size)
        if not skip_special_tokens:
            if self._chars is not None:  # char level: one character per id, specials by their names
                return "".join(self._char_of.get(i) or self._tok.id_to_token(i) for i in out)
            return self._tok.decode(out, skip_special_tokens=False)
        if not self.seq2seq:
            return self._tok.decode(out, skip_special_tokens=True)
        if self.eos_id in out:
            out = out[: out.index(self.eos_id)]
        if self._chars is not None:
            return "".join(self._char_of[i] for i in out if i >= len(SPECIAL_TOKENS))
        return self._tok.decode([i for i in out if i >= len(SPECIAL_TOKENS)], skip_special_tokens=True)

    def batch_decode(self, sequences: Iterable[Iterable[int]], skip_special_tokens: bool = True) -> list[str]:
        """:meth:`decode` for each row (a list of lists or a 2-D tensor, e.g. ``GPT.generate``'s output), as
        ``transformers``' ``batch_decode``; attnkit skips special tokens unless ``skip_special_tokens=False``
        (``transformers`` keeps them unless told to skip).

        Example:
            >>> Tokenizer.train(["ab"]).batch_decode([[4], [5, 4]])
            ['a', 'ba']
        """
        return [self.decode(row, skip_special_tokens) for row in sequences]

    def tokens(self, ids: Iterable[int] | str) -> list[str]:
        """Display strings of ``ids``, one per id (specials included), e.g. axis labels of alignment plots.

        A string is encoded first (``encode(text)``, so specials included): ``tokens(text)`` labels the
        columns of an alignment over ``encode(text)``. Word/BPE tokens of the sequence-to-sequence schemes
        lose their ``▁`` space marker (a lone space token shows as ``▁``); a char-level space shows as ``" "``.

        Example:
            >>> Tokenizer.train(["a b"], scheme="word").tokens("a b")
            ['<sos>', 'a', 'b', '<eos>']
        """
        if isinstance(ids, str):
            ids = self.encode(ids)
        out = []
        for i in check_token_ids(ids, self.vocab_size):
            t = self._tok.id_to_token(i)
            if self.scheme in ("word", "bpe") and t != "▁":
                t = t.removeprefix("▁")
            out.append(t)
        return out

    def unknown_pieces(self, text: str) -> list[str]:
        """The pieces of ``text`` encoded as the unknown token, in order (none for byte-level BPE).

        Example:
            >>> Tokenizer.train(["hola"]).unknown_pieces("año")
            ['ñ']
        """
        if self.unk_id is None:
            return []
        enc = self._tok.encode(text, add_special_tokens=False)
        return [text[a:b] for i, (a, b) in zip(enc.ids, enc.offsets, strict=True) if i == self.unk_id]

    def unknown_counts(self, texts: Iterable[str]) -> Counter[str]:
        """How often each out-of-vocabulary piece of ``texts`` was mapped to the unknown token.

        Example:
            >>> Tokenizer.train(["hola mundo"]).unknown_counts(["ñandú ñu"])
            Counter({'ñ': 2, 'ú': 1})
        """
        counts: Counter[str] = Counter()
        if self.unk_id is None:
            return counts
        texts = list(texts)
        for text, enc in zip(texts, self._tok.encode_batch(texts, add_special_tokens=False), strict=True):
            counts.update(text[a:b] for i, (a, b) in zip(enc.ids, enc.offsets, strict=True) if i == self.unk_id)
        return counts

    def count_unknown(self, texts: Iterable[str]) -> int:
        """Number of tokens of ``texts`` mapped to the unknown token.

        Example:
            >>> Tokenizer.train(["hola"]).count_unknown(["año", "hola"])
            1
        """
        return sum(self.unknown_counts(texts).values())

    def __repr__(self) -> str:
        return f"Tokenizer(scheme={self.scheme!r}, vocab_size={self.vocab_size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and json.loads(self.to_str()) == json.loads(other.to_str())

    __hash__ = None  # type: ignore[assignment]


__all__ = ["SEQ2SEQ_SPECIAL_IDS", "SPECIAL_NAMES", "SPECIAL_TOKENS", "TOKENIZER_FILE", "TOKENIZER_SCHEMES",
           "Tokenizer"]
