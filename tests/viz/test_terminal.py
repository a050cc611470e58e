"""Terminal heatmaps: labels on rows and columns, the darkest cell where the weight is largest."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from rich.console import Console

from attnkit.viz.terminal import SHADES, heatmap_text, print_heatmap


def _body(text, n_rows):
    lines = [line for line in text.splitlines() if "│" in line]
    assert len(lines) == n_rows
    return [line.split("│", 1) for line in lines]


def test_row_labels_and_shades_follow_the_weights():
    # hand-made alignment (Tq=4 outputs, Tk=5 inputs): output i looks at input perm[i]
    perm = [2, 0, 4, 1]
    w = torch.full((4, 5), 0.0)
    for i, j in enumerate(perm):
        w[i, j] = 1.0
    w[0, 1] = 0.5
    text = heatmap_text(w, ["w", "x", "y", "z"], ["a", "b", "c", "d", "e"])
    for i, (label, cells) in enumerate(_body(text, 4)):
        assert label.strip() == "wxyz"[i]
        pairs = [cells[k:k + 2] for k in range(0, 10, 2)]
        assert pairs[perm[i]] == "██"                        # weight 1 -> full block
        if i == 0:
            assert pairs[1] == SHADES[2] * 2                 # weight 0.5 -> middle shade
    header = text.splitlines()[0]
    assert [c for c in header.split()] == ["a", "b", "c", "d", "e"]


def test_word_columns_are_numbered_with_a_key_not_spelled_downwards():
    text = heatmap_text(np.eye(2, 3), ["uno", "dos"], ["one", "two", "six"])  # Tq=2, Tk=3
    lines = text.splitlines()
    assert lines[0].split() == ["0", "1", "2"]  # one header line, not one letter per line
    assert [line.split("│")[0].strip() for line in lines[1:3]] == ["uno", "dos"]
    assert lines[1].split("│")[1] == "██    " and lines[2].split("│")[1] == "  ██  "
    assert lines[3].strip() == "columns: 0 one · 1 two · 2 six"


def test_values_mode_prints_percentages_and_spaces_are_visible():
    w = [[0.25, 0.75, 0.0], [1.0, 0.0, 0.0]]  # Tq=2, Tk=3
    text = heatmap_text(w, ["a", "b"], ["x", " ", "y"], show_values=True)
    rows = _body(text, 2)
    assert rows[0][1].split() == ["25", "75", "0"] and rows[1][1].split() == ["##", "0", "0"]
    assert "␣" in text.splitlines()[0]


def test_print_heatmap_writes_colour_to_a_console():
    buf = io.StringIO()
    print_heatmap(torch.tensor([[0.1, 0.9]]), ["t"], ["p", "q"], title="alignment",
                  console=Console(file=buf, force_terminal=True, color_system="truecolor", width=80))
    out = buf.getvalue()
    assert "alignment" in out and "\x1b[" in out             # ANSI colour codes
    assert "rgb" not in out                                  # styles were rendered, not printed


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"2-D matrix \(Tq, Tk\).*Received shape: \(2, 3, 4\)"):
        heatmap_text(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"column labels must match the weights' columns \(Tk\): expected 3 labels. Received: 2"):
        heatmap_text(torch.zeros(2, 3), ["a", "b"], ["x", "y"])
    with pytest.raises(ValueError, match=r"row labels must match the weights' rows \(Tq\): expected 2 labels. Received: 1"):
        heatmap_text(torch.zeros(2, 3), ["a"], None)
    with pytest.raises(TypeError, match="labels must be a sequence of tokens, not one string"):
        heatmap_text(torch.zeros(2, 3), "ab", None)
    with pytest.raises(ValueError, match="must be finite. Received 1 NaN/inf"):
        heatmap_text(torch.tensor([[0.5, float("nan")]]))
