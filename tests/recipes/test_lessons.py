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
