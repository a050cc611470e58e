"""Reading text for the language models: a checked UTF-8 file, its documents and sentences.

* :func:`read_text` reads a UTF-8 file and says clearly what is wrong with a missing, empty or
  non-UTF-8 one (``InputError``).
* :func:`split_sentences`: a "sentence" is a non-empty line; blank lines separate documents.
* :func:`split_documents` holds out the trailing part of the sentences for validation.

Example:
    >>> docs = split_sentences("a.\\nb.\\nc.\\n\\nd.\\ne.\\nf.\\n")
    >>> docs
    [['a.', 'b.', 'c.'], ['d.', 'e.', 'f.']]
    >>> split_documents(docs, valid_fraction=0.5)
    ([['a.', 'b.', 'c.']], [['d.', 'e.', 'f.']])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnkit.errors import InputError


def read_text(path: str | Path, what: str = "text file", expected: str = "no text to train on") -> str:
    """The contents of a UTF-8 text file (a leading byte-order mark is dropped).

    Args:
        path: the file.
        what: how messages name the file ("text file", "CSV file", ...).
        expected: what an empty file lacks, said after "is empty: ".

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
        raise InputError(f"{what} {str(p)!r} does not exist")
    if p.is_dir():
        raise InputError(f"{what} {str(p)!r} is a directory. Expected a UTF-8 {what}")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"{what} {str(p)!r}: line {line}: not valid UTF-8: byte 0x{data[err.start]:02x} "
            f"(byte offset {err.start}). Expected UTF-8 text (convert it, e.g. with iconv)"
        ) from None
    if not text.strip():
        raise InputError(
            f"{what} {str(p)!r}: line 1: the file is empty: {expected}"
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
