"""Schedules against their formulas, written out here independently, and the lr the trainer really uses."""

from __future__ import annotations

import json
import math

import pytest

from attnkit.training import TrainConfig, Trainer
from attnkit.training.schedules import constant, cosine, inverse_sqrt, linear_warmup, make_schedule, noam
from tests.training.tiny import TinyStream, tiny_model


def test_noam_matches_vaswani_formula():
    d, w = 512, 4000
    for t in [1, 10, 100, 3999, 4000, 4001, 10_000, 100_000]:
        expected = d ** -0.5 * min(t ** -0.5, t * w ** -1.5)  # Vaswani et al. 2017, eq. (3)
        assert noam(t, w, d) == pytest.approx(expected, rel=1e-12)
    # the peak is at t = warmup: d^-0.5 * w^-0.5 = 1 / sqrt(512 * 4000)
    assert noam(w, w, d) == pytest.approx(1 / math.sqrt(512 * 4000), rel=1e-12)
    assert noam(w, w, d) > noam(w - 1, w, d) and noam(w, w, d) > noam(w + 1, w, d)


def test_warmup_inverse_sqrt_constant():
    assert [linear_warmup(t, 4) for t in (1, 2, 4, 8)] == [0.25, 0.5, 1.0, 1.0]
    assert linear_warmup(3, 0) == 1.0 and constant(17) == 1.0
    assert inverse_sqrt(2, 4) == pytest.approx(0.5)         # warmup: t / W
    assert inverse_sqrt(4, 4) == pytest.approx(1.0)         # peak
    assert inverse_sqrt(16, 4) == pytest.approx(0.5)        # sqrt(4 / 16)
    assert inverse_sqrt(100, 4) == pytest.approx(0.2)       # sqrt(4 / 100)
    assert inverse_sqrt(25, 0) == pytest.approx(0.2)        # 1 / sqrt(t)


def test_cosine_endpoints_and_midpoint():
    w, n, m = 10, 110, 0.1
    assert cosine(5, w, n, m) == pytest.approx(0.5)                      # warmup
    assert cosine(w, w, n, m) == pytest.approx(1.0)                      # top
    assert cosine(60, w, n, m) == pytest.approx(m + (1 - m) * 0.5)       # half way: cos(pi/2) = 0
    assert cosine(n, w, n, m) == pytest.approx(m)                        # bottom
    assert cosine(n + 50, w, n, m) == pytest.approx(m)                   # flat after the end
    values = [cosine(t, w, n) for t in range(w, n + 1)]
    assert all(a >= b for a, b in zip(values[:-1], values[1:], strict=True))               # monotone decay


def test_schedule_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"unknown schedule.*Received: 'linear'"):
        make_schedule("linear")
    with pytest.raises(ValueError, match="noam schedule needs d_model"):
        make_schedule("noam", warmup_steps=10)
    with pytest.raises(ValueError, match=r"step must be >= 1.*Received: 0"):
        linear_warmup(0, 10)
    with pytest.raises(ValueError, match=r"schedule: expected one of.*Received: 'exp'"):
        TrainConfig(schedule="exp")


@pytest.mark.parametrize("schedule,kw", [("warmup", {}), ("inverse_sqrt", {}), ("cosine", {}),
                                         ("noam", {"d_model": 8})])
def test_trainer_applies_schedule_at_each_update(tmp_path, schedule, kw):
    """The lr logged for update t (1-based) is lr * f(t), f written out here from the formulas."""
    steps, w, lr = 12, 4, 0.5
    cfg = TrainConfig(steps=steps, lr=lr, schedule=schedule, warmup_steps=w, log_every=1, eval_every=100,
                      out_dir=str(tmp_path), progress=False, device="cpu", **kw)
    Trainer(tiny_model(), cfg, TinyStream()).fit()
    lrs = [r["lr"] for r in map(json.loads, (tmp_path / "train_log.jsonl").read_text().splitlines())
           if r["event"] == "train"]
    formulas = {
        "warmup": lambda t: min(1, t / w),
        "inverse_sqrt": lambda t: min(t / w, (w / t) ** 0.5),
        "cosine": lambda t: t / w if t <= w else 0.5 * (1 + math.cos(math.pi * (t - w) / (steps - w))),
        "noam": lambda t: 8 ** -0.5 * min(t ** -0.5, t * w ** -1.5),
    }
    assert lrs == pytest.approx([lr * formulas[schedule](t) for t in range(1, steps + 1)], rel=1e-9)
