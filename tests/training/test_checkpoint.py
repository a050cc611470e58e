"""Checkpoints: atomic writes (a failure mid-save leaves the old one intact), checked reads."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file as safetensors_load

import attnkit.models.base as base
from attnkit.errors import CheckpointError
from attnkit.storage import atomic_directory
from attnkit.training import TrainConfig, Trainer, load_checkpoint
from tests.training.tiny import TinyStream, tiny_model


def _train(tmp_path, steps, **kw):
    cfg = TrainConfig(steps=steps, eval_every=2, log_every=100, progress=False, device="cpu",
                      out_dir=str(tmp_path), **kw)
    model = tiny_model()
    Trainer(model, cfg, TinyStream()).fit()
    return model


def _snapshot(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_failure_mid_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    _train(tmp_path, 2)
    ckpt_dir = tmp_path / "checkpoint"
    before = _snapshot(ckpt_dir)
    assert load_checkpoint(ckpt_dir).step == 2

    import attnkit.storage.state as state_module

    real_save = state_module.write_safetensors
    calls = []

    def failing_save(tensors, path, *a, **k):  # the optimiser state is written, then the disk "fails"
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real_save(tensors, path, *a, **k)

    monkeypatch.setattr(state_module, "write_safetensors", failing_save)
    with pytest.raises(OSError, match="simulated"):
        _train(tmp_path, 4, resume=True)
    monkeypatch.undo()

    assert _snapshot(ckpt_dir) == before                     # byte for byte the old checkpoint
    assert load_checkpoint(ckpt_dir).step == 2
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []                                   # the temporary directory was removed


def test_atomic_directory_replaces_only_when_complete(tmp_path):
    target = tmp_path / "d"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text("new, half")
            assert not target.joinpath("b.txt").exists()
            raise RuntimeError("killed")
    assert (target / "a.txt").read_text() == "old" and sorted(os.listdir(tmp_path)) == ["d"]
    with atomic_directory(target) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(os.listdir(target)) == ["b.txt"] and sorted(os.listdir(tmp_path)) == ["d"]


def test_failure_while_writing_the_model_keeps_the_old_model(tmp_path, monkeypatch):
    model = tiny_model()
    model.save(tmp_path / "m")
    before = _snapshot(tmp_path / "m")

    def broken(*a, **k):
        raise OSError("killed while writing weights (simulated)")

    monkeypatch.setattr(base, "write_safetensors", broken)
    with torch.no_grad():
        model.hidden.weight.add_(1.0)
    with pytest.raises(OSError, match="simulated"):
        model.save(tmp_path / "m")
    assert _snapshot(tmp_path / "m") == before


def test_checkpoint_contents_load_without_pickle(tmp_path):
    _train(tmp_path, 3)
    d = tmp_path / "checkpoint"
    names = sorted(p.name for p in d.iterdir())
    assert names == ["config.json", "model.safetensors", "optimizer.json", "optimizer.safetensors",
                     "rng_state.json", "rng_state.safetensors", "trainer_state.json"]  # safetensors + JSON only
    for name in ("optimizer", "rng_state"):
        json.loads((d / f"{name}.json").read_text())
        safetensors_load(str(d / f"{name}.safetensors"))
    state = json.loads((d / "trainer_state.json").read_text())
    assert state["step"] == 3 and state["data"] == {"epoch": 0, "index": 3}


def test_non_json_data_state_goes_to_a_tensor_file(tmp_path):
    class TensorStateStream(TinyStream):
        def state_dict(self):
            return {"pos": torch.tensor([self.epoch, self.index])}

        def load_state_dict(self, state):
            self.epoch, self.index = (int(v) for v in state["pos"])

    cfg = TrainConfig(steps=3, eval_every=10, progress=False, device="cpu", out_dir=str(tmp_path))
    Trainer(tiny_model(), cfg, TensorStateStream()).fit()
    ckpt = load_checkpoint(tmp_path / "checkpoint")
    assert torch.equal(ckpt.data_state["pos"], torch.tensor([0, 3]))


def test_incomplete_checkpoint_lists_missing_files(tmp_path):
    _train(tmp_path, 2)
    (tmp_path / "checkpoint" / "optimizer.safetensors").unlink()
    (tmp_path / "checkpoint" / "rng_state.json").unlink()
    with pytest.raises(CheckpointError,
                       match=r"incomplete: missing \['optimizer.safetensors', 'rng_state.json'\]"):
        load_checkpoint(tmp_path / "checkpoint")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")


def test_pickled_objects_are_refused(tmp_path):
    """An earlier version's .pt file is read with weights_only=True: a pickle that builds objects is refused."""
    _train(tmp_path, 2)

    import argparse

    d = tmp_path / "checkpoint"
    (d / "rng_state.safetensors").unlink()
    (d / "rng_state.json").unlink()
    torch.save({"x": argparse.Namespace(a=1)}, d / "rng_state.pt")  # any non-tensor class
    with pytest.raises(CheckpointError, match="cannot read .*rng_state.pt"):
        load_checkpoint(d)


def test_kill_between_the_renames_is_recovered(tmp_path):
    _train(tmp_path, 2)
    ckpt = tmp_path / "checkpoint"
    # the state a kill leaves right after "old -> .checkpoint.old-*" and before "tmp -> checkpoint"
    os.replace(ckpt, tmp_path / ".checkpoint.old-dead0001")
    (tmp_path / ".checkpoint.tmp-dead0002").mkdir()          # a new one, in whatever state
    model = tiny_model()
    cfg = TrainConfig(steps=4, eval_every=2, progress=False, device="cpu", out_dir=str(tmp_path), resume=True)
    result = Trainer(model, cfg, TinyStream()).fit()
    assert result.resumed_from == 2 and result.steps == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # stale dirs cleaned


KILL_SCRIPT = """
import sys
from attnkit.training import TrainConfig, Trainer
from tests.training.tiny import TinyStream, tiny_model
cfg = TrainConfig(steps=100000, eval_every=1, log_every=1, progress=False, device="cpu", out_dir=sys.argv[1])
Trainer(tiny_model(), cfg, TinyStream()).fit()
"""


@pytest.mark.slow
def test_sigkill_during_training_leaves_a_loadable_checkpoint(tmp_path):
    """A real kill -9 while the run checkpoints every step: the checkpoint left behind loads and resumes."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path)], cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            log = tmp_path / "train_log.jsonl"
            if log.exists() and log.read_text().count('"event": "train"') >= 6:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the training process ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    model = tiny_model()
    cfg = TrainConfig(steps=1, eval_every=1, progress=False, device="cpu", out_dir=str(tmp_path), resume=True)
    result = Trainer(model, cfg, TinyStream()).fit()
    assert result.resumed_from is not None and result.resumed_from >= 5
