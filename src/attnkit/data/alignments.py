"""Gold alignments of the built-in tasks: which source characters each target character comes from.

The built-in tasks are character-level on both sides (``phrases``: word-level), so a gold alignment of a
``(source, target)`` pair is two boolean tensors ``(T_out, T_in) = (len(target), len(source))`` (in words for
``phrases``, see :func:`alignment_units`): ``sure[t, j]`` is True when target
character ``t`` certainly comes from source character ``j``, ``possible[t, j]`` when it may (every sure
link is possible, as in Och and Ney 2003). Special tokens (``<sos>``, ``<eos>``, padding) are not
characters of the strings, so they have no links; a model's alignment rows and columns for them are
dropped before the comparison (``attnkit.recipes.alignment.alignment_scores``).

==========  =====================================================================================
task        rule (example)
==========  =====================================================================================
copy        target ``t`` -> source ``t``, sure ("abc" -> "abc": 0-0, 1-1, 2-2)
reverse     target ``t`` -> source ``n-1-t``, sure ("abc" -> "cba": 0-2, 1-1, 2-0)
sort        target ``t`` -> every source position holding that character: sure when there is one,
            possible for each when the character repeats ("bab" -> "abb": "a" 0-1 sure; each "b"
            1-0 and 1-2, 2-0 and 2-2 possible)
dates       year digits -> the year's digits (a two-digit year "31": "3" and "1" sure, the century
            "20" possible on "31"); day and month digits -> the day's / month's number (a one-digit
            "4" -> "04": "4" sure, the "0" possible); both month digits -> every character of the
            month's name, possible ("marzo" -> "03"); weekday names and the ISO '-' have no links
phrases     word-level (``text.split()``): each English word -> the Spanish word(s) it translates, from the
            grammar (``attnkit.data.phrases.phrase_alignment``; "al" -> "to the", crossing adjectives)
numbers     each digit -> the characters that say it, possible: the characters that change when that
            digit alone is set to 0 (German "einundzwanzig" -> "21": "2" -> "zwanzig", "1" -> "ein",
            "und" for both); a digit 0 says nothing and has no links (but "null" -> "0")
==========  =====================================================================================

A link is sure only where one source character alone says the target character (a digit written as the
same digit). Where a word says a digit or a field (a month's name, "zwanzig"), every character of it is a
possible link and none is sure: a model that looks at any letter of the right word is right, and a perfect
aligner scores AER 0 (with every letter sure, one link per output character could never reach it). So the
``numbers`` task has possible links only, and its AER is ``1 -`` the precision of the predicted links.

Example:
    >>> sure, possible = gold_alignment("reverse", "abc", "cba")
    >>> sure.int().tolist()
    [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    >>> sure, possible = gold_alignment("numbers", "einundzwanzig", "21")
    >>> "".join(c for c, s in zip("einundzwanzig", possible[0]) if s), bool(sure.any())   # the "2"
    ('undzwanzig', False)
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from difflib import SequenceMatcher

import torch

from attnkit.data.dates import DATE_FORMATS, render_with_spans
from attnkit.data.numbers import NUMBER_LANGUAGES, number_words
from attnkit.data.phrases import phrase_alignment
from attnkit.data.toy import TOY_TASKS, toy_target

Links = tuple[torch.Tensor, torch.Tensor]  # (sure, possible), bool (T_out, T_in) each


def _links(t_out: int, t_in: int, sure: list[tuple[int, int]], possible: list[tuple[int, int]]) -> Links:
    s = torch.zeros(t_out, t_in, dtype=torch.bool)
    p = torch.zeros(t_out, t_in, dtype=torch.bool)
    for t, j in sure:
        s[t, j] = True
    for t, j in possible:
        p[t, j] = True
    return s, p | s


def toy_alignment(task: str, source: str, target: str) -> Links:
    """Gold links of ``copy``, ``reverse`` and ``sort`` (rules in the module docstring).

    Example:
        >>> sure, possible = toy_alignment("sort", "bab", "abb")
        >>> sure.int().tolist(), possible.int().tolist()
        ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [[0, 1, 0], [1, 0, 1], [1, 0, 1]])
    """
    if target != toy_target(task, source):
        raise ValueError(f"Expected the {task} target of {source!r}. Received: {target!r}")
    n = len(source)
    if task != "sort":
        return _links(n, n, [(t, t if task == "copy" else n - 1 - t) for t in range(n)], [])
    sure, possible = [], []
    for t, c in enumerate(target):
        where = [j for j, s in enumerate(source) if s == c]
        (sure if len(where) == 1 else possible).extend((t, j) for j in where)
    return _links(n, n, sure, possible)


# -- dates ---------------------------------------------------------------------------------------------

def _find_date_format(source: str, target: str) -> list[tuple[str, int, int]]:
    try:
        d = datetime.date.fromisoformat(target)
    except ValueError:
        raise ValueError(f"Expected an ISO date target YYYY-MM-DD. Received: {target!r}") from None
    for fmt in DATE_FORMATS:
        for lowercase in (True, False):
            text, spans = render_with_spans(d, fmt, lowercase)
            if text == source:
                return spans
    raise ValueError(f"Expected a source written in one of the dates task's formats for {target}. "
                     f"Received: {source!r}")


def dates_alignment(source: str, target: str) -> Links:
    """Gold links of ``dates``: ISO digits -> the year, month and day fields (rules in the module docstring).

    Example:
        >>> sure, possible = dates_alignment("4 de marzo de 2031", "2031-03-04")
        >>> ["".join(c for c, s in zip("4 de marzo de 2031", row) if s) for row in sure]
        ['2', '0', '3', '1', '', '', '', '', '', '4']
        >>> "".join(c for c, s in zip("4 de marzo de 2031", possible[5]) if s)   # a month digit
        'marzo'
        >>> possible[8].nonzero().flatten().tolist()   # the day's "0": possible on the "4"
        [0]
    """
    sure, possible = [], []
    targets = {"y": range(0, 4), "M": range(5, 7), "L": range(5, 7), "d": range(8, 10)}
    for field, a, b in _find_date_format(source, target):
        rows = targets.get(field[0])
        if rows is None:
            continue  # weekdays (E, c) say nothing the digits do not
        if source[a:b].isdigit():  # right-aligned digits; missing leading digits are possible on all
            for k, t in enumerate(reversed(rows)):
                if k < b - a:
                    sure.append((t, b - 1 - k))
                else:
                    possible += [(t, j) for j in range(a, b)]
        else:  # a month name: both digits on every letter, none alone sure
            possible += [(t, j) for t in rows for j in range(a, b)]
    return _links(len(target), len(source), sure, possible)


# -- numbers -------------------------------------------------------------------------------------------

MIN_MATCH = 3  # common runs shorter than this count as changed (single letters match by chance)


def _changed(words: str, other: str) -> set[int]:
    """Positions of ``words`` outside the runs of >= MIN_MATCH characters it shares with ``other``."""
    kept = set()
    for block in SequenceMatcher(None, words, other, autojunk=False).get_matching_blocks():
        if block.size >= MIN_MATCH:
            kept.update(range(block.a, block.a + block.size))
    return set(range(len(words))) - kept


def numbers_alignment(source: str, target: str) -> Links:
    """Gold links of ``numbers``: each digit -> the characters that change when it alone is set to 0.

    Example:
        >>> sure, possible = numbers_alignment("dos mil treinta y uno", "2031")
        >>> ["".join(c for c, s in zip("dos mil treinta y uno", row) if s) for row in possible]
        ['dosmil', '', 'treintay', 'yuno']
    """
    if not target.isdigit():
        raise ValueError(f"Expected a target of digits. Received: {target!r}")
    lang = next((g for g in NUMBER_LANGUAGES if number_words(int(target), g) == source), None)
    if lang is None:
        raise ValueError(f"Expected {source!r} to be {target} in words in one of {NUMBER_LANGUAGES}")
    spans: list[set[int]] = []
    for t, digit in enumerate(target):
        if digit == "0":  # says nothing, unless it is the whole number ("null" -> "0")
            spans.append({j for j, c in enumerate(source) if not c.isspace()} if target == "0" else set())
            continue
        zeroed = int(target[:t] + "0" + target[t + 1:])
        spans.append({j for j in _changed(source, number_words(zeroed, lang)) if not source[j].isspace()})
    possible = [(t, j) for t, span in enumerate(spans) for j in span]  # words: no letter alone is sure
    return _links(len(target), len(source), [], possible)


GOLD_ALIGNMENTS: dict[str, Callable[[str, str], Links]] = {
    "dates": dates_alignment,
    "numbers": numbers_alignment,
    "phrases": phrase_alignment,
    **{task: (lambda s, t, task=task: toy_alignment(task, s, t)) for task in TOY_TASKS},
}
"""Task name -> ``(source, target) -> (sure, possible)``; the tasks whose gold alignments are known."""

WORD_LEVEL: frozenset[str] = frozenset({"phrases"})
"""The tasks whose gold links join words (``text.split()``); the others join characters."""


def alignment_units(task: str, text: str) -> list[str]:
    """The positions a gold alignment of ``task`` indexes: the words of ``text`` for a word-level task
    (``phrases``), else its characters.

    Example:
        >>> alignment_units("phrases", "Ana va al cine"), alignment_units("copy", "ab")
        (['Ana', 'va', 'al', 'cine'], ['a', 'b'])
    """
    return text.split() if task in WORD_LEVEL else list(text)


def gold_alignment(task: str, source: str, target: str) -> Links:
    """Sure and possible links of one pair of a built-in task, bool ``(len(target), len(source))`` each.

    Rules per task, with examples, in the module docstring. ``possible`` includes ``sure``.

    Raises:
        ValueError: a task without gold alignments (a user's TSV file), or a pair the task cannot produce.

    Example:
        >>> sure, possible = gold_alignment("copy", "ab", "ab")
        >>> sure.int().tolist(), bool((possible == sure).all())
        ([[1, 0], [0, 1]], True)
    """
    rule = GOLD_ALIGNMENTS.get(str(task))
    if rule is None:
        raise ValueError(f"Expected a task with gold alignments, one of {sorted(GOLD_ALIGNMENTS)}. "
                         f"Received: {str(task)!r}")
    return rule(source, target)


__all__ = ["GOLD_ALIGNMENTS", "WORD_LEVEL", "alignment_units", "dates_alignment", "gold_alignment", "numbers_alignment",
           "phrase_alignment", "toy_alignment"]
