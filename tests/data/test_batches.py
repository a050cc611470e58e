"""Padded batches and the resumable, seeded batch stream."""

import pytest
import torch

from attnkit.data import (
    BatchStream,
    EncodedPairs,
    Tokenizer,
    batches,
    collate,
    encode_pairs,
    epoch_order,
    load_pairs,
)


def toy_data(n=23, seed=0):
    g = torch.Generator().manual_seed(seed)
    src, tgt = [], []
    for i in range(n):
        ls, lt = int(torch.randint(1, 9, (1,), generator=g)), int(torch.randint(0, 7, (1,), generator=g))
        src.append([1] + [4 + (i + k) % 9 for k in range(ls)] + [2])
        tgt.append([1] + [5 + (i * k) % 7 for k in range(lt)] + [2])
    return EncodedPairs(src, tgt)


def test_collate_hand_example():
    b = collate([[1, 5, 2], [1, 6, 7, 8, 2]], [[1, 9, 9, 2], [1, 2]], indices=[7, 3])
    assert b.src.tolist() == [[1, 5, 2, 0, 0], [1, 6, 7, 8, 2]]
    assert b.src_lengths.tolist() == [3, 5] and b.src.dtype == torch.long
    assert b.tgt_in.tolist() == [[1, 9, 9], [1, 0, 0]]
    assert b.tgt_out.tolist() == [[9, 9, 2], [2, 0, 0]]
    assert b.src_mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert b.tgt_mask.tolist() == [[True] * 3, [True, False, False]]
    assert b.num_tokens == 4 and len(b) == 2 and b.indices.tolist() == [7, 3]
    assert b.to("cpu").src.device.type == "cpu"


def test_collate_errors():
    with pytest.raises(ValueError, match="Received: 2 sources, 1 targets"):
        collate([[1, 2], [1, 2]], [[1, 2]])
    with pytest.raises(ValueError, match="Received: pair 1 with source length 3, target length 1"):
        collate([[1, 2], [1, 4, 2]], [[1, 2], [2]])


def test_every_example_once_per_epoch_and_rows_match_data():
    data = toy_data()
    stream = BatchStream(data, batch_size=5, seed=1)
    assert stream.batches_per_epoch == 5
    seen = []
    for _ in range(5):
        b = next(stream)
        for row, i in enumerate(b.indices.tolist()):
            n = b.src_lengths[row]
            assert b.src[row, :n].tolist() == data.src[i] and b.src[row, n:].eq(0).all()
            assert b.tgt_in[row, : b.tgt_lengths[row]].tolist() == data.tgt[i][:-1]
            assert b.tgt_out[row, : b.tgt_lengths[row]].tolist() == data.tgt[i][1:]
        seen += b.indices.tolist()
    assert sorted(seen) == list(range(23))
    assert next(stream).position == (1, 0)


def test_order_depends_on_seed_and_epoch_only():
    a = epoch_order(50, 8, epoch=2, seed=3)
    assert a == epoch_order(50, 8, epoch=2, seed=3)
    assert a != epoch_order(50, 8, epoch=3, seed=3) and a != epoch_order(50, 8, epoch=2, seed=4)
    assert epoch_order(5, 2, shuffle=False) == [[0, 1], [2, 3], [4]]
    assert epoch_order(5, 2, shuffle=False, drop_last=True) == [[0, 1], [2, 3]]


def test_resume_gives_the_same_batches_as_an_uninterrupted_run():
    data = toy_data(31)
    whole = BatchStream(data, batch_size=4, seed=7, bucket_size=2)
    expected = [next(whole) for _ in range(20)]  # crosses two epoch boundaries (8 batches per epoch)
    first = BatchStream(data, batch_size=4, seed=7, bucket_size=2)
    got = [next(first) for _ in range(11)]
    state = first.state_dict()
    assert (state["epoch"], state["index"]) == (1, 3)
    resumed = BatchStream(data, batch_size=4, seed=7, bucket_size=2)
    resumed.load_state_dict(state)
    got += [next(resumed) for _ in range(9)]
    for a, b in zip(expected, got, strict=True):
        assert a.position == b.position and torch.equal(a.src, b.src) and torch.equal(a.tgt_out, b.tgt_out)
    other = BatchStream(data, batch_size=5, seed=7)
    with pytest.raises(ValueError, match="batch_size differs. Expected: 5. Received: 4"):
        other.load_state_dict(state)


def test_bucketing_reduces_padding_and_keeps_every_example():
    data = toy_data(400)

    def padding(bucket_size):
        s = BatchStream(data, batch_size=16, seed=0, bucket_size=bucket_size)
        bs = [next(s) for _ in range(s.batches_per_epoch)]
        assert sorted(i for b in bs for i in b.indices.tolist()) == list(range(400))
        return sum(int((~b.src_mask).sum()) for b in bs)

    assert padding(8) < 0.5 * padding(None)


def test_shards_are_disjoint_equal_and_match_the_single_process_order():
    data = toy_data(40)  # 10 batches of 4; 3 shards -> 3 batches each, the 10th dropped
    single = epoch_order(40, 4, epoch=0, seed=0)
    shards = [BatchStream(data, batch_size=4, seed=0, num_shards=3, shard=r) for r in range(3)]
    assert [s.batches_per_epoch for s in shards] == [3, 3, 3]
    got = [[next(s).indices.tolist() for _ in range(3)] for s in shards]
    assert [got[k % 3][k // 3] for k in range(9)] == single[:9]
    with pytest.raises(ValueError, match="Received: shard=3, num_shards=3"):
        BatchStream(data, batch_size=4, num_shards=3, shard=3)


def test_one_epoch_iterator_from_a_start_position():
    data = toy_data(10)
    all_b = list(batches(data, 3))
    assert [b.indices.tolist() for b in all_b] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    later = list(batches(data, 3, start=2))
    assert [b.position for b in later] == [(0, 2), (0, 3)]
    assert torch.equal(later[0].src, all_b[2].src)


def test_with_real_tokenizers():
    pairs = load_pairs("dates", "train", size=32, seed=0)
    st = Tokenizer.train([s for s, _ in pairs], scheme="char")
    tt = Tokenizer.train([t for _, t in pairs], scheme="char")
    b = next(iter(batches(encode_pairs(pairs, st, tt), 8)))
    assert b.tgt_out.shape == (8, 11)  # 10 characters of YYYY-MM-DD + <eos>
    assert tt.batch_decode(b.tgt_out) == [t for _, t in pairs[:8]]
    assert [st.decode(r) for r in b.src] == [s for s, _ in pairs[:8]]
