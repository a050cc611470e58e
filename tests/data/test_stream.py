"""ResumableStream: the one epoch/position/resume logic of BatchStream, BlockStream and SentencePairStream."""

from functools import partial

import pytest
import torch

from attnkit.data import BatchStream, EncodedPairs
from attnkit.data.lm_streams import BlockStream, SentencePairStream
from attnkit.data.stream import ResumableStream, check_resume, mix_seed


class Counting(ResumableStream):
    """Epoch e has e + 2 batches; batch (e, i) is the pair itself: the rollover can be followed by hand."""

    resume_keys = ("seed",)

    def __init__(self, seed=0):
        self.seed = seed
        self.planned = []

    def _plan_epoch(self, epoch):
        self.planned.append(epoch)
        return list(range(epoch + 2))

    def _make_batch(self, plan, epoch, index):
        assert plan == index
        return (epoch, index)


def test_positions_roll_over_epochs_of_different_lengths():
    s = Counting()
    assert [next(s) for _ in range(7)] == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1)]
    assert s.planned == [0, 1, 2]  # one plan per epoch, cached
    assert s.state_dict() == {"epoch": 2, "index": 2, "seed": 0} and s.batches_per_epoch == 4


def test_resume_continues_with_the_same_batches_and_checks_keys():
    a = Counting(seed=5)
    [next(a) for _ in range(4)]
    b = Counting(seed=5)
    b.load_state_dict(a.state_dict())
    assert [next(b) for _ in range(5)] == [next(a) for _ in range(5)]
    with pytest.raises(ValueError, match="Cannot resume the data stream: seed differs. Expected: 1. Received: 5"):
        Counting(seed=1).load_state_dict(a.state_dict())
    check_resume({"seed": 1}, {"epoch": 3}, ["seed"])  # a key absent from the state is not checked


def _identity_mask(ids, special_tokens_mask, generator):
    return ids, ids.masked_fill(special_tokens_mask, -100)


@pytest.mark.parametrize("make", [
    lambda: BatchStream(EncodedPairs([[1, 4, 2]] * 7, [[1, 5, 2]] * 7), batch_size=2, seed=3),
    lambda: BlockStream(list(range(50)), block_size=4, batch_size=3, seed=3),
    lambda: SentencePairStream([[[5], [6, 7], [8]], [[9, 10], [11]]], partial(_identity_mask), max_len=6,
                               batch_size=2, seed=3),
])
def test_every_stream_is_a_resumable_stream(make):
    s = make()
    assert isinstance(s, ResumableStream) and iter(s) is s
    n = s.batches_per_epoch + 1  # crosses an epoch boundary
    [next(s) for _ in range(n)]
    state = s.state_dict()
    assert (state["epoch"], state["index"]) == (1, 1)
    t = make()
    t.load_state_dict(state)
    for x, y in zip([next(s) for _ in range(3)], [next(t) for _ in range(3)], strict=True):
        field = "src" if hasattr(x, "src") else "input_ids"
        assert x.position == y.position and torch.equal(getattr(x, field), getattr(y, field))


def test_mix_seed_is_63_bit_and_order_sensitive():
    seeds = {mix_seed(a, b) for a in range(20) for b in range(20)}
    assert len(seeds) == 400 and all(0 <= x < 2**63 for x in seeds)
    assert mix_seed(1, 2) != mix_seed(2, 1) and mix_seed(3, 4) == mix_seed(3, 4)
