"""Checks and small helpers of :class:`attnkit.data.tokenize.Tokenizer`: its scheme, its special tokens, ids."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tokenizers import Tokenizer as _HFTokenizer
from tokenizers import models, pre_tokenizers

from attnkit.errors import InputError

#: Special tokens a vocabulary must have: a sequence of tokens, or a mapping token -> id.
Required = Sequence[str] | Mapping[str, int]


def scheme_of(tok: _HFTokenizer) -> str:
    """``char`` / ``word`` (WordLevel), ``bpe``, ``byte_bpe`` (byte-level), ``wordpiece`` or ``unigram``."""
    model = tok.model
    if isinstance(model, models.WordLevel):
        return "char" if isinstance(tok.pre_tokenizer, pre_tokenizers.Split) else "word"
    if isinstance(model, models.BPE):
        return "byte_bpe" if isinstance(tok.pre_tokenizer, pre_tokenizers.ByteLevel) else "bpe"
    return type(model).__name__.lower()


def check_required(backend: _HFTokenizer, required: Required, where: str = "") -> None:
    """Raise ``InputError`` unless every required token is present (at its id, for a mapping)."""
    if isinstance(required, Mapping):
        for token, want in required.items():
            got = backend.token_to_id(token)
            if got != want:
                expected = ", ".join(f"{s}={j}" for s, j in required.items())
                raise InputError(f"Expected special token {token!r} at id {want}. Received: id={got}"
                                 f"{' in ' + where if where else ''} (the vocabulary must reserve {expected})")
        return
    missing = [t for t in required if backend.token_to_id(t) is None]
    if missing:
        raise InputError(f"tokenizer{' ' + where if where else ''} lacks the special tokens {missing}. "
                         f"Expected all of {list(required)}")


def check_token_ids(ids: Iterable[int], n: int) -> list[int]:
    """``ids`` as a list of ints (a 1-D tensor too); ``ValueError`` for an id outside the vocabulary ``[0, n)``."""
    out = [int(i) for i in ids]  # accepts a 1-D tensor too
    for i in out:
        if not 0 <= i < n:
            raise ValueError(f"Expected ids in [0, {n}). Received: id={i}")
    return out
