"""Every kind of figure attnkit writes, rendered and inspected as a matplotlib ``Figure``.

One table row per figure function under ``attnkit.viz`` and ``attnkit.experiments`` (a test checks the table
misses none): each data axes has labels on both axes (or the figure has shared ones), a figure that shows
weights has a colour bar no taller than the matrices it belongs to, and a title stays inside the picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from attnkit.experiments.captioner import scene_figure
from attnkit.experiments.harness import Experiment, Panel, Table, aggregate, figure
from attnkit.experiments.length import PANELS, TABLES
from attnkit.viz import lessons
from attnkit.viz.figures import heads_grid_figure, heatmaps_figure, token_figure
from attnkit.viz.panels import example_panels, panels_figure
from attnkit.viz.plots import alignment_figure, line_figure
from attnkit.viz.record import AttentionRecord
from attnkit.viz.report import regions_figure
from attnkit.viz.words import words_figure

SRC = Path(__file__).resolve().parents[2] / "src" / "attnkit"
LONG = "a rather long translation that would run off the picture if nobody wrapped it " * 3
G = np.random.default_rng(0)


def _rows(tq: int, tk: int) -> np.ndarray:
    w = G.random((tq, tk))
    return w / w.sum(1, keepdims=True)


def _harness() -> object:
    per_seed = [[{"model": m, "bucket": "0-10", "centre": c, "pairs": 5, "exact_match": 0.5, "token_accuracy": 0.6}
                 for m in ("none", "bahdanau") for c in (5.0, 15.0)]]
    exp = Experiment("length", LONG, TABLES, PANELS, run=lambda s: {})
    report = {"seeds": [0], "tables": {"buckets": aggregate(per_seed, TABLES[1].keys, TABLES[1].figures),
                                       "overall": []}}
    return figure(exp, report)


def _regions() -> object:
    image = (np.arange(40 * 60 * 3) % 251).astype(np.uint8).reshape(40, 60, 3)
    rec = AttentionRecord("captioner", [], out_tokens=["a", "red", "ball"],
                          image=image, image_attention=torch.softmax(torch.randn(3, 6), -1), region_grid=(2, 3),
                          output=LONG)
    return regions_figure(rec)


# name -> (build the figure, does it show weights (a colour bar needed))
FIGURES = {
    "alignment_figure": (lambda: alignment_figure(_rows(3, 11), list("abc"), [f"w{i}" for i in range(11)],
                                                  title=LONG), True),
    "line_figure": (lambda: line_figure({"x": ([1, 2], [0.5, 0.7])}, xlabel="length", ylabel="score",
                                        title=LONG), False),
    "heads_grid_figure": (lambda: heads_grid_figure(torch.softmax(torch.randn(2, 3, 5, 5), -1), list("abcde"),
                                                    title=LONG), True),
    "heatmaps_figure": (lambda: heatmaps_figure({"raw": _rows(3, 17), "rollout": _rows(3, 17)}, list("abc"),
                                                col_labels=[f"word{i}" for i in range(17)], title=LONG), True),
    "token_figure": (lambda: token_figure(_rows(1, 9)[0], list("abcdefghi"), query="c"), False),  # bars: the
    # weight axis is the scale
    "token_figure (text)": (lambda: token_figure(_rows(1, 30)[0], [f"w{i}" for i in range(30)], style="text",
                                                 title=LONG), True),
    "regions_figure": (_regions, True),
    "scene_figure": (lambda: scene_figure((np.arange(48 * 48 * 3) % 251).astype(np.uint8).reshape(48, 48, 3),
                                          ["the", "cat"], G.random((2, 3, 3)), LONG), True),
    "figure (experiment harness)": (_harness, False),
    "cost_figure": (lambda: lessons.cost_figure(lessons.example_cost_rows()), False),
    "positions_figure": (lambda: lessons.positions_figure(lessons.example_encodings()), True),
    "panels_figure": (lambda: panels_figure(example_panels(), title=LONG, note=LONG, columns=2), True),
    "words_figure": (lambda: words_figure([0.5, -0.2, 0.1], ["stocks", "fell", "sharply"], title=LONG), True),
}
RASTERS = {"examples_figure": "pastes alignment_figure pictures (checked above) as images, one per model and task"}
"""Figures made of other figures' pictures: what they paste is checked in its own row."""


