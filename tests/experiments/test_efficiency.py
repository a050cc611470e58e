"""The efficiency experiment builds each GPT from its config alone: saved and loaded back, it computes the same
logits (the reference: the model before saving); its memory goes through the one peak-memory child."""

from __future__ import annotations

import pytest
import torch

from attnkit.experiments.efficiency import (
    EfficiencySettings,
    build_model,
    kind_config,
    step_memory,
    task_batch,
    training_step,
)
from attnkit.functional.kinds import KINDS, resolve_kind
from attnkit.models.gpt import GPT

S = EfficiencySettings(d_model=16, heads=2, layers=2, batch_size=3, window=4, block=8, features=12)


@pytest.mark.parametrize("kind", KINDS)
def test_a_saved_gpt_of_the_experiment_rebuilds_from_its_config(kind, tmp_path):
    model = build_model(kind, 24, S, seed=3)
    ids = task_batch("copy", 3, 24, S.symbols, torch.Generator().manual_seed(5))  # (B, T)
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
