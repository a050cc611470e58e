"""SIGKILL at any moment, even while saving, then resume: the final weights equal an uninterrupted run's.

A training process (forked from the test, so it starts in milliseconds) is killed with SIGKILL again and
again: at seeded random moments, and at chosen points inside a checkpoint save (while its files are being
written, and between the save's two renames). After every kill the previous checkpoint must load (after the
trainer's recovery of a save cut between its renames); the run is then resumed, and at the end its weights
must be bit-identical to those of a run that was never interrupted.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from attnkit.storage import recover_directory
from attnkit.training import TrainConfig, Trainer, load_checkpoint
from tests.training.tiny import TinyStream, tiny_model

STEPS = 30
MIN_KILLS = 5  # random-moment kills that must land on a live process (plus the two inside a save)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="forks a training process and kills it (Linux)")


def _config(out: Path) -> TrainConfig:
    return TrainConfig(steps=STEPS, lr=3e-2, schedule="cosine", warmup_steps=3, clip_norm=0.5, eval_every=2,
                       log_every=1, seed=7, out_dir=str(out), progress=False, device="cpu", restore_best=False,
                       metric="eval_loss", keep_checkpoints=2, resume=True)


def _evaluate(model):
    torch.rand(3)  # an evaluation that draws random numbers must not change the trajectory
    x = torch.arange(11).view(1, 11)
    return {"eval_loss": float(torch.nn.functional.cross_entropy(model(x)[0], (x[0] + 1) % 11))}


def _train(out: Path) -> None:
    Trainer(tiny_model(seed=1), _config(out), TinyStream(seed=3), evaluate=_evaluate).fit()


def _die_inside_a_save(where: str) -> None:
    """In the child: SIGKILL itself at ``where`` of its second checkpoint save."""
    import attnkit.storage.state as state_module
    import attnkit.training.checkpoint as checkpoint_module

    saves = {"n": 0}
    real_save, real_replace = checkpoint_module.save_checkpoint, os.replace

    def counting_save(*a, **k):
        saves["n"] += 1
        return real_save(*a, **k)

    checkpoint_module.save_checkpoint = counting_save
    import attnkit.training.trainer as trainer_module

    trainer_module.save_checkpoint = counting_save
    if where == "writing":  # the optimiser state half written into the temporary directory
        real_write = state_module.write_safetensors

        def write(tensors, path, *a, **k):
            if saves["n"] == 2 and "optimizer" in str(path):
                Path(path).write_bytes(b"half a file")
                os.kill(os.getpid(), signal.SIGKILL)
            return real_write(tensors, path, *a, **k)

        state_module.write_safetensors = write
    else:  # between the renames: old checkpoint moved aside, the new one not yet in place
        def replace(src, dst, *a, **k):
            if saves["n"] == 2 and Path(dst).name == "checkpoint" and ".checkpoint.tmp-" in str(src):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst, *a, **k)

        os.replace = replace


def _child(out: str, where: str | None) -> None:
    torch.set_num_threads(1)
    if where is not None:
        _die_inside_a_save(where)
    _train(Path(out))
    os._exit(0)


def _run_child(ctx, out: Path, *, delay: float | None = None, where: str | None = None) -> int | None:
    """Start a training child; kill it after ``delay`` s (or let it kill itself); returns its exit code."""
    proc = ctx.Process(target=_child, args=(str(out), where))
    proc.start()
    if delay is not None:
        time.sleep(delay)
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=120)
    if proc.is_alive():
        proc.kill()
        pytest.fail("a training child did not finish within 120 s")
    return proc.exitcode


def _previous_checkpoint_loads(out: Path) -> int | None:
    recover_directory(out / "checkpoint")  # what the trainer (and the CLI's --resume) do first
    if not (out / "checkpoint").exists():
        return None
    return load_checkpoint(out / "checkpoint").step


def test_sigkill_at_random_moments_and_inside_saves_then_resume_is_bit_identical(tmp_path):
    ctx = multiprocessing.get_context("fork")
    whole = tmp_path / "whole"
    _train(tmp_path / "warm-up")  # first use of each code path costs more than any later run
    start = time.perf_counter()
    assert _run_child(ctx, whole) == 0  # the uninterrupted reference, timed as the killed runs are
    duration = time.perf_counter() - start
    out, rng, kills, steps_seen = tmp_path / "killed", random.Random(20261130), 0, []

    for where in ("writing", "renames"):  # deterministic kills inside a save
        assert _run_child(ctx, out, where=where) == -signal.SIGKILL
        if where == "renames":
            assert not (out / "checkpoint").exists() and list(out.glob(".checkpoint.old-*"))
        steps_seen.append(_previous_checkpoint_loads(out))
    for _ in range(40):  # kills at seeded random moments within the time the run still needs
        remaining = (STEPS - (steps_seen[-1] or 0)) / STEPS * duration
        code = _run_child(ctx, out, delay=rng.uniform(0.05, 0.7) * remaining)
        if code == 0:  # the run ended before the kill came
            break
        assert code == -signal.SIGKILL
        kills += 1
        steps_seen.append(_previous_checkpoint_loads(out))
        if kills >= MIN_KILLS:
            break
    assert kills >= MIN_KILLS, f"only {kills} kills landed on a running process"
    assert _run_child(ctx, out) == 0  # resume to the end

    a = load_file(str(whole / "checkpoint" / "model.safetensors"))
    b = load_file(str(out / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(out / "checkpoint").step == STEPS
    assert [s for s in steps_seen if s is not None] == sorted(s for s in steps_seen if s is not None)
    resumes = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumes if r["event"] == "train"] == list(range(1, STEPS + 1))  # log trimmed
    assert len(list(tmp_path.glob("killed/checkpoint-*"))) == 1  # keep_checkpoints=2: one previous kept


def test_resume_at_the_very_end_of_an_epoch(tmp_path):
    """A checkpoint taken after the last batch of an epoch (step 14 of 7-batch epochs) resumes: the source's
    first pass after loading is empty, the next one starts the new epoch (found by the kills above)."""
    cfg = dict(steps=20, eval_every=7, log_every=7, progress=False, device="cpu", seed=2, restore_best=False)
    whole = tiny_model(seed=1)
    Trainer(whole, TrainConfig(**cfg), TinyStream(seed=3)).fit()
    Trainer(tiny_model(seed=1), TrainConfig(out_dir=str(tmp_path), **cfg), TinyStream(seed=3)).fit(stop_at=14)
    resumed = tiny_model(seed=5)
    Trainer(resumed, TrainConfig(out_dir=str(tmp_path), resume=True, **cfg), TinyStream(seed=3)).fit()
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in whole.state_dict().items())
