"""Reading pictures: every mode becomes (H, W, 3) uint8 RGB by a known rule, bad files give one clear error;
and the Flickr8k-layout captions reader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import attnkit.data.images as images_module
from attnkit.data.captions import CaptionStream, read_captions, split_by_image
from attnkit.data.images import as_rgb, read_image, to_rgb
from attnkit.errors import InputError


def test_grayscale_file_is_copied_to_three_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert all(np.array_equal(out[..., c], gray) for c in range(3))


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = [200, 100, 0, 255]  # opaque
    rgba[0, 1] = [0, 0, 0, 0]  # transparent
    rgba[1, 0] = [100, 100, 100, 128]  # half: 100 * 128/255 + 255 * 127/255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out[0, 0].tolist() == [200, 100, 0] and out[0, 1].tolist() == [255, 255, 255]
    assert out[1, 0].tolist() == [round(100 * 128 / 255 + 255 * 127 / 255)] * 3


def test_16_bit_grayscale_is_scaled_by_its_range(tmp_path):
    values = np.array([[0, 257, 65535], [32768, 1000, 60000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    out = read_image(tmp_path / "deep.png")
    expected = np.round(values.astype(float) * 255 / 65535).astype(np.uint8)
    assert np.array_equal(out[..., 0], expected) and np.array_equal(out[..., 2], expected)


def test_palette_cmyk_and_arrays(tmp_path):
    Image.new("CMYK", (3, 2), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # CMYK red
    red = read_image(tmp_path / "c.jpg")
    assert red.shape == (2, 3, 3) and red[0, 0, 0] > 200 and red[0, 0, 1] < 60
    Image.new("P", (2, 2), 0).save(tmp_path / "p.gif")
    assert read_image(tmp_path / "p.gif").shape == (2, 2, 3)
    assert to_rgb(np.ones((2, 2), dtype=bool)).max() == 255
    assert to_rgb(np.full((1, 1, 3), 0.5)).tolist() == [[[128, 128, 128]]]
    assert as_rgb(Image.new("LA", (1, 1), (10, 255))).tolist() == [[[10, 10, 10]]]
    with pytest.raises(InputError, match=r"Expected an image of shape .* Received: \(2, 2, 5\)"):
        to_rgb(np.zeros((2, 2, 5)))


def test_bad_files_are_named(tmp_path, monkeypatch):
    (tmp_path / "notes.jpg").write_text("not a picture")
    with pytest.raises(InputError, match=r"notes\.jpg: not an image file Pillow can read"):
        read_image(tmp_path / "notes.jpg")
    Image.new("RGB", (64, 64), "red").save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    with pytest.raises(InputError, match=r"cut\.png: "):
        read_image(tmp_path / "cut.png")
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(InputError, match="Received: a directory"):
        read_image(tmp_path)
    monkeypatch.setattr(images_module, "MAX_PIXELS", 1000)
    with pytest.raises(InputError, match=r"whole\.png: image too large \(64 x 64 = 4,096 pixels\)"):
        read_image(tmp_path / "whole.png")


def test_captions_file_flickr8k_layout(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    (tmp_path / "captions.txt").write_text("# comment\na.jpg#0\tA Dog  runs .\n\na.jpg#1\ta dog\nb.jpg\tTwo cats\n")
    recs = read_captions(tmp_path / "captions.txt")
    assert [(r.image, r.caption, r.line) for r in recs] == [("a.jpg", "a dog runs .", 2), ("a.jpg", "a dog", 4),
                                                            ("b.jpg", "two cats", 5)]
    train, valid = split_by_image(recs, seed=0)
    assert {r.image for r in train}.isdisjoint({r.image for r in valid}) and len(train) + len(valid) == 3


@pytest.mark.parametrize("text, message", [
    ("a.jpg\tok\nb.jpg\tfine\nc.jpg\tmissing\n", r"captions\.txt line 3: image 'c\.jpg' not found"),
    ("a.jpg\tok\nb.jpg\t   \n", r"captions\.txt line 2: empty caption for image 'b\.jpg'"),
    ("a.jpg a caption without a tab\n", r"captions\.txt line 1: Expected image<TAB>caption"),
    ("\n# nothing\n", r"captions\.txt: no captions"),
])
def test_captions_file_problems_name_the_line(tmp_path, text, message):
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    (tmp_path / "captions.txt").write_text(text)
    with pytest.raises(InputError, match=message):
        read_captions(tmp_path / "captions.txt")


def test_caption_stream_pads_and_resumes():
    import torch

    feats = torch.arange(3.0)[:, None].expand(3, 2)
    s = CaptionStream(feats, [[1, 5, 2], [1, 6, 7, 2], [1, 2]], [0, 2, 1], batch_size=2, seed=3)
    b = next(s)
    assert b.tgt_in.shape == b.tgt_out.shape and bool((b.tgt_in[:, 0] == 1).all())
    state = s.state_dict()
    nxt = next(s)
    t = CaptionStream(feats, [[1, 5, 2], [1, 6, 7, 2], [1, 2]], [0, 2, 1], batch_size=2, seed=3)
    t.load_state_dict(state)
    assert torch.equal(next(t).tgt_out, nxt.tgt_out)
