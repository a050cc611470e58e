"""The trainer loop: early stopping, time budget, logs, clipping, weight decay groups, argument errors."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import attnkit.io
from attnkit.errors import CheckpointError
from attnkit.training import TrainConfig, Trainer
from attnkit.training.trainer import build_optimizer
from tests.training.tiny import TinyStream, tiny_model


def _cfg(tmp_path=None, **kw):
    base = dict(steps=20, lr=1e-2, eval_every=2, log_every=5, progress=False, device="cpu",
                out_dir=str(tmp_path) if tmp_path is not None else None)
    base.update(kw)
    return TrainConfig(**base)


def _read_log(path):
    return [json.loads(line) for line in (path / "train_log.jsonl").read_text().splitlines()]


def test_early_stopping_keeps_and_restores_the_best(tmp_path):
    scripted = iter([0.50, 0.60, 0.55, 0.58, 0.59, 0.99, 0.99])  # best at eval 2; evals 3, 4 do not improve
    snapshots = {}
    model = tiny_model()

    def evaluate(m):
        snapshots[len(snapshots) + 1] = {k: v.clone() for k, v in m.state_dict().items()}
        return {"acc": next(scripted)}

    cfg = _cfg(tmp_path, metric="acc", mode="max", patience=2)
    result = Trainer(model, cfg, TinyStream(), evaluate=evaluate).fit()
    assert result.stop_reason == "early_stopping"
    assert result.steps == 8 and len(result.history) == 4          # stopped after the 4th evaluation
    assert result.best_metric == 0.60 and result.best_step == 4
    for name, t in model.state_dict().items():                     # restore_best: weights of eval 2
        assert torch.equal(t, snapshots[2][name]), name
    saved = attnkit.io.load(tmp_path / "model")                    # out_dir/model holds the best model too
    for name, t in saved.state_dict().items():
        assert torch.equal(t, snapshots[2][name]), name
    evals = [r for r in _read_log(tmp_path) if r["event"] == "eval"]
    assert [r["improved"] for r in evals] == [True, True, False, False]


def test_min_mode_and_min_delta():
    values = iter([1.0, 0.95, 0.5, 0.49])
    cfg = _cfg(None, metric="loss", mode="min", patience=1, min_delta=0.1, steps=8)
    result = Trainer(tiny_model(), cfg, TinyStream(), evaluate=lambda m: {"loss": next(values)}).fit()
    assert result.best_metric == 1.0 and result.stop_reason == "early_stopping" and result.steps == 4


def test_time_budget_stops_the_run():
    result = Trainer(tiny_model(), _cfg(None, time_budget=1e-9, steps=1000), TinyStream()).fit()
    assert result.stop_reason == "time_budget" and result.steps == 1


def test_log_records_and_accuracy(tmp_path):
    """Accuracy in the log = sum(correct) / sum(total) over the window, recomputed from the model's stats."""
    model = tiny_model(dropout=0.0)
    seen = []
    original = model.training_step

    def spy(batch):
        loss, stats = original(batch)
        seen.append((loss.item(), stats["correct"], stats["total"]))
        return loss, stats

    model.training_step = spy
    Trainer(model, _cfg(tmp_path, steps=10, log_every=5), TinyStream()).fit()
    train = [r for r in _read_log(tmp_path) if r["event"] == "train"]
    assert [r["step"] for r in train] == [5, 10]
    for r, window in zip(train, (seen[:5], seen[5:]), strict=True):
        assert r["accuracy"] == pytest.approx(sum(c for _, c, _ in window) / sum(t for _, _, t in window))
        assert r["loss"] == pytest.approx(sum(loss for loss, _, _ in window) / 5)
        assert r["tokens_per_s"] > 0 and r["lr"] == pytest.approx(1e-2) and "grad_norm" in r
    events = [r["event"] for r in _read_log(tmp_path)]
    assert events[0] == "start" and events[-1] == "stop"


def test_clip_norm_logs_the_unclipped_norm(tmp_path):
    """grad_norm of step 1 equals the L2 norm of the gradients computed by hand in float64."""
    model = tiny_model(dropout=0.0)
    reference = tiny_model(dropout=0.0).double()
    batch = TinyStream().make(0, 0)
    logits = reference(batch.x)
    F.cross_entropy(logits.flatten(0, 1), batch.y.flatten()).backward()
    expected = torch.sqrt(sum((p.grad ** 2).sum() for p in reference.parameters())).item()
    Trainer(model, _cfg(tmp_path, steps=1, log_every=1, clip_norm=1e-3), TinyStream()).fit()
    record = next(r for r in _read_log(tmp_path) if r["event"] == "train")
    assert record["grad_norm"] == pytest.approx(expected, rel=1e-4)


