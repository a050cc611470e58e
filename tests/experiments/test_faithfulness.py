"""Faithfulness measures against naive float64 loops, hand-computed cases and scipy; the experiment's rows from
known inputs; the CLI's bad inputs (one line, exit 2, nothing written)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from attnkit.cli.main import main
from attnkit.data.news import LabeledTexts
from attnkit.errors import InputError
from attnkit.experiments.faithfulness import FaithfulnessSettings, rows_of, sample_texts, tables_and_panels
from attnkit.experiments.faithfulness_measures import (
    FRACTIONS,
    aopc,
    erasure_curves,
    kendall_tau,
    permutation_summary,
    split_top,
    top_k_count,
)


def test_top_k_count_is_the_ceiling_of_the_share_and_at_least_one():
    assert [top_k_count(7, f) for f in FRACTIONS] == [1, 1, 1, 2, 4]  # ceil(0.07, 0.35, 0.7, 1.4, 3.5)
    assert [top_k_count(200, f) for f in FRACTIONS] == [2, 10, 20, 40, 100]
    assert top_k_count(0, 0.5) == 0 and top_k_count(3, 1.0) == 3
    with pytest.raises(ValueError, match=r"Expected a fraction in \(0, 1\]. Received: 0"):
        top_k_count(5, 0)


def test_split_top_keeps_text_order_and_breaks_ties_by_position():
    removed, kept = split_top([10, 11, 12, 13, 14], torch.tensor([0.2, 0.9, 0.9, -1.0, 0.2]), 3)
    assert kept == [10, 11, 12] and removed == [13, 14]  # 11, 12 (0.9), then 10 before 14 (tie at 0.2)
    with pytest.raises(ValueError, match="Expected one score per token: 2. Received: 3 scores"):
        split_top([1, 2], torch.zeros(3), 1)


def _naive_curves(ids, scores, prob_of_row, fractions):
    """ERASER's definitions written out with Python lists and floats."""
    order = sorted(range(len(ids)), key=lambda i: (-float(scores[i]), i))
    full = prob_of_row(ids)
    comp, suff = [], []
    for f in fractions:
        k = max(1, math.ceil(f * len(ids)))
        top = set(order[:k])
        comp.append(full - prob_of_row([t for i, t in enumerate(ids) if i not in top]))
        suff.append(full - prob_of_row([t for i, t in enumerate(ids) if i in top]))
    return comp, suff


@pytest.mark.parametrize("n", [3, 17, 40])
def test_erasure_curves_match_a_naive_loop(n):
    rng = np.random.default_rng(n)
    weight = {t: float(w) for t, w in enumerate(rng.normal(size=60))}

    def prob_of_row(row):  # a fixed "model": a sigmoid of the summed token weights
        return 1.0 / (1.0 + math.exp(-sum(weight[t] for t in row)))

    ids = rng.integers(0, 60, size=n).tolist()
    scores = torch.tensor(rng.normal(size=n))
    comp, suff = erasure_curves(ids, scores, lambda rows: torch.tensor([prob_of_row(r) for r in rows], dtype=torch.float64),
                                FRACTIONS)
    ref_comp, ref_suff = _naive_curves(ids, scores, prob_of_row, FRACTIONS)
    assert comp.dtype == torch.float64 and comp.shape == (5,)
    np.testing.assert_allclose(comp.numpy(), ref_comp, rtol=0, atol=1e-12)
    np.testing.assert_allclose(suff.numpy(), ref_suff, rtol=0, atol=1e-12)


def test_aopc_of_a_hand_computed_case():
    # text of 10 tokens; p(y) = 0.1 * (number of kept "good" tokens 1 and 2) + 0.5; the explanation ranks 1, 2 first
    ids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 9]
    scores = torch.tensor([9.0, 8.0, 1, 1, 1, 1, 1, 1, 1, 1])

    def prob(rows):
        return torch.tensor([0.5 + 0.1 * sum(t in (1, 2) for t in r) for r in rows], dtype=torch.float64)

    comp, suff = erasure_curves(ids, scores, prob, (0.1, 0.2, 0.5))  # k = 1, 2, 5
    # full: 0.7. removing top 1 -> 0.6, top 2 -> 0.5, top 5 -> 0.5; keeping them -> 0.6, 0.7, 0.7
    np.testing.assert_allclose(comp.numpy(), [0.1, 0.2, 0.2], atol=1e-12)
    np.testing.assert_allclose(suff.numpy(), [0.1, 0.0, 0.0], atol=1e-12)
    assert aopc(comp) == pytest.approx(0.5 / 3, abs=1e-12) and aopc(suff) == pytest.approx(0.1 / 3, abs=1e-12)


@pytest.mark.parametrize("n, levels", [(2, 10), (7, 3), (31, 1000), (64, 5)])
def test_kendall_tau_matches_scipy_with_and_without_ties(n, levels):
    rng = np.random.default_rng(n)
    x, y = rng.integers(0, levels, size=n).astype(float), rng.integers(0, levels, size=n).astype(float)
    ref = kendalltau(x, y).statistic
    assert (math.isnan(ref) and math.isnan(kendall_tau(x, y))) or kendall_tau(x, y) == pytest.approx(ref, abs=1e-12)


def test_kendall_tau_of_constant_scores_is_nan_and_shapes_must_match():
    assert math.isnan(kendall_tau([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])) and math.isnan(kendall_tau([1.0], [2.0]))
    with pytest.raises(ValueError, match=r"Expected two score vectors of one length. Received: \(2,\) and \(3,\)"):
        kendall_tau([1, 2], [1, 2, 3])


