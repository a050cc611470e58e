"""Metrics against hand-worked examples and sacrebleu's corpus_bleu."""

import math

import pytest
import sacrebleu
import torch

from attnkit.metrics import (
    LINK_RULES,
    LengthBucket,
    alignment_error_rate,
    argmax_links,
    bleu,
    by_length_bucket,
    exact_match,
    shift_rows,
    threshold_links,
    token_accuracy,
)


def test_exact_match():
    assert exact_match(["a", "b", "c", "d"], ["a", "x", "c", "d "]) == 0.5
    assert exact_match([], []) == 0.0
    with pytest.raises(ValueError, match="Received: 2 predictions, 1 references"):
        exact_match(["a", "b"], ["a"])


def test_token_accuracy_on_tensors_ignores_padding():
    refs = torch.tensor([[5, 6, 2, 0], [7, 2, 0, 0]])
    preds = torch.tensor([[5, 9, 2, 4], [7, 7, 3, 3]])
    # real positions: 3 + 2 = 5; right: 5, 2 (row 0) and 7 (row 1) = 3
    assert token_accuracy(preds, refs) == pytest.approx(3 / 5)
    logits = torch.nn.functional.one_hot(preds, 10).float()  # (B, T, V)
    assert token_accuracy(logits, refs) == pytest.approx(3 / 5)
    assert token_accuracy(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)) == 0.0
    with pytest.raises(ValueError, match=r"Expected preds of shape \(2, 4\).*Received: \(2, 3\)"):
        token_accuracy(preds[:, :3], refs)
    with pytest.raises(TypeError, match="both tensors or both sequences"):
        token_accuracy(preds, refs.tolist())


def test_token_accuracy_on_sequences_counts_missing_and_extra_tokens():
    # "abcd" vs "abce": 3/4; "ab" vs "abc": 2/3 (missing); "abcx" vs "abc": 3/4 (extra)
    assert token_accuracy(["abcd"], ["abce"]) == 0.75
    assert token_accuracy(["ab", "abcx"], ["abc", "abc"]) == pytest.approx((2 + 3) / (3 + 4))
    assert token_accuracy([[1, 2, 3]], [[1, 5, 3]]) == pytest.approx(2 / 3)


def test_bleu_hand_worked():
    # unigram 5/6, bigram 3/5, trigram 2/4, 4-gram 1/3, equal lengths so BP = 1
    want = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(want)
    # every n-gram right but one word short: BP = exp(1 - 6/5)
    assert bleu(["the cat sat on the"], ["the cat sat on the mat"]) == pytest.approx(
        100 * math.exp(1 - 6 / 5)
    )
    assert bleu(["a b c d"], ["a b c d"]) == pytest.approx(100.0)


def test_bleu_equals_sacrebleu_corpus_bleu():
    preds = ["the quick brown fox", "jumps over the dog", "hello there world", "2031-03-04"]
    refs = ["the quick brown fox jumps", "jumped over the lazy dog", "hello world", "2031-03-04"]
    assert bleu(preds, refs) == pytest.approx(sacrebleu.corpus_bleu(preds, [refs]).score)
    assert bleu(preds, refs, tokenize="char") == pytest.approx(
        sacrebleu.corpus_bleu(preds, [refs], tokenize="char").score
    )
    assert bleu([], []) == 0.0


def test_by_length_bucket_hand_worked():
    sources = ["a", "a b", "a b c", "a b c d e", "x " * 12]
    preds = ["1", "2", "x", "4", "5"]
    refs = ["1", "2", "3", "4", "y"]
    got = by_length_bucket(sources, preds, refs, buckets=(2, 5))
    assert got == [LengthBucket(0, 2, 2, 1.0), LengthBucket(3, 5, 2, 0.5), LengthBucket(6, None, 1, 0.0)]
    assert [b.label for b in got] == ["0-2", "3-5", "6+"]
    by_width = by_length_bucket(["abc", "abcdef", "ab"], ["x", "y", "z"], ["x", "n", "z"], 3, length="chars")
    assert by_width == [LengthBucket(0, 3, 2, 1.0), LengthBucket(4, 6, 1, 0.0)]


def test_by_length_bucket_with_other_metrics():
    got = by_length_bucket(["s", "s s s"], ["abcd", "ab"], ["abce", "ab"], (1, 3), metric="token_accuracy")
    assert [b.score for b in got] == [0.75, 1.0]
    got = by_length_bucket(["s"], ["a b c d"], ["a b c d"], (5,), metric=lambda p, r: 42.0)
    assert got == [LengthBucket(0, 5, 1, 42.0)]
    with pytest.raises(ValueError, match="Expected metric to be one of .* Received: metric='f1'"):
        by_length_bucket(["s"], ["a"], ["a"], metric="f1")
    with pytest.raises(
        ValueError, match=r"Expected strictly increasing bucket edges. Received: buckets=\(5, 5\)"
    ):
        by_length_bucket(["s"], ["a"], ["a"], (5, 5))


# -- alignment error rate (Och and Ney 2003) --------------------------------------------------------------


def _aer_by_sets(pred, sure, poss):
    """The definition on Python sets of (sentence, t, j) links, the possible links widened by the sure ones."""
    links = lambda m: {tuple(i) for i in m.nonzero().tolist()}  # noqa: E731
    a, s = links(pred), links(sure)
    p = links(poss)
    assert s <= p
    return 0.0 if not a and not s else 1 - (len(a & s) + len(a & p)) / (len(a) + len(s))


