"""Tokenizers of the language models: GPT's byte-level BPE, BERT's WordPiece, and whole-text encoding.

Both trainers return attnkit's one :class:`~attnkit.data.tokenize.Tokenizer` (a wrapper of the Hugging Face
``tokenizers.Tokenizer``), saved as a standard ``tokenizer.json``. Byte-level BPE encodes any string (every
byte is in the alphabet); WordPiece lower-cases and maps what it never saw to ``[UNK]``.
:func:`load_tokenizer` reads any ``tokenizer.json``. The helpers accept the wrapper or a raw
``tokenizers.Tokenizer``.

Example:
    >>> text = "the cat sat on the mat.\\nthe dog sat on the log.\\n" * 20
    >>> tok = train_byte_bpe([text], vocab_size=300)
    >>> ids = encode_text(tok, text)
    >>> tok.decode(ids) == text, tok.eos_id, tok.unk_id
    (True, 0, None)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from attnkit.data.tokenize import Required, Tokenizer
from attnkit.data.tokenizer_training import (
    BERT_SPECIAL_TOKENS,
    BYTE_ALPHABET,
    EOS_TOKEN,
    train_byte_bpe_backend,
    train_wordpiece_backend,
)


def train_byte_bpe(texts: Sequence[str], vocab_size: int = 1000, min_frequency: int = 2) -> Tokenizer:
    """A GPT-2-style byte-level BPE tokenizer (Radford et al. 2019) trained on ``texts``.

    The alphabet is the 256 bytes (so any string encodes, nothing is unknown), then ``<|endoftext|>``
    at id 0, then merges until ``vocab_size`` (fewer when the text offers no more pairs seen
    ``min_frequency`` times). ``decode(encode(s)) == s`` for every string.

    Args:
        texts: training strings.
        vocab_size: at most this many ids (at least 257).
        min_frequency: a pair is merged only when seen this often.

    Returns:
        The :class:`Tokenizer` (``eos_id`` 0, no unknown token).

    Example:
        >>> tok = train_byte_bpe(["hello world, hello there"], vocab_size=300)
        >>> tok.token_to_id("<|endoftext|>"), tok.decode(tok.encode("héllo ✓"))
        (0, 'héllo ✓')
    """
    return Tokenizer(train_byte_bpe_backend(texts, vocab_size=vocab_size, min_frequency=min_frequency))


def train_wordpiece(
    texts: Sequence[str], vocab_size: int = 2000, lowercase: bool = True, min_frequency: int = 1
) -> Tokenizer:
    """A BERT WordPiece tokenizer (Wu et al. 2016; Devlin et al. 2019) trained on ``texts``.

    Special tokens ``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4``; BERT's normaliser (lower-casing
    when ``lowercase``) and pre-tokeniser (whitespace and punctuation); continuation pieces start
    with ``##``. ``encode(a)`` gives ``[CLS] a [SEP]`` and ``encode(a, b)`` ``[CLS] a [SEP] b [SEP]``,
    as ``transformers`` expects of the saved ``tokenizer.json``.

    Args:
        texts: training strings.
        vocab_size: at most this many ids (at least 6).
        lowercase: lower-case text (when training and encoding).
        min_frequency: keep pieces seen at least this often.

    Returns:
        The :class:`Tokenizer`.

    Example:
        >>> tok = train_wordpiece(["The cat sat.", "The dog ran."], vocab_size=100)
        >>> tok.tokens(tok.encode("the cat ran"))
        ['[CLS]', 'the', 'cat', 'ran', '[SEP]']
        >>> tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id
        (0, 1, 2, 3, 4)
    """
    return Tokenizer(train_wordpiece_backend(texts, vocab_size=vocab_size, lowercase=lowercase,
                                             min_frequency=min_frequency))


def load_tokenizer(path: str | os.PathLike[str], required: Required = ()) -> Tokenizer:
    """A ``tokenizer.json`` file (or a directory holding one, e.g. a saved model) as a :class:`Tokenizer`.

    The one loader of attnkit (``Tokenizer.from_file``); for the bytes of such a file use
    ``Tokenizer.from_bytes``. Reusing a saved vocabulary makes runs reproducible: the WordPiece trainer of
    the ``tokenizers`` library breaks ties between equally frequent merges in hash-map order, so two
    trainings on the same text can differ (huggingface/tokenizers issue 1794); byte-level BPE training is
    stable.

    Args:
        path: the file, or a directory with ``tokenizer.json``.
        required: tokens the vocabulary must have (e.g. ``BERT_SPECIAL_TOKENS``), or token -> id.

    Returns:
        The ``Tokenizer``.

    Raises:
        InputError: no such file, not a tokenizer file, or required tokens missing (listed).

    Example:
        >>> load_tokenizer("/no/such/file.json")
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: tokenizer file '/no/such/file.json' does not exist
    """
    return Tokenizer.from_file(path, required=required)



def encode_text(tok: Tokenizer | Any, text: str) -> list[int]:
    """Ids of the whole ``text`` (no special tokens), encoded line by line with the newlines kept.

    Args:
        tok: a :class:`Tokenizer` (or a raw ``tokenizers.Tokenizer``).
        text: the text.

    Returns:
        The ids, in order.

    Example:
        >>> tok = train_byte_bpe(["ab ab ab\\n"], vocab_size=260)
        >>> tok.decode(encode_text(tok, "ab ab\\nab"))
        'ab ab\\nab'
    """
    ids: list[int] = []
    for row in Tokenizer.wrap(tok).encode_batch(text.splitlines(keepends=True), add_special=False):
        ids.extend(row)
    return ids


def encode_documents(tok: Tokenizer | Any, documents: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """Ids (no special tokens) of each sentence of each document; sentences without tokens are dropped.

    Args:
        tok: a :class:`Tokenizer` (or a raw ``tokenizers.Tokenizer``).
        documents: documents of sentences (``attnkit.data.reading.split_sentences``).

    Returns:
        Documents of sentences of ids; documents left empty are dropped.

    Example:
        >>> tok = train_wordpiece(["a b. c d."], vocab_size=40)
        >>> encode_documents(tok, [["a b.", "c d."]]) == [[tok.encode("a b.", add_special=False),
        ...                                              tok.encode("c d.", add_special=False)]]
        True
    """
    tok = Tokenizer.wrap(tok)
    out = []
    for doc in documents:
        encoded = tok.encode_batch(list(doc), add_special=False)
        out.append([ids for ids in encoded if ids])
    return [d for d in out if d]


def unknown_pieces(tok: Tokenizer | Any, text: str) -> list[str]:
    """The pieces of ``text`` the tokenizer can only encode as its unknown token (empty for byte-level BPE).

    Example:
        >>> tok = train_wordpiece(["abc abc"], vocab_size=50)
        >>> unknown_pieces(tok, "abc xyz")
        ['xyz']
    """
    return Tokenizer.wrap(tok).unknown_pieces(text)


__all__ = ["BERT_SPECIAL_TOKENS", "BYTE_ALPHABET", "EOS_TOKEN", "encode_documents", "encode_text",
           "load_tokenizer", "train_byte_bpe", "train_wordpiece", "unknown_pieces"]
