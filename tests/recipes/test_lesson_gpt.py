"""``attnkit lesson gpt``: causal attention and next-word distributions of the tiny GPT."""

from __future__ import annotations

import pytest
import torch

from attnkit.recipes.lesson_gpt import gpt_lesson, gpt_panels, words


def test_causal_attention_and_distributions():
    r = gpt_lesson("Ana va al cine.", steps=3)
    t = len(r["tokens"])
    assert r["tokens"] == ["<|endoftext|>", "ana", "va", "al", "cine", "."] and r["attention"].shape[-1] == t
    assert torch.equal(r["causal"], torch.tensor([[k <= q for k in range(t)] for q in range(t)]))
    assert float(torch.triu(r["attention"], diagonal=1).abs().max()) == 0.0  # no word sees a later one
    torch.testing.assert_close(r["probs"].sum(-1), torch.ones(t))
    assert len(gpt_panels(r)) == 4


def test_words_outside_the_story_are_refused():
    assert words("Le gustan los nachos.")[-1] == "."
    with pytest.raises(ValueError, match="Expected words of the story"):
        gpt_lesson("Ana come pizza", steps=1)
