"""2 processes with batch b each == 1 process with batch 2b, for Seq2Seq and GPT; and the CLI under 2 ranks.

The test launches the two ranks itself (``torch.multiprocessing`` with the environment ``torchrun`` sets,
gloo on CPU, a free localhost port) once for the whole module, with a deadline, and compares in the test
process against one-process runs on the joined batches:

- Seq2Seq on pairs of random lengths (so the ranks' batches hold different numbers of target tokens: the
  case where averaging per-rank mean losses is wrong), float32 and float64;
- GPT (equal token counts per rank), float32 and float64;
- ``attnkit train seq2seq`` run by both ranks: both exit 0, only rank 0 prints and writes.

Reached: float64 agrees to ~1e-15 (rounding of sums in another order), float32 to ~1e-7 (asserted 1e-6).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from attnkit.data.batches import BatchStream, EncodedPairs
from attnkit.models import GPT, Seq2Seq
from attnkit.models.gpt import GPTConfig
from attnkit.models.seq2seq import Seq2SeqConfig
from attnkit.storage import split_shared
from attnkit.training import TrainConfig, Trainer

B, STEPS, V = 3, 4, 13  # batch per rank, optimiser steps, vocabulary
EPS = 1e-6  # AdamW epsilon (see the module docstring)
DEADLINE = 240.0  # seconds for both ranks together (start-up included); a stuck rank fails the test
CLI_ARGS = ["train", "seq2seq", "--data", "reverse", "--max-len", "6", "--steps", "4", "--batch-size", "8",
            "--embed-dim", "4", "--attention-dim", "8", "--d-model", "8", "--train-size", "64",
            "--valid-size", "8", "--eval-every", "2", "--quiet", "--device", "cpu"]


def _pairs(n: int = 24, seed: int = 3) -> EncodedPairs:
    g = torch.Generator().manual_seed(seed)
    src, tgt = [], []
    for _ in range(n):
        length = int(torch.randint(2, 10, (1,), generator=g))
        ids = torch.randint(4, V, (length,), generator=g).tolist()
        src.append([1, *ids, 2])
        tgt.append([1, *ids[::-1], 2])
    return EncodedPairs(src, tgt)


class TokenBlocks:
    """A resumable stream of ``(batch, T)`` id blocks; block i is a pure function of (seed, i)."""

    def __init__(self, batch: int, seed: int = 5, length: int = 7) -> None:
        self.batch, self.seed, self.length, self.index = batch, seed, length, 0

    def __iter__(self):
        while True:
            rows = [torch.randint(0, V, (self.length,), generator=torch.Generator().manual_seed(
                self.seed * 1009 + self.index * self.batch + r)) for r in range(self.batch)]
            self.index += 1
            yield torch.stack(rows)  # (batch, T)

    def state_dict(self):
        return {"index": self.index}

    def load_state_dict(self, state):
        self.index = state["index"]


def _seq2seq(dtype: torch.dtype) -> Seq2Seq:
    torch.manual_seed(11)
    cfg = Seq2SeqConfig(src_vocab_size=V, tgt_vocab_size=V, embed_dim=5, hidden_dim=6, attention_dim=7)
    return Seq2Seq(cfg).to(dtype)


def _gpt(dtype: torch.dtype) -> GPT:
    torch.manual_seed(12)
    cfg = GPTConfig(vocab_size=V, n_positions=16, n_embd=8, n_layer=2, n_head=2, resid_pdrop=0.0,
                    embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT(cfg).to(dtype)


def _train(kind: str, dtype: torch.dtype, batch: int) -> dict[str, torch.Tensor]:
    """Train ``kind`` for STEPS steps on batches of ``batch`` (per process); returns the weights."""
    model = _seq2seq(dtype) if kind == "seq2seq" else _gpt(dtype)
    data = (BatchStream(_pairs(), batch_size=batch, seed=4) if kind == "seq2seq" else TokenBlocks(batch))
    cfg = TrainConfig(steps=STEPS, lr=2e-2, schedule="warmup", warmup_steps=2, clip_norm=0.5, eval_every=100,
                      log_every=1, progress=False, device="cpu", seed=5, eps=EPS)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks: the same kernels, the same summation order in each matmul
    try:
        Trainer(model, cfg, data).fit()
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().clone() for k, v in split_shared(model.state_dict())[0].items()}


CASES = [(kind, dtype) for kind in ("seq2seq", "gpt") for dtype in (torch.float32, torch.float64)]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), ATTNKIT_DIST_TIMEOUT="120")
    torch.set_num_threads(1)
    from attnkit.cli.main import main

    try:
        for kind, dtype in CASES:
            weights = _train(kind, dtype, B)
            if rank == 0 or kind == "gpt":
                save_file(weights, os.path.join(out, f"{kind}-{str(dtype)[6:]}-rank{rank}.safetensors"))
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main([*CLI_ARGS, "--out", os.path.join(out, "cli")])
        Path(out, f"cli-rank{rank}.json").write_text(json.dumps({"code": code, "stderr": err.getvalue()}))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    ctx = mp.start_processes(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + DEADLINE
    try:
        while not ctx.join(timeout=5):
            if time.monotonic() > deadline:
                pytest.fail(f"the two ranks did not finish within {DEADLINE} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    return out


pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="needs torch.distributed with gloo")


@pytest.mark.parametrize(("kind", "dtype"), CASES, ids=[f"{k}-{str(d)[6:]}" for k, d in CASES])
def test_two_ranks_of_batch_b_equal_one_process_of_batch_2b(two_ranks, kind, dtype):
    name = f"{kind}-{str(dtype)[6:]}"
    ranks = load_file(str(two_ranks / f"{name}-rank0.safetensors"))
    one = _train(kind, dtype, 2 * B)  # one process, batch 2b = the two ranks' batches joined
    start = _seq2seq(dtype) if kind == "seq2seq" else _gpt(dtype)
    tol = {torch.float32: 1e-6, torch.float64: 1e-12}[dtype]
    worst = max(float((ranks[k] - one[k]).abs().max()) for k in one)
    print(f"{name}: largest weight difference 2 ranks vs 1 process {worst:.3g}")
    assert worst <= tol, f"largest weight difference {worst:.3g} > {tol}"
    moved = max(float((one[k] - v).abs().max()) for k, v in split_shared(start.state_dict())[0].items())
    assert moved > 1e-3  # training moved the weights: the comparison is not vacuous
    if kind == "gpt":  # every rank ends with the same weights
        other = load_file(str(two_ranks / f"{name}-rank1.safetensors"))
        assert all(torch.equal(ranks[k], other[k]) for k in ranks)


def test_seq2seq_ranks_hold_different_token_counts():
    """The seq2seq case is the hard one: the two ranks' batches have different numbers of target tokens."""
    stream = BatchStream(_pairs(), batch_size=B, seed=4)
    counts = [next(stream).num_tokens for _ in range(2 * STEPS)]
    assert any(counts[2 * i] != counts[2 * i + 1] for i in range(STEPS)), counts


def test_cli_training_under_two_ranks_exits_0_and_only_rank_0_writes(two_ranks):
    results = [json.loads((two_ranks / f"cli-rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["code"] for r in results] == [0, 0], results
    assert "done:" in results[0]["stderr"] and results[1]["stderr"] == ""  # rank 1 prints nothing
    run = two_ranks / "cli"
    assert json.loads((run / "run.json").read_text())["data"] == "reverse"
    assert (run / "model" / "config.json").is_file() and (run / "checkpoint" / "trainer_state.json").is_file()
    records = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records].count("start") == 1 and records[0]["world_size"] == 2
