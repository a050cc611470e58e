"""The demo's pictures mark the gold links on the translation's token grid (<sos>/<eos> carry none)."""

from __future__ import annotations

import torch

from attnkit.data import gold_alignment
from attnkit.recipes.alignment import gold_on_grid


def test_gold_links_sit_on_the_character_cells_of_the_grid():
    source, reference = "4 de marzo de 2031", "2031-03-04"
    grid = torch.rand(len(reference) + 1, len(source) + 2)  # (T_out + <eos>, <sos> + S + <eos>)
    sure, possible = gold_on_grid("dates", source, reference, {"output": reference, "alignment": grid})
    gold_sure, gold_possible = gold_alignment("dates", source, reference)
    assert sure.shape == possible.shape == grid.shape
    assert torch.equal(sure[:-1, 1:-1], gold_sure) and torch.equal(possible[:-1, 1:-1], gold_possible)
    assert not sure[-1].any() and not possible[:, [0, -1]].any()  # the <eos> row, <sos>/<eos> columns
    source_of = {j - 1 for j in possible[5].nonzero().flatten().tolist()}  # the first month digit
    assert "".join(source[j] for j in sorted(source_of)) == "marzo"


def test_no_gold_links_on_a_wrong_translation_or_another_grid():
    grid = torch.rand(11, 20)
    assert gold_on_grid("dates", "4 de marzo de 2031", "2031-03-04", {"output": "2031-03-05", "alignment": grid}) is None
    assert gold_on_grid("dates", "4 de marzo de 2031", "2031-03-04", {"output": "2031-03-04",
                                                                       "alignment": torch.rand(3, 3)}) is None
