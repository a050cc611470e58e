"""Two processes (torchrun-style env, gloo, CPU) train like one process on the two ranks' batches joined.

With DistributedDataParallel the gradients are averaged over ranks; rank r takes batches r, r + 2, ...
of the shared stream. One process fed the concatenation of each pair of batches (equal sizes, so its
mean loss is the average of the two ranks' mean losses) must reach the same weights.
"""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from attnkit.training import TrainConfig, Trainer
from tests.training.tiny import TinyBatch, TinyStream, tiny_model

STEPS = 6


def _config(out_dir):
    return TrainConfig(steps=STEPS, lr=2e-2, schedule="warmup", warmup_steps=2, clip_norm=0.5, eval_every=4,
                       log_every=1, progress=False, device="cpu", out_dir=str(out_dir), seed=5)


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    model = tiny_model(seed=1, dropout=0.0)
    try:
        Trainer(model, _config(out_dir), TinyStream(seed=2, per_epoch=8)).fit()
        save_file({k: v.contiguous() for k, v in model.state_dict().items() if k != "out.weight"},
                  os.path.join(out_dir, f"rank{rank}.safetensors"))
    finally:
        dist.destroy_process_group()


class PairStream(TinyStream):
    """Each batch is two consecutive TinyStream batches stacked: what two ranks see together in one step."""

    def __iter__(self):
        inner = super().__iter__()
        for a in inner:
            b = next(inner, None)
            if b is None:
                return
            yield TinyBatch(torch.cat([a.x, b.x]), torch.cat([a.y, b.y]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_two_processes_match_one_process_on_joined_batches(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    rank0 = load_file(str(tmp_path / "ddp" / "rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "ddp" / "rank1.safetensors"))

    single = tiny_model(seed=1, dropout=0.0)
    Trainer(single, _config(tmp_path / "one"), PairStream(seed=2, per_epoch=8)).fit()
    for name, t in rank0.items():
        assert torch.equal(t, rank1[name]), name                         # ranks stay in sync
        torch.testing.assert_close(t, single.state_dict()[name], rtol=1e-5, atol=1e-6)
    assert not torch.equal(rank0["hidden.weight"], tiny_model(seed=1).state_dict()["hidden.weight"])

    # only rank 0 wrote the log (one start record) and checkpoints
    records = [json.loads(x) for x in (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records].count("start") == 1 and records[0]["world_size"] == 2
    assert [r["step"] for r in records if r["event"] == "train"] == list(range(1, STEPS + 1))
