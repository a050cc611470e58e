"""``attnkit train classifier`` and ``attnkit classify`` on a small CSV made here; every bad input is one line
naming the file and line, exit code 2, and nothing written."""

from __future__ import annotations

import json
import random

import pytest

import attnkit
from attnkit.cli.main import main
from attnkit.models.classifier import AttentionClassifier

WORDS = {
    "sport": ["goal", "match", "striker", "league", "coach", "cup"],
    "politics": ["vote", "minister", "election", "party", "law", "budget"],
    "tech": ["software", "chip", "internet", "phone", "computer", "robot"],
}
FILLER = ["the", "a", "today", "new", "said", "after"]
TINY = ["--steps", "40", "--eval-every", "20", "--embed-dim", "8", "--d-model", "8", "--ff-dim", "8",
        "--batch-size", "8", "--lr", "0.02", "--max-len", "12", "--quiet", "--threads", "1"]


def write_csv(path, rows_per_class=10, seed=0):
    rng = random.Random(seed)
    lines = ["text,label"]
    for label, words in WORDS.items():
        for _ in range(rows_per_class):
            text = " ".join(rng.choice(words if i % 2 else FILLER) for i in range(8))
            lines.append(f'"{text}, {rng.choice(FILLER)}",{label}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier")
    data, out = write_csv(root / "news.csv"), root / "run"
    code = main(["train", "classifier", "--data", str(data), "--out", str(out), "--min-frequency", "1", *TINY,
                 "--baseline", "minilm", "--minilm-epochs", "0.1", "--minilm-max-len", "16"])  # one MiniLM step
    return code, out


def test_train_writes_a_model_and_a_report(trained):
    code, out = trained
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["sizes"] == {"train": 21, "validation": 3, "test": 6}
    assert report["steps"] == 40 and 0.0 <= report["test_accuracy"] <= 1.0
    tfidf, minilm = report["baselines"]
    assert tfidf["name"] == "tfidf" and tfidf["C"] in (1.0, 10.0, 100.0) and 0.0 <= tfidf["accuracy"] <= 1.0
    assert minilm["name"] == "minilm" and minilm["steps"] == 1 and 0.0 <= minilm["accuracy"] <= 1.0
    assert report["explained"] <= 6 and (report["explanation"] is None or 0.0 <= report["explanation"] <= 1.0)
    model = attnkit.load(out / "model")
    assert isinstance(model, AttentionClassifier) and model.config.labels == ("politics", "sport", "tech")
    assert (out / "run.json").is_file() and (out / "checkpoint").is_dir()


def test_classify_prints_label_probability_and_words(trained, capsys):
    _, out = trained
    capsys.readouterr()
    assert main(["classify", str(out), "the striker scored in the cup match", "a new phone chip", "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        label, prob, attended = line.split("\t")
        assert label in WORDS and 1 / 3 <= float(prob) <= 1
        words = attended.removeprefix("attended: ").split(", ")
        assert len(words) == 3 and all(w.isalpha() for w in words)


@pytest.mark.parametrize("args, message", [
    (["", ], "text 1 is empty"),
])
def test_classify_bad_input(trained, capsys, args, message):
    _, out = trained
    assert main(["classify", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_classify_needs_a_classifier(tmp_path, capsys):
    assert main(["classify", str(tmp_path / "none"), "text"]) == 2
    assert "does not exist" in capsys.readouterr().err


BAD = {
    "missing column": (b"text,category\nhello,a\n", "line 1: missing column 'label'"),
    "empty text": (b"text,label\nhello,a\n  ,b\n", "line 3: empty text"),
    "empty file": (b"", "line 1: the file is empty"),
    "not utf-8": (b"text,label\nok,a\ncaf\xe9 au lait,b\n", "line 3: not valid UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_train_bad_csv(tmp_path, capsys, case):
    content, message = BAD[case]
    data, out = tmp_path / "bad.csv", tmp_path / "run"
    data.write_bytes(content)
    capsys.readouterr()
    assert main(["train", "classifier", "--data", str(data), "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(data) in err and message in err
    assert not out.exists()


def test_train_label_never_seen_in_training(tmp_path, capsys):
    data, test, out = write_csv(tmp_path / "train.csv"), tmp_path / "test.csv", tmp_path / "run"
    test.write_text("text,label\nthe goal,sport\nnew fusion reactor,science\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["train", "classifier", "--data", str(data), "--test", str(test), "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{test}: line 3: label 'science' was never seen in training" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_train_unknown_baseline_and_model_option(tmp_path, capsys):
    data, out = write_csv(tmp_path / "train.csv"), tmp_path / "run"
    assert main(["train", "classifier", "--data", str(data), "--out", str(out), "--baseline", "gpt4", *TINY]) == 2
    assert "--baseline must be one of minilm. Received: 'gpt4'" in capsys.readouterr().err
    assert main(["train", "classifier", "--data", str(data), "--out", str(out), "--kernel-size", "4", *TINY]) == 2
    assert "kernel_size: expected an odd number. Received: 4" in capsys.readouterr().err
    assert not out.exists()


def test_self_attention_option_and_its_old_spelling(tmp_path, capsys):
    data, out = write_csv(tmp_path / "train.csv"), tmp_path / "run"
    assert main(["train", "classifier", "--data", str(data), "--out", str(out), "--self-attention", "luong",
                 *TINY]) == 2
    assert "self_attention: expected one of ('dot', 'multi_head', 'none'). Received: 'luong'" in capsys.readouterr().err
    assert main(["train", "classifier", "--data", str(data), "--out", str(out), "--attention", "dot", *TINY]) == 2
    assert "No such option: --attention" in capsys.readouterr().err
    assert not out.exists()