def test_alignment_error_rate_by_hand():
    sure = torch.tensor([[1, 0, 0], [0, 0, 1]], dtype=torch.bool)  # (T_out=2, T_in=3)
    possible = torch.tensor([[1, 1, 0], [0, 0, 1]], dtype=torch.bool)  # sure links are possible links
    predicted = torch.tensor([[0, 1, 0], [0, 0, 1]], dtype=torch.bool)
    # |A| = 2, |S| = 2, |A & S| = 1 ((1, 2)), |A & P| = 2 ((0, 1) possible, (1, 2) sure): 1 - 3/4
    assert alignment_error_rate(predicted, sure, possible) == pytest.approx(0.25)
    assert alignment_error_rate(sure, sure, possible) == 0.0  # exactly the sure links
    assert alignment_error_rate(~sure, sure) == 1.0  # nothing right
    empty = torch.zeros(2, 3, dtype=torch.bool)
    assert alignment_error_rate(empty, empty) == 0.0


def test_alignment_error_rate_is_corpus_level_and_matches_the_set_definition():
    gen = torch.Generator().manual_seed(7)
    for shape in [(3, 5, 4), (2, 3, 6, 7), (9, 2)]:  # leading dims of sentences (and batch), T_out != T_in
        pred, sure, extra = (torch.rand(shape, generator=gen) < q for q in (0.3, 0.2, 0.2))
        poss = sure | extra
        got = alignment_error_rate(pred, sure, poss)
        assert abs(got - _aer_by_sets(pred, sure, poss)) < 1e-12
        if len(shape) == 3:  # corpus level: counts summed before the ratio, not a mean of per-sentence rates
            per_sentence = sum(_aer_by_sets(pred[i], sure[i], poss[i]) for i in range(shape[0])) / shape[0]
            assert abs(got - per_sentence) > 1e-6


def test_alignment_error_rate_refuses_bad_inputs():
    ok = torch.zeros(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="Expected predicted a bool tensor"):
        alignment_error_rate(ok.float(), ok)
    with pytest.raises(ValueError, match="Expected possible a bool tensor"):
        alignment_error_rate(ok, ok, [[True]])
    with pytest.raises(ValueError, match=r"Expected every sure link among the possible links"):
        alignment_error_rate(ok, ~ok, ok)
    with pytest.raises(ValueError, match=r"of one shape .*'sure': \(3, 2\)"):
        alignment_error_rate(ok, torch.zeros(3, 2, dtype=torch.bool))


# -- links from attention weights: small hand-made matrices ----------------------------------------------

WEIGHTS = torch.tensor([[0.6, 0.3, 0.1, 0.0],
                        [0.1, 0.2, 0.7, 0.0],
                        [0.0, 0.45, 0.1, 0.45],
                        [0.0, 0.0, 0.0, 0.0]])  # (T_out=4, T_in=4); the last row attends nowhere


def as_links(rows: list[list[int]], t_in: int) -> torch.Tensor:
    out = torch.zeros(len(rows), t_in, dtype=torch.bool)
    for t, cols in enumerate(rows):
        out[t, cols] = True
    return out


def test_argmax_links_one_per_attending_row_first_of_ties():
    assert torch.equal(argmax_links(WEIGHTS), as_links([[0], [2], [1], []], 4))
    batched = torch.stack([WEIGHTS, WEIGHTS.flip(-1)])  # (B=2, 4, 4)
    assert torch.equal(argmax_links(batched)[1], as_links([[3], [1], [0], []], 4))  # ties: the first


def test_threshold_links_keep_every_weight_at_or_over_the_threshold():
    assert torch.equal(threshold_links(WEIGHTS, 0.3), as_links([[0, 1], [2], [1, 3], []], 4))
    assert not threshold_links(WEIGHTS, 1.0).any()
    with pytest.raises(ValueError, match=r"threshold in \(0, 1\]. Received: threshold=0"):
        threshold_links(WEIGHTS, 0)


def test_shift_rows_moves_each_row_up_by_one_output_step():
    w = torch.arange(12, dtype=torch.float64).reshape(1, 4, 3)  # (B, T_out, T_in)
    shifted = shift_rows(w, 1)
    assert shifted[0, :3].tolist() == w[0, 1:].tolist() and shifted[0, 3].tolist() == [0, 0, 0]
    assert shift_rows(w, -1)[0, 1:].tolist() == w[0, :3].tolist() and shift_rows(w, -1)[0, 0].sum() == 0
    assert shift_rows(w, 4).sum() == 0 and torch.equal(shift_rows(w, 0), w)
    # A decoder one step late: its row t + 1 holds output t's true source, which the shift recovers.
    late = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # (4, 3)
    gold = as_links([[0], [1], [2], []], 3)
    assert alignment_error_rate(argmax_links(shift_rows(late, 1)), gold) == 0.0
    assert alignment_error_rate(argmax_links(late), gold) == 1.0


def test_link_rules_are_named_and_reject_non_float_weights():
    assert set(LINK_RULES) == {"argmax", "argmax, shifted one step", "weights >= 0.3"}
    assert torch.equal(LINK_RULES["argmax, shifted one step"](WEIGHTS), as_links([[2], [1], [], []], 4))
    with pytest.raises(ValueError, match="Expected float attention weights"):
        argmax_links(torch.ones(2, 2, dtype=torch.bool))
