"""Greedy and beam search against an exhaustive float64 reference on toy step functions."""

from __future__ import annotations

import itertools

import pytest
import torch

from attnkit.decoding import beam_search, decode, greedy_search

# vocabulary (SOS never emitted by the toy model), source length; each test's rows (B) and max_len (T)
# differ from V=4, TK=9 and from each other
V, EOS, SOS, TK, M = 4, 0, 3, 9, 97


def make_model(seed: int, rows: int):
    """A toy language model whose next-token distribution depends on the whole prefix and on the row.

    State per row: (hash (N,), row id (N,)). log p(. | prefix) = table[row, hash % M]; the attention row
    is softmax(att[row, hash % M]). Reference functions below recompute both in float64 from scratch.
    """
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, M, V, generator=g, dtype=torch.float64) * 2.0
    logits[..., SOS] = -1e9
    table = torch.log_softmax(logits, -1)
    att = torch.softmax(torch.randn(rows, M, TK, generator=g, dtype=torch.float64), -1)

    def step(tokens, state):
        h, row = state
        h = (h * 7 + tokens + 1) % M
        return table[row, h].float(), (h, row), att[row, h].float()

    def init(row_ids):
        row_ids = torch.as_tensor(row_ids)
        return (torch.zeros(len(row_ids), dtype=torch.long), row_ids)

    def ref_path(row: int, seq: list[int]):
        """Float64 log p of seq and its attention rows, computed without the search code."""
        h, total, rows_w = 0, 0.0, []
        prev = SOS
        for tok in seq:
            h = (h * 7 + prev + 1) % M
            total += float(table[row, h, tok])
            rows_w.append(att[row, h])
            prev = tok
        return total, torch.stack(rows_w)

    return step, init, ref_path


def exhaustive_best(ref_path, row: int, max_len: int, alpha: float):
    """Best normalised score over every sequence ending in EOS (or cut at max_len)."""
    best = (-float("inf"), None)
    for n in range(1, max_len + 1):
        for body in itertools.product([1, 2], repeat=n - 1):
            for last in ([EOS] if n < max_len else [EOS, 1, 2]):
                seq = list(body) + [last]
                lp, _ = ref_path(row, seq)
                score = lp / n**alpha
                if score > best[0]:
                    best = (score, seq)
    return best


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_wide_beam_finds_the_exhaustive_optimum(alpha):
    max_len, rows = 5, 3
    step, init, ref_path = make_model(0, rows)
    out = beam_search(step, init(range(rows)), batch_size=rows, sos_id=SOS, eos_id=EOS,
                      max_len=max_len, beam_size=64, length_penalty=alpha)
    for r in range(rows):
        ref_score, ref_seq = exhaustive_best(ref_path, r, max_len, alpha)
        n = int(out.lengths[r])
        assert out.tokens[r, :n].tolist() == ref_seq
        assert out.scores[r].item() == pytest.approx(ref_score, abs=1e-4)


@pytest.mark.parametrize("beam", [2, 3])
def test_narrow_beam_returns_a_consistent_hypothesis(beam):
    max_len, rows = 6, 5
    step, init, ref_path = make_model(1, rows)
    out = beam_search(step, init(range(rows)), batch_size=rows, sos_id=SOS, eos_id=EOS,
                      max_len=max_len, beam_size=beam, length_penalty=1.0)
    for r in range(rows):
        n = int(out.lengths[r])
        seq = out.tokens[r, :n].tolist()
        assert seq[-1] == EOS or n == max_len
        assert all(t == 0 for t in out.tokens[r, n:].tolist())  # padded with pad_id=0
        lp, rows_w = ref_path(r, seq)
        assert out.log_probs[r].item() == pytest.approx(lp, abs=1e-4)
        assert out.scores[r].item() == pytest.approx(lp / n, abs=1e-4)
        torch.testing.assert_close(out.alignments[r, :n].double(), rows_w, atol=1e-5, rtol=0)
        assert out.scores[r].item() <= exhaustive_best(ref_path, r, max_len, 1.0)[0] + 1e-5


