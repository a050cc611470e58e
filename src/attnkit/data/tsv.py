"""Read user parallel corpora in the Tatoeba / Anki layout: ``source<TAB>target[<TAB>anything]``.

One pair per line; columns after the second (Tatoeba attribution, Anki tags) are ignored. Empty and
whitespace-only lines are skipped silently. A line without a tab, or whose source or target is empty
after stripping, is *malformed*: with ``on_error="raise"`` the first one raises
:class:`attnkit.errors.InputError` naming the file and line number; with ``on_error="skip"`` every
malformed line is skipped and listed in :attr:`TsvData.problems`. A file that is not valid UTF-8
raises ``InputError`` with the line number of the first bad byte.

Example:
    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = pathlib.Path(tmp.name) / "eng-spa.tsv"
    >>> _ = p.write_text("Hi.\\tHola.\\tCC-BY 2.0\\nno tab here\\n", encoding="utf-8")
    >>> data = read_tsv(p, on_error="skip")
    >>> data.pairs, [(q.line, q.reason) for q in data.problems]
    ([('Hi.', 'Hola.')], [(2, 'no tab')])
    >>> tmp.cleanup()
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from attnkit.data.reading import check_input_file
from attnkit.errors import InputError

ON_ERROR = ("raise", "skip")
MAX_FIELD_CHARS = 1000
"""Longest source or target (characters) a line may hold: a longer one is malformed (a sentence-pair model
pads every batch to its longest item, so one huge line would take all memory)."""


@dataclass(frozen=True)
class TsvProblem:
    """A malformed line: 1-based ``line`` number, a short ``reason`` and the line's ``text``."""

    line: int
    reason: str
    text: str


@dataclass
class TsvData:
    """What :func:`read_tsv` found: the ``pairs`` and the ``problems`` (lines skipped as malformed)."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    problems: list[TsvProblem] = field(default_factory=list)

    def describe_problems(self, limit: int = 5) -> str:
        """One line such as ``"skipped 3 malformed lines: 2 (no tab), 7 (empty target), 9 (no tab)"``."""
        if not self.problems:
            return "no malformed lines"
        shown = ", ".join(f"{p.line} ({p.reason})" for p in self.problems[:limit])
        more = f", ... ({len(self.problems) - limit} more)" if len(self.problems) > limit else ""
        n = len(self.problems)
        return f"skipped {n} malformed line{'s' if n != 1 else ''}: {shown}{more}"


def _check_line(text: str) -> tuple[tuple[str, str] | None, str]:
    if "\t" not in text:
        return None, "no tab"
    cols = text.split("\t")
    src, tgt = cols[0].strip(), cols[1].strip()
    if not src and not tgt:
        return None, "empty source and target"
    if not src:
        return None, "empty source"
    if not tgt:
        return None, "empty target"
    for side, value in (("source", src), ("target", tgt)):
        if len(value) > MAX_FIELD_CHARS:
            return None, f"{side} of {len(value)} characters, longer than the limit of {MAX_FIELD_CHARS}"
    return (src, tgt), ""


def read_tsv(path: str | os.PathLike, *, on_error: str = "raise") -> TsvData:
    """Read ``source<TAB>target[<TAB>...]`` pairs from a UTF-8 file.

    Args:
        path: the file.
        on_error: ``"raise"`` (first malformed line raises ``InputError``) or ``"skip"`` (skip and
            record it in ``problems``).

    Returns:
        :class:`TsvData` with ``pairs`` (stripped strings, file order) and ``problems``.

    Raises:
        InputError: missing file, invalid UTF-8, a malformed line with ``on_error="raise"``, or no pair.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"Expected on_error to be one of {ON_ERROR}. Received: on_error={on_error!r}")
    p = check_input_file(path, "TSV file")  # missing, a directory, unreadable: one line saying what to do
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError(
            f"{p}: line {line}: not valid UTF-8 (byte {raw[e.start]:#04x} at offset {e.start}); "
            "save the file as UTF-8"
        ) from None
    data = TsvData()
    for i, line in enumerate(text.split("\n"), start=1):  # only \n ends a line (not U+2028 etc.)
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        pair, reason = _check_line(line)
        if pair is not None:
            data.pairs.append(pair)
            continue
        if on_error == "raise":
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise InputError(
                f"{p}: line {i}: malformed line ({reason}); expected 'source<TAB>target'. Received: {shown!r}"
            )
        data.problems.append(TsvProblem(i, reason, line))
    if not data.pairs:
        raise InputError(f"{p}: no 'source<TAB>target' pairs found ({data.describe_problems()})")
    return data
