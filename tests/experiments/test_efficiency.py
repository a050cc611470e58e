"""The efficiency experiment trains on the predictable targets only (the loss against a per-target loop), scores
them on held-out sequences of its split, and builds each GPT from its config alone: saved and loaded back, it computes the same
logits (the reference: the model before saving); its memory goes through the one peak-memory child."""

from __future__ import annotations

import pytest
import torch

from attnkit.experiments.efficiency import (
    EfficiencySettings,
    ScoredLoss,
    TaskStream,
    accuracy,
    build_model,
    efficiency_experiment,
    kind_config,
    step_memory,
    task_batch,
    train_run,
    training_step,
)
from attnkit.functional.kinds import KINDS, resolve_kind
from attnkit.models.gpt import GPT

S = EfficiencySettings(d_model=16, heads=2, layers=2, batch_size=3, window=4, block=8, features=12, symbols=11,
                       pairs=5)


@pytest.mark.parametrize("kind", KINDS)
def test_a_saved_gpt_of_the_experiment_rebuilds_from_its_config(kind, tmp_path):
    model = build_model(kind, "mqar", 24, S, seed=3)
    ids, _ = task_batch("mqar", 3, 24, S, torch.Generator().manual_seed(5))  # (B, T)
    model(ids, labels=ids).loss.backward()  # a step's worth of use: performer features drawn, caches filled
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * p.grad)  # weights that differ from any fresh initialisation
    model.eval()
    model.save_pretrained(tmp_path / "gpt")
    loaded = GPT.from_pretrained(tmp_path / "gpt").eval()
    assert loaded.config.attention_kind == kind_config(kind, S, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_kind_config_carries_the_settings_and_the_seed():
    performer = resolve_kind(kind_config("performer", S, seed=7))
    assert (performer.name, performer.num_features, performer.seed) == ("performer", 12, 7)
    block = resolve_kind(kind_config("block_sparse", S, seed=7))
    assert (block.block_size, block.seed) == (8, 7)
    assert resolve_kind(kind_config("sliding_window", S, seed=7)).window == 4
    assert kind_config("full", S, seed=7) == "full"


def test_training_step_factory_returns_one_forward_and_backward():
    step = training_step("linear", "local", 16, dict(S.__dict__), seed=0)
    assert step() is None  # runs; the measured call takes no argument


def test_step_memory_is_measured_in_a_child_process_and_grows_with_length():
    s = EfficiencySettings(d_model=64, heads=2, layers=1, batch_size=8, window=4)
    short, long = step_memory("sliding_window", "copy", 32, s, seed=0), step_memory("sliding_window", "copy", 2048, s, seed=0)
    assert short is not None and long is not None and 0 <= short < 1024
    # at 2048 tokens the activations kept for backward alone pass B * T * D * 4 bytes * 8 = 32 MiB; at 32: 0.5 MiB
    assert long > short + 16, (short, long)


def test_the_loss_is_the_mean_cross_entropy_of_the_scored_targets_only():
    model = build_model("full", "mqar", 24, S, seed=0)
    ids, scored = task_batch("mqar", 3, 24, S, torch.Generator().manual_seed(1))  # (B, T), (B, T - 1)
    loss, stats = ScoredLoss(model).training_step((ids, scored))
    logits = model(ids).logits.double()  # (B, T, V)
    terms = [-torch.log_softmax(logits[b, t], -1)[ids[b, t + 1]] for b in range(3) for t in range(23) if scored[b, t]]
    assert len(terms) == 3 * S.pairs == stats["total"]
    torch.testing.assert_close(loss.double(), torch.stack(terms).mean(), rtol=1e-5, atol=1e-6)


def test_the_stream_resumes_and_the_splits_draw_other_sequences():
    stream = TaskStream("mqar", 24, S, seed=2)
    first = [b for b, _ in zip(stream, range(3), strict=False)]
    state = stream.state_dict()
    fourth = next(iter(stream))
    stream.load_state_dict(state)
    assert torch.equal(next(iter(TaskStream("mqar", 24, S, seed=2)))[0], first[0][0])
    assert torch.equal(next(iter(stream))[0], fourth[0])
    model = build_model("full", "mqar", 24, S, seed=0).eval()
    valid = accuracy(model, "mqar", EfficiencySettings(**{**S.__dict__, "split": "valid"}), 24, seed=0)
    test = accuracy(model, "mqar", S, 24, seed=0)
    assert 0.0 <= valid <= 1.0 and 0.0 <= test <= 1.0


def test_a_short_mqar_run_reports_accuracy_and_chance():
    s = EfficiencySettings(**{**S.__dict__, "steps": 3, "eval_batches": 2})
    model, row = train_run("sliding_window", "mqar", 24, s, seed=0)
    assert (row["kind"], row["task"], row["length"]) == ("sliding_window", "mqar", 24)
    assert 0.0 <= row["accuracy"] <= 1.0 and row["chance"] == pytest.approx(1 / 11)
    assert model.config.vocab_size == 23  # 11 keys, 11 values, the filler


def test_the_quick_form_says_it_is_a_smoke_test():
    quick = efficiency_experiment(EfficiencySettings().quick(), lambda seed: {})
    assert "smoke test" in quick.title
    assert "smoke test" not in efficiency_experiment(EfficiencySettings(), lambda seed: {}).title
