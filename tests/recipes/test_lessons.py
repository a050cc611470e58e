"""The lessons' measurements and encodings against their definitions (float64 loops, known properties)."""

from __future__ import annotations

import math

import numpy as np
import torch

from attnkit.models import Bert
from attnkit.models.bert import BertConfig
from attnkit.recipes.lessons import cost_note, cost_rows, learned_positions, position_encodings
from attnkit.viz.lessons import similarity_by_distance


def test_cost_rows_compute_measure_and_stop_timing_past_the_budget():
    rows = cost_rows((40, 512, 1024, 16384), time_budget=3.0, memory_max=1024)
    assert [r["computed_bytes"] for r in rows] == [4 * t * t for t in (40, 512, 1024, 16384)]
    big = rows[2]
    # the weights (T x T float32) are returned, so at least the scores are held; softmax and output add a few copies
    assert 4 * 1024 * 1024 <= big["measured_bytes"] <= 8 * 4 * 1024 * 1024
    assert rows[3]["measured_bytes"] is None  # past --memory-max: computed only
    assert all(r["seconds"] > 0 for r in rows[:3])
    assert rows[3]["seconds"] is None and rows[3]["predicted_seconds"] > big["seconds"] * 200  # 256 x the scores
    assert "T >= 16384 not timed" in cost_note(rows)


def _naive_sinusoid(t: int, d: int) -> np.ndarray:
    out = np.zeros((t, d))
    for pos in range(t):
        for i in range(d):
            angle = pos / 10000 ** ((i - i % 2) / d)
            out[pos, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    return out


def test_encodings_follow_their_definitions():
    t, d = 20, 12
    enc, notes = position_encodings(t, d)
    np.testing.assert_allclose(enc["sinusoidal (Vaswani et al. 2017)"].numpy(), _naive_sinusoid(t, d), atol=1e-12)
    # RoPE: <R_m u, R_n u> for a unit vector u = ones / sqrt(d) is the mean of cos((m - n) theta_i), theta_i = 10000^(-2i/d)
    theta = 10000.0 ** (-np.arange(0, d, 2) / d)
    want = [np.mean(np.cos(k * theta)) for k in range(t)]
    np.testing.assert_allclose(similarity_by_distance(enc["RoPE (Su et al. 2021)"].numpy()), want, atol=1e-12)
    assert "no --model given" in notes["learned (untrained: random init)"]


def test_similarity_by_distance_matches_loops():
    e = np.random.default_rng(0).normal(size=(9, 5))
    unit = e / np.linalg.norm(e, axis=1, keepdims=True)
    want = [np.mean([unit[p] @ unit[p + k] for p in range(9 - k)]) for k in range(9)]
    np.testing.assert_allclose(similarity_by_distance(e), want, atol=1e-12)


def test_learned_positions_come_from_the_model():
    torch.manual_seed(0)
    bert = Bert(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=10, max_position_embeddings=14))
    got = learned_positions(bert)
    assert torch.equal(got, bert.embeddings.position_embeddings.weight.detach())
    enc, notes = position_encodings(10, 6, got, "tiny-bert")
    assert enc["learned (tiny-bert)"].shape == (10, 8) and "first 10 of 14 positions" in notes["learned (tiny-bert)"]


def test_score_lesson_gives_each_score_functions_weights_as_their_definitions():
    from attnkit.recipes.lessons import SCORE_LESSON, score_lesson

    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 5, generator=g)  # T = 6 words of width D = 5: a swapped axis cannot pass
    w = score_lesson(x, seed=3)
    assert list(w) == list(SCORE_LESSON)
    x64 = x.double()
    unit = x64 / x64.norm(dim=-1, keepdim=True)
    expected = {"dot": x64 @ x64.T, "scaled dot": x64 @ x64.T / math.sqrt(5), "cosine": unit @ unit.T}
    for name, scores in expected.items():
        torch.testing.assert_close(w[name].double(), torch.softmax(scores, dim=-1), atol=1e-6, rtol=1e-6)
    torch.manual_seed(3)  # the general score's parameters, drawn as score_lesson draws them (first)
    from attnkit.layers.scores import GeneralScore

    general = GeneralScore(5, 5)
    w_a = next(general.parameters()).detach().double()  # (D, D)
    torch.testing.assert_close(w["general"].double(), torch.softmax(x64 @ w_a @ x64.T, dim=-1), atol=1e-6, rtol=1e-6)
    for name in SCORE_LESSON:
        torch.testing.assert_close(w[name].sum(-1), torch.ones(6), atol=1e-6, rtol=0)  # every query's weights sum to 1
    hard = w["hard"]
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(hard.argmax(-1), (x64 @ x64.T / math.sqrt(5)).argmax(-1))  # the scaled dot's most likely key
    assert not torch.allclose(w["location"][0], w["location"][1])  # location: rows differ by the query alone
