"""Word-level attention: merged word pieces and hidden special tokens against naive float64 loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnkit.viz.interpret import attention_rollout
from attnkit.viz.record import AttentionRecord
from attnkit.viz.report import build_figures, token_index
from attnkit.viz.wordpieces import hide, is_special, merge_pieces, word_groups, word_level, word_text

TOKENS = ["[CLS]", "ana", "ve", "pel", "##ic", "##ula", "en", "ci", "##ne", "[SEP]"]  # T = 10, W = 7 words
WORDS = ["[CLS]", "ana", "ve", "pelicula", "en", "cine", "[SEP]"]


def _naive_merge(a: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """A word receives the sum of its pieces' weights and gives their average: plain loops, float64."""
    w = len(groups)
    out = np.zeros((w, w))
    for x, gx in enumerate(groups):
        for y, gy in enumerate(groups):
            out[x, y] = sum(a[i, j] for i in gx for j in gy) / len(gx)
    return out


def _naive_hide(m: np.ndarray, keep: list[int]) -> np.ndarray:
    out = np.zeros((len(keep), len(keep)))
    for r, x in enumerate(keep):
        total = sum(m[x, y] for y in keep)
        for c, y in enumerate(keep):
            out[r, c] = m[x, y] / total
    return out


def _matrix(tq: int, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).random((tq, tq)) ** 3
    return a / a.sum(1, keepdims=True)


def test_groups_follow_the_continuation_marks():
    assert word_groups(TOKENS) == [[0], [1], [2], [3, 4, 5], [6], [7, 8], [9]]
    assert word_groups(["##x", "a"]) == [[0], [1]]  # a leading piece starts a word
    assert [is_special(t) for t in ("[CLS]", "[SEP]", "[PAD]", "<s>", "cine", "##ne")] == [True] * 4 + [False] * 2


def test_byte_level_words_start_with_a_space():
    tokens = ["Ana", " va", " al", " ci", "ne", " pel", "ic", "ula", "<|endoftext|>"]
    assert word_groups(tokens) == [[0], [1], [2], [3, 4], [5, 6, 7], [8]]
    assert [word_text(tokens, g) for g in word_groups(tokens)] == ["Ana", "va", "al", "cine", "pelicula",
                                                                  "<|endoftext|>"]


def test_merge_matches_naive_float64_on_a_hand_made_matrix():
    a = _matrix(len(TOKENS))
    groups = word_groups(TOKENS)
    got = merge_pieces(torch.tensor(a), groups).numpy()
    np.testing.assert_allclose(got, _naive_merge(a, groups), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-12)  # rows still sum to 1


def test_merge_by_hand():
    a = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])  # tokens: x, y, ##z
    got = merge_pieces(torch.tensor(a), word_groups(["x", "y", "##z"])).numpy()
    # row "yz" = average of rows y and ##z: received by x (0.1 + 0.2) / 2, by yz (0.6 + 0.3 + 0.2 + 0.6) / 2
    np.testing.assert_allclose(got, [[0.5, 0.5], [0.15, 0.85]], atol=1e-12)


def test_hide_renormalises_over_the_words_shown():
    groups = word_groups(TOKENS)
    m = _naive_merge(_matrix(len(TOKENS), 1), groups)
    keep = [1, 2, 3, 4, 5]
    np.testing.assert_allclose(hide(torch.tensor(m), keep).numpy(), _naive_hide(m, keep), atol=1e-12)


def _record() -> AttentionRecord:
    g = torch.Generator().manual_seed(4)
    layers = tuple(torch.softmax(2 * torch.randn(3, len(TOKENS), len(TOKENS), generator=g), -1) for _ in range(2))
    return AttentionRecord("bert", TOKENS, layers)


def test_word_record_merges_each_layer_and_the_rollout_of_the_pieces():
    rec = _record()
    words = word_level(rec, merge=True, hide_special=True, methods=("rollout",))
    assert words.tokens == WORDS[1:-1]
    groups, keep = word_groups(TOKENS), [1, 2, 3, 4, 5]
    for layer, a in enumerate(rec.attentions):
        for h in range(3):
            want = _naive_hide(_naive_merge(a[h].double().numpy(), groups), keep)
            np.testing.assert_allclose(words.attentions[layer][h].double().numpy(), want, atol=1e-6)
    rollout = attention_rollout(rec.batched())[0].double().numpy()  # rollout of the pieces, then merged
    np.testing.assert_allclose(words.derived["rollout"].numpy(), _naive_hide(_naive_merge(rollout, groups), keep),
                               atol=1e-9)
    assert any("renormalised" in n for n in words.notes) and any("sum of its pieces" in n for n in words.notes)


def test_the_pictures_state_the_renormalisation_and_token_picks_a_row():
    words = word_level(_record(), merge=True, hide_special=True)
    figs = build_figures(words, "rollout", token="cine")
    assert "renormalised" in figs["attention"]._suptitle.get_text().replace("\n", " ")
    bars = figs["token"].axes[0]
    heights = [p.get_width() for p in bars.patches]
    np.testing.assert_allclose(heights, words.derived["rollout"][token_index(words.tokens, "cine")].numpy(), atol=1e-9)
    assert "'cine' (token 4)" in figs["token"]._suptitle.get_text()


def test_token_errors_are_named():
    with pytest.raises(ValueError, match="Expected --token between 0 and 2"):
        token_index(["a", "b", "c"], 7)
    with pytest.raises(ValueError, match="one of the tokens"):
        token_index(["a", "b"], "zebra")
