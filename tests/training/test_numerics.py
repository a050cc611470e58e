"""Numerical safety: non-finite steps are skipped, counted, reported and bounded; clipping; bfloat16 autocast."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from attnkit.recipes.seq2seq import RunSpec, prepare_seq2seq
from attnkit.training import TrainConfig, Trainer
from attnkit.training.numerics import grad_norm, loss_items
from tests.training.tiny import TinyConfig, TinyModel, TinyStream


class Poisoned(TinyModel):
    """A TinyModel whose loss (``"loss"``) or gradient (``"grad"``) is not finite at the chosen calls."""

    model_type = "tiny-test"

    def __init__(self, bad_calls: set[int], how: str = "loss") -> None:
        torch.manual_seed(1)
        super().__init__(TinyConfig(dropout=0.0))
        self.bad_calls, self.how, self.calls = bad_calls, how, 0

    def training_step(self, batch):
        self.calls += 1
        loss, stats = super().training_step(batch)
        if self.calls in self.bad_calls:
            if self.how == "loss":
                loss = loss * float("nan")
            else:  # a finite loss whose gradient is not: d sqrt(x)/dx at x = 0 is inf
                loss = loss + torch.sqrt(self.hidden.weight * 0.0).sum()
        return loss, stats


def _cfg(tmp_path=None, **kw):
    base = dict(steps=8, lr=1e-2, eval_every=100, log_every=1, progress=False, device="cpu", seed=0,
                out_dir=None if tmp_path is None else str(tmp_path))
    base.update(kw)
    return TrainConfig(**base)


def _log(tmp_path):
    return [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("how", ["loss", "grad"])
def test_non_finite_steps_are_skipped_counted_and_logged(tmp_path, how):
    model = Poisoned({3, 5}, how)
    before = {}

    def watch(step_fn):
        def wrapped(batch):
            before[model.calls + 1] = model.hidden.weight.detach().clone()
            return step_fn(batch)
        return wrapped

    model.training_step = watch(model.training_step)
    result = Trainer(model, _cfg(tmp_path), TinyStream(seed=3)).fit()
    assert (result.steps, result.stop_reason, result.skipped_steps) == (8, "steps", 2)
    assert torch.equal(before[3], before[4]) and torch.equal(before[5], before[6])  # no update at 3 and 5
    assert not torch.equal(before[2], before[3])                                    # the others update
    log = _log(tmp_path)
    assert [r["step"] for r in log if r["event"] == "skip"] == [3, 5]
    assert all(math.isfinite(r["loss"]) for r in log if r["event"] == "train")     # skipped losses left out
    assert [r for r in log if r["event"] == "stop"][0]["skipped"] == 2


def test_too_many_non_finite_steps_stop_the_run_with_the_last_good_weights(tmp_path):
    model = Poisoned(set(range(4, 100)))
    result = Trainer(model, _cfg(tmp_path, steps=50, max_skipped_steps=3), TinyStream(seed=3)).fit()
    assert (result.stop_reason, result.skipped_steps, result.steps) == ("non_finite", 4, 7)
    from attnkit.training import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "checkpoint")
    assert ckpt.step == 7 and ckpt.state["skipped"] == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_skip_count_survives_a_resume(tmp_path):
    Trainer(Poisoned({2}), _cfg(tmp_path, steps=8, eval_every=4), TinyStream(seed=3)).fit(stop_at=4)
    result = Trainer(Poisoned(set()), _cfg(tmp_path, steps=8, eval_every=4, resume=True), TinyStream(seed=3)).fit()
    assert result.resumed_from == 4 and result.skipped_steps == 1


def test_clipping_is_on_by_default_and_clips_the_global_norm():
    assert TrainConfig().clip_norm == 1.0
    a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))
    a.grad, b.grad = torch.tensor([3.0, 0.0, 4.0], dtype=torch.float64).float(), torch.full((2, 2), 6.0)
    reference = math.sqrt(9 + 16 + 4 * 36)  # float64 by hand: 13
    norm = grad_norm([a, b], clip_norm=1.0)
    assert norm == pytest.approx(reference, rel=1e-6)
    clipped = math.sqrt(float((a.grad.double() ** 2).sum() + (b.grad.double() ** 2).sum()))
    assert clipped == pytest.approx(1.0, rel=1e-5)
    assert grad_norm([a, b], clip_norm=None) == pytest.approx(1.0, rel=1e-5)  # no clipping: norm only


def test_loss_items_reads_the_models_counts():
    assert loss_items({"total": torch.tensor(7)}) == 7.0 and loss_items(None) == 1.0


def test_config_refuses_non_finite_and_unknown_settings():
    for kw, field in [({"lr": float("inf")}, "lr"), ({"lr": float("nan")}, "lr"),
                      ({"time_budget": float("inf")}, "time_budget"), ({"autocast": "float16"}, "autocast"),
                      ({"max_skipped_steps": -1}, "max_skipped_steps"), ({"keep_checkpoints": 0}, "keep_checkpoints")]:
        with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
            TrainConfig(**kw)


def test_bfloat16_autocast_training_stays_finite_on_a_built_in_task(tmp_path):
    """Seq2Seq on the built-in reverse task under bfloat16 autocast: every logged loss finite, and it learns."""
    spec = RunSpec(data="reverse", min_len=3, max_len=6)
    config = _cfg(tmp_path, steps=30, lr=1e-2, log_every=5, eval_every=30, autocast="bfloat16")
    run = prepare_seq2seq(spec, config, {"embed_dim": 8, "hidden_dim": 16, "attention_dim": 16}, batch_size=16,
                          train_size=256, valid_size=8)
    result = run.fit()
    losses = [r["loss"] for r in _log(tmp_path) if r["event"] == "train"]
    assert result.skipped_steps == 0 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]


def test_bfloat16_autocast_gpt_stays_finite():
    from attnkit.models import GPT
    from attnkit.models.gpt import GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, n_positions=8, n_embd=16, n_layer=2, n_head=2))
    stream = TinyStream(seed=4, batch_size=6, length=8)

    class Counting:  # blocks k, k+1, ..., k+7 (mod 11) from the TinyStream's first column: learnable
        def __iter__(self):
            return ((b.x[:, :1] + torch.arange(8)) % 11 for b in stream)  # (6, 8)

        def state_dict(self):
            return stream.state_dict()

        def load_state_dict(self, s):
            stream.load_state_dict(s)

    x0 = next(iter(Counting()))
    with torch.no_grad():
        start = float(F.cross_entropy(model(x0).logits[:, :-1].flatten(0, 1), x0[:, 1:].flatten()))
    stream.load_state_dict({"epoch": 0, "index": 0})
    result = Trainer(model, _cfg(steps=25, lr=1e-2, autocast="bfloat16"), Counting()).fit()
    assert result.skipped_steps == 0 and math.isfinite(result.final_loss) and result.final_loss < 0.8 * start