def _data_axes(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.axison and ax.get_visible()]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_has_labels_colour_scale_and_a_title_inside(name):
    build, shows_weights = FIGURES[name]
    fig = build()
    fig.canvas.draw()
    shared = fig._supxlabel is not None and fig._supylabel is not None
    for ax in _data_axes(fig):
        assert shared or (ax.get_xlabel() and ax.get_ylabel()), (name, ax.get_title())
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    if shows_weights:
        assert bars, f"{name}: weights drawn without a colour scale"
        assert all(b.get_ylabel() or b.get_xlabel() for b in bars), f"{name}: a colour bar without a name"
    images = [ax for ax in _data_axes(fig) if ax.images]
    if images and bars:  # a colour bar is never taller than the matrices it belongs to
        lo = min(ax.get_position().y0 for ax in images)
        hi = max(ax.get_position().y1 for ax in images)
        for b in bars:
            p = b.get_position()
            if p.height > p.width:  # vertical bars
                assert p.y0 >= lo - 0.01 and p.y1 <= hi + 0.01, (name, (p.y0, p.y1), (lo, hi))
    if fig._suptitle is not None:
        box = fig._suptitle.get_window_extent()
        assert box.x0 >= 0 and box.x1 <= fig.bbox.width + 1, f"{name}: the title runs off the picture"


def test_heatmaps_of_a_wide_alignment_are_wide_with_readable_labels():
    fig = heatmaps_figure({"a": _rows(3, 20)}, list("abc"), col_labels=[f"word{i}" for i in range(20)])
    w, h = fig.get_size_inches()
    assert w > 2 * h
    ax = _data_axes(fig)[0]
    assert min(t.get_fontsize() for t in ax.get_xticklabels()) >= 6


def test_token_bars_show_their_values():
    w = np.array([0.1, 0.6, 0.3])
    ax = token_figure(w, ["x", "y", "z"]).axes[0]
    written = sorted(float(t.get_text()) for t in ax.texts)
    assert written == [0.1, 0.3, 0.6]
    assert len(ax.get_xticks()) > 1  # values on the axis


def test_length_legend_names_the_models_for_a_student():
    legend = _harness().axes[0].get_legend()
    assert sorted(t.get_text() for t in legend.get_texts()) == ["Bahdanau attention",
                                                                "no attention (one context vector)"]


def test_overlay_sheet_carries_its_colour_scale():
    from attnkit.viz.overlay import SCALE_HEIGHT, hot_colours, overlay_grid

    image = np.full((20, 30, 3), 128, dtype=np.uint8)
    maps = np.ones((2, 2, 2))
    with_scale, without = overlay_grid(image, maps, ["a", "b"]), overlay_grid(image, maps, ["a", "b"], scale=False)
    assert with_scale.shape[0] == without.shape[0] + SCALE_HEIGHT
    strip = with_scale[without.shape[0] + 7]  # the middle row of the colour bar
    inside = strip[(strip != 255).any(-1)][1:-1].astype(float)  # drop the outline
    want = hot_colours(np.linspace(0, 1, len(inside))) * 255
    assert np.abs(inside - want).max() < 8  # black -> red -> yellow -> white, the overlays' scale


def test_the_table_covers_every_figure_function():
    found = set()
    for part in ("viz", "experiments"):
        for path in (SRC / part).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef) and not node.name.startswith(("_", "save_", "format_")) and (
                        node.name == "figure" or node.name.endswith("_figure")):
                    found.add(node.name)
    covered = {name.split(" ")[0] for name in FIGURES} | set(RASTERS)
    assert found - covered == set()


def test_a_panel_without_names_shows_the_raw_values():
    exp = Experiment("x", "x", (Table("t", "t", ("m", "n"), ("y",)),), (Panel("t", "n", "y", ("m",)),), lambda s: {})
    report = {"seeds": [0], "tables": {"t": aggregate([[{"m": "a", "n": 1, "y": 0.5}]], ("m", "n"), ("y",))}}
    assert [t.get_text() for t in figure(exp, report).axes[0].get_legend().get_texts()] == ["a"]


def test_each_word_overlay_can_carry_the_scale():
    from attnkit.viz.overlay import SCALE_HEIGHT, word_overlays

    image = np.full((20, 200, 3), 128, dtype=np.uint8)
    plain, scaled = word_overlays(image, np.ones((1, 2, 2))), word_overlays(image, np.ones((1, 2, 2)), scale=True)
    assert scaled[0].shape == (20 + SCALE_HEIGHT, 200, 3)
    np.testing.assert_array_equal(scaled[0][:20], plain[0])  # the picture itself unchanged, the scale under it
    assert (scaled[0][20:] != 255).any()
