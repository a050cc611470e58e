"""PNG pictures: valid images of the requested pixel size, growing with the number of tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from attnkit.viz.plots import alignment_figure, save_alignment_png, save_line_plot


def test_alignment_png_has_the_requested_size(tmp_path):
    w = torch.softmax(torch.randn(5, 7), dim=-1)
    path = save_alignment_png(w, list("12345"), list("abcdefg"), tmp_path / "a" / "align.png", title="t",
                              figsize=(4.0, 3.0), dpi=50)
    with Image.open(path) as im:
        im.verify()                                          # a well-formed PNG
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (200, 150)  # 4 in x 50 dpi, 3 in x 50 dpi
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.std() > 10                                 # not a blank canvas
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["align.png"]  # no temporary file left


def test_default_size_grows_with_tokens(tmp_path):
    small = save_alignment_png(np.eye(3), None, None, tmp_path / "s.png", dpi=40)
    big = save_alignment_png(np.eye(30), None, None, tmp_path / "b.png", dpi=40)
    with Image.open(small) as s, Image.open(big) as b:
        assert b.size[0] > s.size[0] and b.size[1] > s.size[1]


def test_figure_carries_the_token_labels():
    fig = alignment_figure([[0.2, 0.8]], ["2021"], ["dos", "mil"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dos", "mil"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2021"]
    assert np.allclose(ax.images[0].get_array(), [[0.2, 0.8]])


def test_line_plot_png(tmp_path):
    path = save_line_plot({"attention": ([10, 20, 40], [0.99, 0.98, 0.97]),
                           "no attention": ([10, 20, 40], [0.95, 0.7, 0.3])},
                          tmp_path / "len.png", xlabel="input length", ylabel="exact match", dpi=30,
                          figsize=(6, 4))
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (180, 120)


def test_plot_errors_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"series 'a': xs and ys must have the same length. Received: 2 xs, 1 ys"):
        save_line_plot({"a": ([1, 2], [1])}, tmp_path / "x.png", xlabel="x", ylabel="y")
    with pytest.raises(ValueError, match="at least one name"):
        save_line_plot({}, tmp_path / "x.png", xlabel="x", ylabel="y")
    with pytest.raises(ValueError, match=r"Received shape: \(4,\)"):
        save_alignment_png(torch.zeros(4), None, None, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_gold_links_are_marked_on_their_cells_with_a_legend():
    sure = torch.zeros(3, 5, dtype=torch.bool)  # (Tq, Tk), Tq != Tk so a swapped axis cannot pass
    sure[0, 4], sure[2, 1] = True, True
    possible = sure.clone()
    possible[1, 0] = possible[1, 2] = possible[2, 1] = True  # (2, 1) is sure: no dot on it
    fig = alignment_figure(torch.rand(3, 5), list("abc"), list("vwxyz"), gold=(sure, possible))
    ax = fig.axes[0]
    squares, dots = ax.collections
    assert sorted(map(tuple, squares.get_offsets().tolist())) == [(1.0, 2.0), (4.0, 0.0)]  # (column, row)
    assert sorted(map(tuple, dots.get_offsets().tolist())) == [(0.0, 1.0), (2.0, 1.0)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gold link (sure)", "gold link (possible)"]
    with pytest.raises(ValueError, match=r"Expected gold links of the weights' shape \(3, 5\). Received: sure \(5, 3\)"):
        alignment_figure(torch.rand(3, 5), gold=(sure.T, possible.T))