def test_permutation_summary_matches_numpy_on_random_deltas():
    d = torch.rand(9, 13, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.03
    s = permutation_summary(d, within=0.01)
    flat = sorted(d.flatten().tolist())
    assert s["median"] == pytest.approx(flat[len(flat) // 2], abs=1e-15)  # 117 values: the 59th
    assert s["within"] == pytest.approx(sum(v <= 0.01 for v in flat) / len(flat))
    assert s["texts_within"] == pytest.approx(sum(sorted(r)[6] <= 0.01 for r in d.tolist()) / 9)
    assert s["max"] == flat[-1]
    with pytest.raises(ValueError, match=r"Expected deltas \(N texts, P permutations\), not empty. Received: \(3,\)"):
        permutation_summary(torch.zeros(3))


def test_rows_of_averages_curves_over_texts_and_leaves_tau_of_leave_one_out_out():
    s = FaithfulnessSettings(fractions=(0.1, 0.5))
    methods = ("attention", "rollout", "gradient_attention", "gradient_x_input", "leave_one_out", "random")
    found = {"comp": {m: [torch.tensor([0.2, 0.4]), torch.tensor([0.0, 0.2])] for m in methods},
             "suff": {m: [torch.tensor([0.1, 0.1]), torch.tensor([0.3, 0.1])] for m in methods},
             "tau": {m: [0.5, math.nan, 0.1] for m in methods}, "deltas": torch.tensor([[0.0, 0.02]])}
    rows = rows_of("clf", found, s)
    first = rows["methods"][0]
    assert first["method"] == "attention" and first["comprehensiveness"] == pytest.approx(0.2)  # mean(0.1, 0.3)
    assert first["sufficiency"] == pytest.approx(0.15) and first["tau_vs_loo"] == pytest.approx(0.3)  # NaN skipped
    assert [r["tau_vs_loo"] for r in rows["methods"] if r["method"] == "leave_one_out"] == [None]
    curve = [r for r in rows["curves clf"] if r["method"] == "random"]
    assert [(r["percent"], r["comprehensiveness"]) for r in curve] == [(10.0, pytest.approx(0.1)),
                                                                       (50.0, pytest.approx(0.3))]
    assert rows["permutation"][0]["within"] == 0.5


def test_sample_texts_mixes_the_classes_and_the_tables_name_their_panels():
    test = LabeledTexts([f"t{i}" for i in range(40)], ["a"] * 20 + ["b"] * 20, "mem")
    picked = sample_texts(test, 10, seed=3)
    assert len(set(picked)) == 10 and any(int(t[1:]) >= 20 for t in picked) and any(int(t[1:]) < 20 for t in picked)
    assert sample_texts(test, 10, seed=3) == picked != sample_texts(test, 10, seed=4)
    tables, panels = tables_and_panels(0.01)
    assert {p.table for p in panels} <= {t.name for t in tables} and len(panels) == 4


@pytest.mark.parametrize("field, value, message", [
    ("texts", 0, "--texts must be >= 1. Received: 0"),
    ("permutations", -1, "--permutations must be >= 1. Received: -1"),
    ("minilm_epochs", float("nan"), "--minilm-epochs must be > 0. Received: nan"),
    ("minilm_max_len", 4, "--minilm-max-len must be >= 8. Received: 4"),
    ("self_attention", "lstm", "--self-attention must be one of none, dot, multi_head. Received: 'lstm'"),
])
def test_settings_check_names_the_flag(field, value, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FaithfulnessSettings(**{field: value}).check()


@pytest.mark.parametrize("args, message", [
    (["--texts", "0"], "--texts must be >= 1. Received: 0"),
    (["--seeds", "1,x"], "--seeds must be distinct comma-separated integers >= 0"),
    (["--self-attention", "gru"], "--self-attention must be one of none, dot, multi_head"),
])
def test_faithfulness_experiment_refuses_bad_input_with_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    assert main(["experiment", "faithfulness", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_quick_faithfulness_experiment_writes_every_table_and_says_it_is_a_smoke_test(tmp_path, capsys):
    import json

    out = tmp_path / "faith"
    assert main(["experiment", "faithfulness", "--quick", "--out", str(out), "--seeds", "0"]) == 0
    report = json.loads((out / "faithfulness.json").read_text())
    assert (out / "faithfulness.png").stat().st_size > 0 and "smoke test" in report["title"]
    assert report["settings"]["is_quick"] and report["settings"]["texts"] == 4
    methods = report["tables"]["methods"]
    assert {(r["classifier"], r["method"]) for r in methods} == {
        (c, m) for c in ("attention classifier", "MiniLM")
        for m in ("attention", "rollout", "gradient_attention", "gradient_x_input", "leave_one_out", "random")}
    for r in methods:
        tau = r["tau_vs_loo"]["mean"]
        assert (tau is None) == (r["method"] == "leave_one_out") and (tau is None or -1 <= tau <= 1)
        assert -1 <= r["comprehensiveness"]["mean"] <= 1 and -1 <= r["sufficiency"]["mean"] <= 1
    by = {(r["classifier"], r["method"]): r for r in methods}
    for m in ("comprehensiveness", "sufficiency"):  # no self-attention: rollout is the pooling weights
        assert by[("attention classifier", "rollout")][m]["mean"] == by[("attention classifier", "attention")][m]["mean"]
    for r in report["tables"]["permutation"]:
        assert 0 <= r["within"]["mean"] <= 1 and 0 <= r["median"]["mean"] <= r["max"]["mean"]
    assert len(report["tables"]["curves MiniLM"]) == 6 * 5
    assert "smoke test" in (out / "faithfulness.md").read_text()
