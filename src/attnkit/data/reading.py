"""Reading text for the language models: a checked UTF-8 file, its documents and sentences.

* :func:`read_text` reads a UTF-8 file and says clearly what is wrong with a missing, empty or
  non-UTF-8 one (``InputError``).
* :func:`split_sentences`: a "sentence" is a non-empty line; blank lines separate documents.
* :func:`split_documents` holds out the trailing part of the sentences for validation.
* :func:`check_input_file` says what is wrong with a path that should be a readable file;
  :func:`iter_lines` streams a UTF-8 file line by line in bounded memory (a line longer than
  ``max_bytes`` is cut); :func:`batched` groups any stream into lists of at most ``size`` items.

Example:
    >>> docs = split_sentences("a.\\nb.\\nc.\\n\\nd.\\ne.\\nf.\\n")
    >>> docs
    [['a.', 'b.', 'c.'], ['d.', 'e.', 'f.']]
    >>> split_documents(docs, valid_fraction=0.5)
    ([['a.', 'b.', 'c.']], [['d.', 'e.', 'f.']])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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
        attnkit.errors.InputError: text file '/no/such/file.txt' does not exist: check the path
    """
    p = check_input_file(path, what)
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


MAX_LINE_BYTES = 1 << 20
"""Longest line :func:`iter_lines` keeps (1 MiB; the rest of a longer line is read and dropped)."""


def check_input_file(path: str | Path, what: str = "file") -> Path:
    """``path`` as a ``Path`` if it is a readable regular file, else ``InputError`` saying what to do.

    Example:
        >>> import tempfile
        >>> check_input_file(tempfile.gettempdir(), "--file")
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --file '/tmp' is a directory. Expected a file: give the path of a file in it
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what} {str(p)!r} is a directory. Expected a file: give the path of a file in it")
    if not p.exists():
        raise InputError(f"{what} {str(p)!r} does not exist: check the path")
    try:  # a pipe (`--file <(cmd)`) or a device is read as a stream
        with open(p, "rb"):
            pass
    except PermissionError:
        raise InputError(f"{what} {str(p)!r} cannot be read (permission denied): check its permissions") from None
    return p


def iter_lines(path: str | Path, what: str = "file", max_bytes: int = MAX_LINE_BYTES) -> Iterator[str]:
    """The lines of a UTF-8 file without their line ends, read one at a time (memory: one line).

    A line longer than ``max_bytes`` is cut there (at a character boundary); a leading byte-order mark is
    dropped. ``InputError`` names the file and the line of the first byte that is not UTF-8.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "in.txt"
        >>> _ = path.write_bytes(b"\\xef\\xbb\\xbfuno\\r\\n\\ndos\\n\\xff\\n")
        >>> lines = iter_lines(path, "--file")
        >>> next(lines), next(lines), next(lines)
        ('uno', '', 'dos')
        >>> next(lines)
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --file '...in.txt': line 4: not valid UTF-8 (byte 0xff). Expected UTF-8 text (convert it, e.g. with iconv)
    """
    p = check_input_file(path, what)
    with open(p, "rb") as f:
        for number, raw in enumerate(iter(lambda: f.readline(max_bytes), b""), start=1):
            if not raw.endswith(b"\n") and len(raw) == max_bytes:  # cut: skip the rest of the line
                while (rest := f.readline(max_bytes)) and not rest.endswith(b"\n"):
                    pass
            raw = raw.rstrip(b"\r\n")
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            yield _decode_line(raw, p, what, number, cut=len(raw) >= max_bytes - 1)


def _decode_line(raw: bytes, path: Path, what: str, number: int, cut: bool) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        if cut and err.start >= len(raw) - 3:  # a character split by the cut
            return raw[: err.start].decode("utf-8")
        raise InputError(f"{what} {str(path)!r}: line {number}: not valid UTF-8 (byte 0x{raw[err.start]:02x}). "
                         f"Expected UTF-8 text (convert it, e.g. with iconv)") from None


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of ``size`` consecutive items (the last may be shorter), without reading ahead.

    Example:
        >>> list(batched(range(5), 2))
        [[0, 1], [2, 3], [4]]
    """
    if size < 1:
        raise ValueError(f"Expected size >= 1. Received: {size}")
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
