"""Gold links in the explorer's data and in ``attnkit viz``'s record: the true links of a translation, drawn
over its alignment, known only for a run trained on a built-in task."""

from __future__ import annotations

import json

import pytest
import torch

from attnkit.data import gold_alignment
from attnkit.recipes.records import run_gold
from attnkit.viz.explorer import explorer_data
from attnkit.viz.record import AttentionRecord


def _record(source: str, output: str, gold=None) -> AttentionRecord:
    grid = torch.softmax(torch.randn(len(output) + 1, len(source) + 2, generator=torch.Generator().manual_seed(0)), -1)
    return AttentionRecord("seq2seq", ["<sos>", *source, "<eos>"], out_tokens=[*output, "<eos>"], alignment=grid,
                           output=output, gold=gold)


def test_the_alignment_view_lists_sure_links_and_possible_only_links():
    sure = torch.zeros(4, 5, dtype=torch.bool)
    sure[0, 1] = sure[1, 2] = True
    possible = sure.clone()
    possible[2, 3] = True
    view = explorer_data(_record("abc", "abc", (sure, possible)))["views"]["alignment"]
    assert view["gold"] == {"sure": [[0, 1], [1, 2]], "possible": [[2, 3]]}
    assert "gold" not in explorer_data(_record("abc", "abc"))["views"]["alignment"]


def test_gold_links_of_another_shape_are_refused():
    wrong = torch.zeros(3, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="gold links of the alignment's shape"):
        explorer_data(_record("abc", "abc", (wrong, wrong)))


@pytest.mark.parametrize("task, source, output", [("reverse", "abcde", "edcba"), ("copy", "xyz", "xyz")])
def test_a_run_on_a_built_in_task_knows_its_gold_links(tmp_path, task, source, output):
    (tmp_path / "run.json").write_text(json.dumps({"data": task, "seed": 0}))
    (tmp_path / "model").mkdir()
    sure, possible = run_gold(_record(source, output), source, tmp_path / "model")  # run.json in the parent
    s, p = gold_alignment(task, source, output)
    assert sure.shape == (len(output) + 1, len(source) + 2)
    assert torch.equal(sure[: len(output), 1: len(source) + 1], s) and torch.equal(possible[: len(output), 1: -1], p)
    assert not sure[-1].any() and not sure[:, 0].any() and not sure[:, -1].any()  # <eos> row, <sos>/<eos> columns


@pytest.mark.parametrize("run", [None, {"data": "my.tsv"}, {"data": "copy"}])
def test_no_gold_links_without_a_task_that_has_them_or_an_output_it_can_produce(tmp_path, run):
    if run is not None:
        (tmp_path / "run.json").write_text(json.dumps(run))
    rec = _record("abc", "abd")  # copy cannot produce abc -> abd
    assert run_gold(rec, "abc", tmp_path) is None
