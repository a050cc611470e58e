"""`attnkit viz RUN "text" --explain METHOD`: one explanation of a classifier's prediction as words on a colour
scale, its scores those of `attnkit.recipes.explanations`; bad inputs write nothing."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from attnkit.cli.main import main
from attnkit.data.news import train_word_tokenizer
from attnkit.models.bert import Bert, BertConfig
from attnkit.models.classifier import AttentionClassifier, ClassifierConfig
from attnkit.recipes.explanations import ClassifierView, leave_one_out

TEXTS = ["stocks fell sharply today", "the team won the cup final", "shares and bonds rose", "a late goal won it"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.manual_seed(0)
    tok = train_word_tokenizer(TEXTS, min_frequency=1)
    model = AttentionClassifier(ClassifierConfig(labels=("business", "sport"), vocab_size=tok.vocab_size,
                                                 embed_dim=6, d_model=8, ff_dim=4), tok)
    root = tmp_path_factory.mktemp("explain")
    model.save(root / "run" / "model")
    return root / "run", model


@pytest.mark.parametrize("method", ["gradient_x_input", "leave_one_out", "attention"])
def test_explain_writes_a_words_picture_of_the_ranking(run_dir, tmp_path, capsys, method):
    path, model = run_dir
    out = tmp_path / "pic"
    assert main(["viz", str(path), "the team won the cup", "--explain", method, "--out", str(out)]) == 0
    picture = out / f"explain-{method}.png"
    with Image.open(picture) as im:
        assert im.size[0] >= 800  # 9 inches at 100 dpi: the words and their colour bar
    printed = capsys.readouterr().out
    assert str(picture) in printed.replace("\n", "") and "output: " in printed
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [picture.name]  # and bookkeeping


def test_explain_scores_are_those_of_the_recipe(run_dir):
    from attnkit.recipes.explanations import explain_text

    _, model = run_dir
    tokens, scores, label = explain_text(model, "the team won the cup", "leave_one_out")
    view = ClassifierView(model)
    assert tokens == ["the", "team", "won", "the", "cup"]
    torch.testing.assert_close(scores, leave_one_out(view, view.encode("the team won the cup")))
    assert label.split()[0] in ("business", "sport")


def test_explain_refuses_bad_input_and_writes_nothing(run_dir, tmp_path, capsys):
    path, _ = run_dir
    out = tmp_path / "x"
    assert main(["viz", str(path), "the cup", "--explain", "lime", "--out", str(out)]) == 2
    assert "--explain must be one of attention, rollout" in capsys.readouterr().err
    assert main(["viz", str(path), "  ", "--explain", "attention", "--out", str(out)]) == 2
    assert "Expected a non-empty text to explain" in capsys.readouterr().err
    bert = tmp_path / "bert"
    Bert(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=16)).save_pretrained(bert)
    assert main(["viz", str(bert), "the cup", "--explain", "attention", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--explain explains a text classifier" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
