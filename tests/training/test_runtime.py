"""Runtime: the torchrun environment, per-rank sampling, RNG state round trips, batches to a device."""

from __future__ import annotations

import io
import random
from collections import namedtuple

import numpy as np
import pytest
import torch
from rich.console import Console

from attnkit.training.progress import TrainProgress
from attnkit.training.runtime import (
    RankShard,
    Runtime,
    get_rng_state,
    move_to,
    resolve_device,
    seed_everything,
    set_rng_state,
    setup_runtime,
    shard_for_rank,
)
from tests.training.tiny import TinyStream


def test_single_process_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    rt = setup_runtime("cpu")
    assert rt == Runtime(device=torch.device("cpu"), rank=0, world_size=1, local_rank=0)
    assert rt.is_main and not rt.distributed
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")


def test_bad_environment_is_named(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match=r"0 <= RANK < WORLD_SIZE. Received: RANK=2, WORLD_SIZE=2"):
        setup_runtime("cpu")
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match=r"RANK must be an integer. Received: 'one'"):
        setup_runtime("cpu")
    with pytest.raises(ValueError, match=r"unknown device.*Received: 'tpu9'"):
        resolve_device("tpu9")


def test_rank_shards_split_the_stream_and_resume():
    stream = [TinyStream(seed=4, per_epoch=7) for _ in range(3)]
    shards = [RankShard(s, rank, 3) for rank, s in enumerate(stream)]
    taken = [[(int(b.x.sum()), int(b.x[0, 0])) for b in shard] for shard in shards]
    everything = [(int(b.x.sum()), int(b.x[0, 0])) for b in TinyStream(seed=4, per_epoch=7)]
    assert [len(t) for t in taken] == [2, 2, 2]                         # 7 batches: the incomplete group dropped
    assert [everything[i] for i in range(6)] == [taken[i % 3][i // 3] for i in range(6)]  # strided, disjoint
    # every rank's stream stands at the same position, so rank 0's saved state restores each rank
    assert stream[0].state_dict() == stream[1].state_dict() == stream[2].state_dict()
    with pytest.raises(ValueError, match=r"Expected 0 <= rank < world_size. Received: rank=3, world_size=3"):
        RankShard(TinyStream(), 3, 3)


def test_shard_for_rank():
    one = Runtime(torch.device("cpu"))
    two = Runtime(torch.device("cpu"), rank=1, world_size=2)
    source = TinyStream()
    assert shard_for_rank(source, one) is source
    assert isinstance(shard_for_rank(source, two), RankShard)
    source.num_shards = 2
    with pytest.raises(ValueError, match=r"already sharded \(num_shards=2\)"):
        shard_for_rank(source, two)


def test_rng_state_round_trip():
    seed_everything(3)
    state = get_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(2))
    seed_everything(99)
    set_rng_state(*state)
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert first[0] == again[0] and first[1] == again[1] and torch.equal(first[2], again[2])
    with pytest.raises(TypeError, match="seed must be an int. Received: 1.5"):
        seed_everything(1.5)  # type: ignore[arg-type]


def test_move_to_containers():
    Pair = namedtuple("Pair", "a b")
    batch = {"x": torch.zeros(2), "pair": Pair(torch.ones(1), [torch.ones(1), "tag"]), "n": 3}
    moved = move_to(batch, torch.device("meta"))
    assert moved["x"].device.type == "meta" and moved["pair"].a.device.type == "meta"
    assert isinstance(moved["pair"], Pair) and moved["pair"].b[1] == "tag" and moved["n"] == 3
    assert moved["pair"].b[0].device.type == "meta"


def test_progress_bar_shows_the_numbers():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=150)
    with TrainProgress(10, console=console) as bar:
        bar.advance(10)
        bar.show({"loss": 0.1234, "accuracy": 0.875, "tokens_per_s": 12345.0, "lr": 1e-3})
        bar.show_eval({"exact_match": 0.99}, "exact_match", 0.995)
    out = buf.getvalue()
    for piece in ("10/10", "loss 0.1234", "acc 87.5%", "12,345 tok/s", "lr 1.00e-03", "exact_match 0.99",
                  "best 0.995"):
        assert piece in out, piece
    with TrainProgress(10, enabled=False) as bar:  # disabled: a silent no-op
        bar.advance()
        bar.show({"loss": 1.0})
