"""2 processes with batch b each == 1 process with batch 2b, for Seq2Seq and GPT, through the ``Trainer``.

The test launches the two ranks itself (``torch.multiprocessing`` with the environment ``torchrun`` sets,
gloo on CPU, a free localhost port) once for the whole module, with a deadline, and compares in the test
process against one-process runs. Every process builds its stream with ``global_batch_size(b)`` (2b in
each rank, 2b in the one process) and the ranks split every batch:

- Seq2Seq on 19 pairs of random lengths: batches of 6, 6, 6 and 1 pairs, so the ranks' parts hold different
  numbers of target tokens (the case where averaging per-rank mean losses is wrong) and the last batch
  leaves rank 1 with no pair at all (it trains on a stand-in row with weight 0); float32 and float64;
- GPT (equal token counts per rank), float32 and float64.

Reached: float64 agrees to ~1e-15 (rounding of sums in another order), float32 to ~1e-7 (asserted 1e-6).
Every train command of the CLI is tried the same way in ``test_distributed_commands``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

from attnkit.data.batches import BatchStream, EncodedPairs
from attnkit.models import GPT, Seq2Seq
from attnkit.models.gpt import GPTConfig
from attnkit.models.seq2seq import Seq2SeqConfig
from attnkit.storage import split_shared
from attnkit.training import TrainConfig, Trainer, global_batch_size
from tests.training.ranks import free_port, run_ranks

B, STEPS, V = 3, 4, 13  # batch per rank, optimiser steps, vocabulary
EPS = 1e-6  # AdamW epsilon (see the module docstring)
DEADLINE = 240.0  # seconds for both ranks together (start-up included); a stuck rank fails the test


def _pairs(n: int = 19, seed: int = 3) -> EncodedPairs:
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
    """Train ``kind`` for STEPS steps on batches of ``batch`` per process; returns the weights."""
    model = _seq2seq(dtype) if kind == "seq2seq" else _gpt(dtype)
    size = global_batch_size(batch)  # what every rank reads; each trains on its rows
    data = BatchStream(_pairs(), batch_size=size, seed=4) if kind == "seq2seq" else TokenBlocks(size)
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
    try:
        for kind, dtype in CASES:
            weights = _train(kind, dtype, B)
            save_file(weights, os.path.join(out, f"{kind}-{str(dtype)[6:]}-rank{rank}.safetensors"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    run_ranks(_worker, (2, free_port(), str(out)), nprocs=2, deadline=DEADLINE)
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
    other = load_file(str(two_ranks / f"{name}-rank1.safetensors"))  # every rank ends with the same weights
    assert all(torch.equal(ranks[k], other[k]) for k in ranks)


def test_seq2seq_ranks_hold_different_token_counts_and_the_last_batch_leaves_rank_1_without_rows():
    """The seq2seq case is the hard one: token counts differ per rank, and the ragged last batch has 1 pair."""
    from attnkit.training.rank_split import split_for_rank

    stream = BatchStream(_pairs(), batch_size=2 * B, seed=4)
    batches = [next(stream) for _ in range(STEPS)]
    assert [len(b) for b in batches] == [6, 6, 6, 1]
    parts = [[split_for_rank(b, r, 2) for r in (0, 1)] for b in batches]
    counts = [[p.batch.num_tokens for p in pair] for pair in parts[:3]]
    assert any(a != b for a, b in counts), counts
    assert [p.real for p in parts[3]] == [True, False]
