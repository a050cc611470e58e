"""``attnkit train classifier --data file.csv --text-column C --label-column L``: a CSV whose columns have other
names (as exported from a spreadsheet or a Kaggle set) reads the same texts and labels as Python's
``csv.DictReader``; an absent column is one line naming the columns the file has, exit code 2."""

from __future__ import annotations

import csv
import json

from attnkit.cli.main import main
from attnkit.data.news import read_labeled_csv
from tests.cli.test_classify_cli import TINY, write_csv


def _renamed(src, dst):
    """The CSV of ``write_csv`` with columns id, Review, extra, Sentiment (quotes kept by csv.writer)."""
    rows = list(csv.DictReader(src.open(encoding="utf-8", newline="")))
    with dst.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "Review", "extra", "Sentiment"])
        for i, r in enumerate(rows):
            w.writerow([i, r["text"], "x,y", r["label"]])
    return dst


def test_columns_read_like_dictreader(tmp_path):
    path = _renamed(write_csv(tmp_path / "news.csv"), tmp_path / "reviews.csv")
    data = read_labeled_csv(path, text_column="review", label_column="SENTIMENT")  # case-insensitive
    rows = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    assert data.texts == [r["Review"].strip() for r in rows] and data.labels == [r["Sentiment"] for r in rows]


def test_train_with_named_columns(tmp_path):
    data, out = _renamed(write_csv(tmp_path / "news.csv"), tmp_path / "reviews.csv"), tmp_path / "run"
    steps = [a if a != "40" else "2" for a in TINY]
    code = main(["train", "classifier", "--data", str(data), "--text-column", "Review", "--label-column",
                 "Sentiment", "--out", str(out), "--min-frequency", "1", *steps])
    assert code == 0
    spec = json.loads((out / "run.json").read_text())
    assert (spec["text_column"], spec["label_column"]) == ("Review", "Sentiment")
    assert json.loads((out / "report.json").read_text())["sizes"] == {"train": 21, "validation": 3, "test": 6}


def test_absent_column_names_the_available_ones(tmp_path, capsys):
    data, out = _renamed(write_csv(tmp_path / "news.csv"), tmp_path / "reviews.csv"), tmp_path / "run"
    capsys.readouterr()
    assert main(["train", "classifier", "--data", str(data), "--text-column", "body", "--label-column",
                 "sentiment", "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(data) in err
    assert "missing column 'body'" in err and "(--text-column / --label-column)" in err
    assert "Available columns: 'id', 'Review', 'extra', 'Sentiment'" in err
    assert not out.exists()
    assert main(["train", "classifier", "--data", str(data), "--out", str(out), *TINY]) == 2  # default: text, label
    assert "missing columns 'text', 'label'" in capsys.readouterr().err
