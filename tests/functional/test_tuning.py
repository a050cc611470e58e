"""Measured choice of attention paths (``attnkit.functional.tuning``): the chosen path never changes the
answer (each candidate against the float64 definition), each shape class is timed once per machine, the cache
file is small readable JSON, and a corrupt or foreign cache is ignored with one warning.

The timings themselves are replaced by fixed figures here (the machine is shared, and no test asserts a time).
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from attnkit.functional import attention, dispatch, tuning
from tests.functional.reference import naive_attention, scaled_dot_scores

B, H, TQ, TK, D, DV = 2, 3, 5, 7, 4, 6  # pairwise different: a swapped axis cannot pass


@pytest.fixture
def tuning_on(monkeypatch, tmp_path):
    """Tuning on, a private cache directory, no table read yet, every call tuned (however small)."""
    monkeypatch.setenv("ATTNKIT_TUNE", "1")
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tuning, "_tables", {})
    monkeypatch.setattr(tuning, "MIN_SCORES", 1)
    return tmp_path / "tuning.json"


def fake_timer(monkeypatch, fastest: str) -> list[tuple[str, ...]]:
    """Replace the measurement with figures that make ``fastest`` win; returns the calls it saw."""
    seen: list[tuple[str, ...]] = []

    def measure(query, key, value, paths, names, **kw):
        seen.append(names)
        return {name: (1.0 if name == fastest else 2.0) for name in names}

    monkeypatch.setattr(tuning, "measure", measure)
    return seen


def inputs(seed: int, grad: bool = False):
    g = torch.Generator().manual_seed(seed)
    q, k, v = torch.randn(B, H, TQ, D, generator=g), torch.randn(B, H, TK, D, generator=g), torch.randn(
        B, H, TK, DV, generator=g)
    return tuple(t.requires_grad_(grad) for t in (q, k, v))


MASKS = {
    "none": None,
    "keys": torch.tensor([[True] * 5 + [False] * 2, [True] * 7])[:, None, None, :],  # (B, 1, 1, Tk)
    "full": torch.rand(B, 1, TQ, TK, generator=torch.Generator().manual_seed(3)) > 0.4,
}


@pytest.mark.parametrize("winner", tuning.CANDIDATES)
@pytest.mark.parametrize("mask_name", sorted(MASKS))
@pytest.mark.parametrize("causal", [False, True])
def test_the_chosen_path_gives_the_float64_answer(monkeypatch, tuning_on, winner, mask_name, causal):
    fake_timer(monkeypatch, winner)
    q, k, v = inputs(0)
    mask = MASKS[mask_name]
    out = attention(q, k, v, mask=mask, causal=causal)
    allowed = torch.ones(TQ, TK, dtype=torch.bool) if mask is None else mask.expand(B, H, TQ, TK)
    if causal:
        allowed = allowed & torch.ones(TQ, TK, dtype=torch.bool).tril()
    expected, _ = naive_attention(q, k, v, scaled_dot_scores(q, k), allowed)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    assert json.loads(tuning_on.read_text())  # the choice was made by the (fake) measurement and kept


@pytest.mark.parametrize("winner", tuning.CANDIDATES)
def test_gradients_do_not_depend_on_the_chosen_path(monkeypatch, tuning_on, winner):
    fake_timer(monkeypatch, winner)
    q, k, v = inputs(1, grad=True)
    attention(q, k, v, mask=MASKS["keys"], causal=True).pow(2).sum().backward()
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    allowed = MASKS["keys"].expand(B, H, TQ, TK) & torch.ones(TQ, TK, dtype=torch.bool).tril()
    naive_attention(q64, k64, v64, scaled_dot_scores(q64, k64), allowed)[0].pow(2).sum().backward()
    for t, ref in ((q, q64), (k, k64), (v, v64)):
        torch.testing.assert_close(t.grad.double(), ref.grad, atol=1e-5, rtol=1e-5)


def test_a_shape_class_is_timed_once_and_kept_in_a_small_readable_file(monkeypatch, tuning_on):
    seen = fake_timer(monkeypatch, "reference")
    q, k, v = inputs(2)
    for _ in range(3):
        attention(q, k, v)
    attention(torch.cat([q, q[:, :, :1]], dim=2), k, v)  # Tq 6 and 5 both round up to 8: the same class
    assert seen == [tuning.CANDIDATES]
    data = json.loads(tuning_on.read_text())
    assert data["format"] == tuning.FORMAT and list(data["machines"]) == [tuning.machine_key()]
    (entry,) = data["machines"][tuning.machine_key()].values()
    assert entry == {"path": "reference", "ms": {"fused": 2.0, "reference": 1.0}}
    assert tuning_on.stat().st_size < 1024
    monkeypatch.setattr(tuning, "_tables", {})  # a new process: the file answers, nothing is timed
    assert dispatch.choose(q, k, v, score="scaled_dot", mask=None, causal=False, dropout_p=0.0,
                           return_weights=False, chunk_size=None, bias=None, kind=None) == ("reference", None)
    assert len(seen) == 1
    attention(q, k, v, causal=True)  # another class: timed
    assert len(seen) == 2


@pytest.mark.parametrize("content", ["{not json", '{"format": "other/9", "machines": {}}', '[1, 2]',
                                     '{"format": "attnkit-tuning/1", "machines": {"x": {"c": {"path": "rm -rf"}}}}',
                                     b"\xff\xfe\x00"])
def test_a_corrupt_cache_is_ignored_with_one_warning_and_replaced(monkeypatch, tuning_on, content):
    if isinstance(content, bytes):
        tuning_on.write_bytes(content)
    else:
        tuning_on.write_text(content)
    seen = fake_timer(monkeypatch, "fused")
    q, k, v = inputs(3)
    with pytest.warns(UserWarning, match="ignoring the attention tuning cache") as record:
        for _ in range(2):
            attention(q, k, v)
    assert len([w for w in record if "tuning cache" in str(w.message)]) == 1
    assert len(seen) == 1
    assert json.loads(tuning_on.read_text())["format"] == tuning.FORMAT


def test_another_machines_entries_are_kept_and_never_used(monkeypatch, tuning_on):
    q, k, v = inputs(4)
    cls = tuning.shape_class(q, k, v, score="scaled_dot", mask=None, causal=False)
    foreign = {"format": tuning.FORMAT, "machines": {"Other CPU; avx2 | torch 1.0": {cls: {"path": "reference"}}}}
    tuning_on.write_text(json.dumps(foreign))
    seen = fake_timer(monkeypatch, "fused")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attention(q, k, v)
    assert len(seen) == 1  # the foreign winner was not used: this machine measured
    machines = json.loads(tuning_on.read_text())["machines"]
    assert machines["Other CPU; avx2 | torch 1.0"] == foreign["machines"]["Other CPU; avx2 | torch 1.0"]
    assert machines[tuning.machine_key()][cls]["path"] == "fused"


@pytest.mark.parametrize("call", ["tune-off", "weights", "dropout", "chunked", "callable-score", "small"])
def test_calls_outside_tuning_follow_the_rules_untimed(monkeypatch, tuning_on, call):
    seen = fake_timer(monkeypatch, "reference")
    q, k, v = inputs(5)
    kw: dict = {}
    if call == "tune-off":
        monkeypatch.setenv("ATTNKIT_TUNE", "0")
    elif call == "small":
        monkeypatch.setattr(tuning, "MIN_SCORES", B * H * TQ * TK + 1)
    else:
        kw = {"weights": {"return_weights": True}, "dropout": {"dropout_p": 0.5},
              "chunked": {"chunk_size": 3},
              "callable-score": {"score": lambda a, b: a @ b.transpose(-2, -1)}}[call]
    attention(q, k, v, **kw)
    assert seen == [] and not tuning_on.exists()


def test_reference_is_not_a_candidate_past_the_materialised_limit(monkeypatch):
    q, k, v = inputs(6)
    assert tuning.candidates(q, k) == tuning.CANDIDATES
    monkeypatch.setattr(tuning, "MAX_MATERIALISED", B * H * TQ * TK - 1)
    assert tuning.candidates(q, k) == ("fused",)


def test_a_read_only_cache_keeps_the_winner_for_the_process(monkeypatch, tuning_on):
    seen = fake_timer(monkeypatch, "reference")
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", "/proc/attnkit-cannot-write-here")
    monkeypatch.setattr(tuning, "_tables", {})
    q, k, v = inputs(7)
    attention(q, k, v)
    attention(q, k, v)
    assert len(seen) == 1


def test_the_real_measurement_times_every_candidate_forward_and_backward():
    q, k, v = inputs(8, grad=True)
    ms = tuning.measure(q, k, v, dispatch.PATHS, tuning.CANDIDATES, score="scaled_dot", scale=0.5,
                        mask=MASKS["keys"], causal=False, rounds=1)
    assert sorted(ms) == sorted(tuning.CANDIDATES) and all(t > 0 for t in ms.values())
    assert q.grad is None  # the call's own tensors are untouched


def test_a_large_call_is_timed_on_its_first_batch_rows_only(monkeypatch):
    q, k, v = inputs(9)
    monkeypatch.setattr(tuning, "MEASURE_SCORES", H * TQ * TK)  # room for one batch row
    for mask in (MASKS["keys"], MASKS["full"], torch.ones(1, 1, TQ, TK, dtype=torch.bool), None):
        sq, sk, sv, smask = tuning._sample(q, k, v, mask)
        assert (sq.shape[0], sk.shape[0], sv.shape[0]) == (1, 1, 1)
        assert smask is None or smask.shape[0] == 1
        torch.testing.assert_close(sq, q[:1])


@pytest.mark.parametrize("ms, expected", [
    ({"fused": 100.0, "reference": 98.0}, "fused"),  # a near tie: the rules' path stays
    ({"fused": 100.0, "reference": 91.0}, "fused"),
    ({"fused": 100.0, "reference": 89.0}, "reference"),  # more than MARGIN faster
    ({"fused": 50.0, "reference": 60.0}, "fused"),
])
def test_another_path_wins_only_by_the_margin(ms, expected):
    assert tuning.MARGIN == 0.10
    assert tuning.winner(ms) == expected


def test_a_cached_near_tie_is_decided_again_by_the_margin(monkeypatch, tuning_on):
    """An entry written by a rule without the margin (a 2% win recorded as the path) follows the margin now."""
    q, k, v = inputs(6)
    cls = tuning.shape_class(q, k, v, score="scaled_dot", mask=None, causal=False)
    old = {"format": tuning.FORMAT, "machines": {tuning.machine_key(): {
        cls: {"path": "reference", "ms": {"fused": 125.7, "reference": 123.7}}}}}
    tuning_on.write_text(json.dumps(old))
    seen = fake_timer(monkeypatch, "reference")
    assert dispatch.choose(q, k, v, score="scaled_dot", mask=None, causal=False, dropout_p=0.0,
                           return_weights=False, chunk_size=None, bias=None, kind=None) == ("fused", None)
    assert seen == []  # decided from the recorded times, nothing timed


def test_one_slow_warm_round_cannot_rule_out_the_rules_path(monkeypatch):
    """The warm round's "over twice the fastest" cut never drops the first candidate: it is timed again."""
    from attnkit import timing

    warm = iter([(None, 1.0), (None, 0.1)])  # fused 10x slower in its one warm round (a descheduled call)
    monkeypatch.setattr(timing, "timed", lambda fn: next(warm))
    timed_again: list[str] = []
    monkeypatch.setattr(timing, "interleaved_medians",
                        lambda fns, repeat, warmup: timed_again.extend(fns) or {n: 0.05 for n in fns})
    q, k, v = inputs(7)
    tuning.measure(q, k, v, dispatch.PATHS, tuning.CANDIDATES, score="scaled_dot", scale=0.5, mask=None,
                   causal=False)
    assert timed_again == list(tuning.CANDIDATES)