def test_weight_decay_only_on_matrices():
    model = tiny_model()
    opt = build_optimizer(model, TrainConfig(weight_decay=0.1))
    by_decay = {g["weight_decay"]: {id(p) for p in g["params"]} for g in opt.param_groups}
    assert by_decay[0.1] == {id(model.embed.weight), id(model.hidden.weight)}   # tied weight counted once
    assert by_decay[0.0] == {id(model.hidden.bias), id(model.out.bias)}


def test_loss_falls_on_the_tiny_task():
    model = tiny_model(dropout=0.0)
    x = (torch.arange(13) % 11).view(1, 13)  # every token once and two more: T=13, unlike V=11 and width 8
    before = F.cross_entropy(model(x)[0], (x[0] + 1) % 11).item()
    Trainer(model, _cfg(None, steps=60, lr=5e-2), TinyStream()).fit()
    after = F.cross_entropy(model(x)[0], (x[0] + 1) % 11).item()
    assert after < 0.5 * before


def test_no_out_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Trainer(tiny_model(), _cfg(None, steps=3), TinyStream()).fit()
    assert list(tmp_path.iterdir()) == []


def test_without_evaluate_the_final_model_is_saved(tmp_path):
    model = tiny_model()
    Trainer(model, _cfg(tmp_path, steps=3), TinyStream()).fit()
    loaded = attnkit.io.load(tmp_path / "model")
    for name, t in model.state_dict().items():
        assert torch.equal(t, loaded.state_dict()[name])


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"TrainConfig.steps: expected an int >= 1. Received: 0"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match=r"TrainConfig.mode: expected 'min' or 'max'. Received: 'up'"):
        TrainConfig(mode="up")
    with pytest.raises(ValueError, match=r"TrainConfig.patience.*Received: 0"):
        TrainConfig(patience=0)
    with pytest.raises(ValueError, match=r"TrainConfig.lr: expected > 0. Received: -1"):
        TrainConfig(lr=-1)


def test_trainer_argument_errors():
    with pytest.raises(TypeError, match="model must implement training_step"):
        Trainer(torch.nn.Linear(2, 2), _cfg(), TinyStream())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"evaluate\(\) must return a dict with the metric 'bleu'.*\['acc'\]"):
        Trainer(tiny_model(), _cfg(steps=2, metric="bleu"), TinyStream(), evaluate=lambda m: {"acc": 1.0}).fit()
    with pytest.raises(ValueError, match=r"stop_at must be an int in \[1, config.steps=20\]. Received: 30"):
        Trainer(tiny_model(), _cfg(), TinyStream()).fit(stop_at=30)


def test_empty_stream_and_nan_loss():
    with pytest.raises(ValueError, match="train_data yielded no batches"):
        Trainer(tiny_model(), _cfg(steps=2), TinyStream(per_epoch=0)).fit()
    model = tiny_model()
    with torch.no_grad():
        model.hidden.weight.fill_(float("nan"))
    result = Trainer(model, _cfg(steps=9, max_skipped_steps=2), TinyStream()).fit()  # skipped, then stopped
    assert (result.stop_reason, result.skipped_steps, result.steps) == ("non_finite", 3, 3)  # tests/training/test_numerics.py


def test_resume_into_a_different_model_is_refused(tmp_path):
    Trainer(tiny_model(width=8), _cfg(tmp_path, steps=2), TinyStream()).fit()
    with pytest.raises(CheckpointError, match=r"different model.*\['width'\].*\[8\] vs model \[6\]"):
        Trainer(tiny_model(width=6), _cfg(tmp_path, steps=4, resume=True), TinyStream()).fit()


def test_resume_trims_the_log(tmp_path):
    Trainer(tiny_model(), _cfg(tmp_path, steps=10, eval_every=4, log_every=1), TinyStream()).fit(stop_at=6)
    # simulate a run killed after step 6's checkpoint... with extra log lines it wrote past it
    with open(tmp_path / "train_log.jsonl", "a") as f:
        f.write(json.dumps({"event": "train", "step": 7}) + "\n" + '{"event": "tra')
    Trainer(tiny_model(), _cfg(tmp_path, steps=10, eval_every=4, log_every=1, resume=True), TinyStream()).fit()
    steps = [r["step"] for r in _read_log(tmp_path) if r["event"] == "train"]
    assert steps == list(range(1, 11))


def test_nan_metric_is_never_the_best():
    values = iter([float("nan"), 0.3, float("nan")])
    cfg = _cfg(None, steps=6, metric="acc", mode="max")
    result = Trainer(tiny_model(), cfg, TinyStream(), evaluate=lambda m: {"acc": next(values)}).fit()
    assert result.best_metric == 0.3 and result.best_step == 4