def test_greedy_matches_a_per_row_reference_loop():
    max_len, rows = 6, 5
    step, init, ref_path = make_model(2, rows)
    out = greedy_search(step, init(range(rows)), batch_size=rows, sos_id=SOS, eos_id=EOS, max_len=max_len)
    for r in range(rows):
        seq = []
        while len(seq) < max_len and (not seq or seq[-1] != EOS):
            # pick the argmax of the reference distribution after the current prefix
            best = max(range(V), key=lambda t, seq=seq: ref_path(r, seq + [t])[0])
            seq.append(best)
        n = int(out.lengths[r])
        assert out.tokens[r, :n].tolist() == seq
        lp, rows_w = ref_path(r, seq)
        assert out.log_probs[r].item() == pytest.approx(lp, abs=1e-4)
        torch.testing.assert_close(out.alignments[r, :n].double(), rows_w, atol=1e-5, rtol=0)
        assert out.alignments[r, n:].abs().sum() == 0


def test_beam_one_without_length_penalty_is_greedy():
    rows = 6
    step, init, _ = make_model(3, rows)
    kw = dict(batch_size=rows, sos_id=SOS, eos_id=EOS, max_len=7, length_penalty=0.0)
    g = greedy_search(step, init(range(rows)), **kw)
    b = beam_search(step, init(range(rows)), beam_size=1, **kw)
    for r in range(rows):
        n = int(g.lengths[r])
        assert int(b.lengths[r]) == n
        assert b.tokens[r, :n].tolist() == g.tokens[r, :n].tolist()


def test_batched_beam_equals_one_sentence_at_a_time():
    rows = 5
    step, init, _ = make_model(4, rows)
    kw = dict(sos_id=SOS, eos_id=EOS, max_len=6, beam_size=3)
    batched = beam_search(step, init(range(rows)), batch_size=rows, **kw)
    for r in range(rows):
        alone = beam_search(step, init([r]), batch_size=1, **kw)
        n = int(alone.lengths[0])
        assert batched.tokens[r, :n].tolist() == alone.tokens[0, :n].tolist()
        assert batched.scores[r].item() == pytest.approx(alone.scores[0].item(), abs=1e-5)


def test_decode_dispatches_and_wider_beams_never_score_worse_on_exact_search():
    rows = 3
    step, init, ref_path = make_model(5, rows)
    kw = dict(batch_size=rows, sos_id=SOS, eos_id=EOS, max_len=5, length_penalty=1.0)
    g = decode(step, init(range(rows)), beam_size=1, **kw)
    wide = decode(step, init(range(rows)), beam_size=64, **kw)
    assert (wide.scores >= g.scores - 1e-6).all()


def test_no_weights_gives_no_alignments():
    table = torch.log_softmax(torch.randn(V, V), -1)

    def step(tokens, state):
        return table[tokens], state, None

    assert greedy_search(step, None, batch_size=2, sos_id=SOS, eos_id=EOS, max_len=4).alignments is None
    assert beam_search(step, None, batch_size=2, sos_id=SOS, eos_id=EOS, max_len=4).alignments is None


def test_bad_arguments_name_the_value():
    def step(tokens, state):
        return torch.zeros(len(tokens), V), state, None

    with pytest.raises(ValueError, match=r"beam_size.*Received: beam_size=0"):
        decode(step, None, batch_size=1, sos_id=SOS, eos_id=EOS, max_len=3, beam_size=0)
    with pytest.raises(ValueError, match=r"max_len.*Received: max_len=0"):
        decode(step, None, batch_size=1, sos_id=SOS, eos_id=EOS, max_len=0)
    with pytest.raises(ValueError, match=r"length_penalty >= 0. Received: length_penalty=-1"):
        decode(step, None, batch_size=1, sos_id=SOS, eos_id=EOS, max_len=3, length_penalty=-1)

    def bad_step(tokens, state):
        return torch.zeros(len(tokens) + 1, V), state, None

    with pytest.raises(ValueError, match=r"log_probs of shape \(2, V\). Received: \(3, 4\)"):
        decode(bad_step, None, batch_size=2, sos_id=SOS, eos_id=EOS, max_len=3)
