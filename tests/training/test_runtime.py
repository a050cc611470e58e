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
from attnkit.training.rank_split import (
    RankShard,
    batch_rows,
    rank_rows,
    shard_for_rank,
    split_for_rank,
    take_rows,
)
from attnkit.training.runtime import (
    Runtime,
    get_rng_state,
    global_batch_size,
    is_main_process,
    main_only,
    move_to,
    resolve_device,
    seed_everything,
    set_rng_state,
    setup_runtime,
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


def test_rank_shards_split_every_batch_and_resume():
    """Each rank takes a contiguous block of rows of every batch, the ragged last batch of an epoch too."""
    stream = [TinyStream(seed=4, per_epoch=3, batch_size=5) for _ in range(3)]
    shards = [RankShard(s, rank, 3) for rank, s in enumerate(stream)]
    taken = [[p.batch.x for p in shard] for shard in shards]
    everything = [b.x for b in TinyStream(seed=4, per_epoch=3, batch_size=5)]
    assert [[len(x) for x in t] for t in taken] == [[2, 2, 2], [2, 2, 2], [1, 1, 1]]  # 5 rows: 2 + 2 + 1
    for i, whole in enumerate(everything):  # the ranks' rows, joined in rank order, are the batch
        assert torch.equal(torch.cat([t[i] for t in taken]), whole)
    # every rank's stream stands at the same position, so rank 0's saved state restores each rank
    assert stream[0].state_dict() == stream[1].state_dict() == stream[2].state_dict()
    with pytest.raises(ValueError, match=r"Expected 0 <= rank < world_size. Received: rank=3, world_size=3"):
        RankShard(TinyStream(), 3, 3)


def test_a_rank_without_rows_gets_a_stand_in_row_that_does_not_count():
    batch = TinyStream(batch_size=2).make(0, 0)
    parts = [split_for_rank(batch, r, 4) for r in range(4)]
    assert [p.real for p in parts] == [True, True, False, False]
    assert [len(p.batch.x) for p in parts] == [1, 1, 1, 1]
    assert torch.equal(parts[3].batch.x, batch.x[:1]) and torch.equal(parts[3].batch.y, batch.y[:1])
    with pytest.raises(ValueError, match=r"Expected a batch holding tensors .* Received: list with no such tensor"):
        split_for_rank([1, 2], 0, 2)


@pytest.mark.parametrize("rows", [1, 2, 5, 7, 12])
@pytest.mark.parametrize("world", [2, 3, 4])
def test_rank_rows_cover_the_batch_once_in_order(rows, world):
    spans = [rank_rows(rows, r, world) for r in range(world)]
    assert [i for a, b in spans for i in range(a, b)] == list(range(rows))  # every row once, in order
    sizes = [b - a for a, b in spans]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_take_rows_keeps_the_batch_type_and_its_other_fields():
    Pair = namedtuple("Pair", "ids labels")
    batch = {"pair": Pair(torch.arange(12).view(4, 3), torch.arange(4)), "width": torch.zeros(3),
             "position": (2, 5), "scale": torch.tensor(1.5)}
    part = take_rows(batch, 1, 3, rows=4)
    assert isinstance(part["pair"], Pair) and part["pair"].ids.tolist() == [[3, 4, 5], [6, 7, 8]]
    assert part["pair"].labels.tolist() == [1, 2] and part["position"] == (2, 5)
    assert part["width"].shape == (3,) and float(part["scale"]) == 1.5  # other leading sizes and 0-d stay whole
    assert batch_rows(batch) == 4


def test_shard_for_rank():
    one = Runtime(torch.device("cpu"))
    two = Runtime(torch.device("cpu"), rank=1, world_size=2)
    source = TinyStream()
    whole = next(iter(shard_for_rank(source, one)))
    assert whole.real and torch.equal(whole.batch.x, TinyStream().make(0, 0).x)  # one process: whole batches
    assert isinstance(shard_for_rank(source, two), RankShard)
    source.num_shards = 2
    with pytest.raises(ValueError, match=r"already sharded \(num_shards=2\)"):
        shard_for_rank(source, two)


def test_main_only_runs_on_rank_0_alone(monkeypatch):
    """Rank 1 does nothing inside main_only; rank 0 does, as one process (a Trainer there starts no group)."""
    calls = []

    @main_only
    def report(x):
        calls.append(x)
        return setup_runtime("cpu"), global_batch_size(8)

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert report("rank 1") is None and calls == [] and not is_main_process()
    assert global_batch_size(8) == 16
    monkeypatch.setenv("RANK", "0")
    rt, batch = report("rank 0")
    assert calls == ["rank 0"] and is_main_process()
    assert (rt.rank, rt.world_size, batch) == (0, 1, 8)  # alone: no process group, per-process batch


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
