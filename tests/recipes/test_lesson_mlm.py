"""``attnkit lesson mlm``: the drawn kinds follow the 15% / 80-10-10 rule; NSP pairs are what they say."""

from __future__ import annotations

import torch

from attnkit.recipes.lesson_mlm import EXPECTED, STORY, masking_draws, mlm_lesson, mlm_panels


def test_each_drawn_kind_is_what_the_rule_says():
    ids = torch.tensor([101, 7, 8, 9, 10, 11, 102])
    special = torch.tensor([1, 0, 0, 0, 0, 0, 1]).bool()
    d = masking_draws(ids, special, mask_id=103, vocab_size=50, draws=4000)
    kind, inputs, labels = d["kind"], d["inputs"], d["labels"]
    assert (labels[kind == 0] == -100).all() and (kind[:, special] == 0).all()
    assert (inputs[kind == 1] == 103).all()
    original = ids.expand_as(inputs)
    assert (inputs[kind == 2] != original[kind == 2]).all() and (inputs[kind == 3] == original[kind == 3]).all()
    assert (labels[kind > 0] == original[kind > 0]).all()  # every chosen token is asked back
    share = [float((kind[:, ~special] == k).float().mean()) for k in range(4)]
    for got, want in zip(share, EXPECTED, strict=True):
        assert abs(got - want) < 0.015  # 20,000 tokens: a few standard errors


def test_the_lesson_counts_the_shares_and_pairs_the_story():
    r = mlm_lesson(draws=5, count_draws=2000)
    assert abs(sum(r["share"]) - 1.0) < 1e-6 and len(r["names"]) == 5
    for a, b, label in r["pairs"]:
        i = STORY.index(a)
        assert (STORY.index(b) == i + 1) == (label == 0)  # IsNext exactly when B follows A
    assert len(mlm_panels(r)) == 3
