"""Language-model data (attnkit.data.reading, .lm_tokenizers, .lm_streams).

References: hand-worked examples, the definition of each stream (blocks are contiguous slices, IsNext
pairs are consecutive sentences, NotNext ones are not), and binomial bounds for the random choices.
"""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from attnkit.data.lm_streams import IS_NEXT, NOT_NEXT, BlockStream, SentencePairStream, eval_blocks
from attnkit.data.lm_tokenizers import (
    BERT_SPECIAL_TOKENS,
    EOS_TOKEN,
    encode_documents,
    encode_text,
    load_tokenizer,
    train_byte_bpe,
    train_wordpiece,
    unknown_pieces,
)
from attnkit.data.reading import read_text, split_documents, split_sentences
from attnkit.data.tokenize import Tokenizer
from attnkit.errors import InputError
from attnkit.models.bert_data import mask_tokens

CORPUS = "\n".join(f"sentence number {i} says {'abc'[i % 3]} and {i * 7 % 11}." for i in range(60)) + "\n"


def test_lm_tokenizers_are_attnkit_tokenizers():
    bpe, wp = train_byte_bpe([CORPUS], vocab_size=300), train_wordpiece([CORPUS], vocab_size=120)
    assert isinstance(bpe, Tokenizer) and isinstance(wp, Tokenizer)
    assert (bpe.scheme, bpe.eos_id, bpe.unk_id, bpe.pad_id) == ("byte_bpe", 0, None, None)
    assert (wp.scheme, wp.pad_id, wp.unk_id, wp.cls_id, wp.sep_id, wp.mask_id) == ("wordpiece", 0, 1, 2, 3, 4)
    # the helpers take a raw tokenizers.Tokenizer too (what older code and checkpoints hand over)
    assert encode_text(bpe.backend, CORPUS) == encode_text(bpe, CORPUS)
    assert unknown_pieces(wp.backend, "says ☃") == ["☃"]


# ---------------------------------------------------------------------------------------------- reading


def test_read_text_missing(tmp_path):
    with pytest.raises(InputError, match=r"text file '.*nope\.txt' does not exist"):
        read_text(tmp_path / "nope.txt")


def test_read_text_directory(tmp_path):
    with pytest.raises(InputError, match="is a directory. Expected a file"):
        read_text(tmp_path)


@pytest.mark.parametrize("content", [b"", b"  \n\t\n"])
def test_read_text_empty(tmp_path, content):
    path = tmp_path / "e.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="the file is empty: no text to train on"):
        read_text(path)


def test_read_text_not_utf8_names_line_and_byte(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("first line\ncaf\u00e9\n".encode("latin-1"))  # é = 0xe9 at offset 14, line 2
    with pytest.raises(InputError, match=r"line 2: not valid UTF-8: byte 0xe9 \(byte offset 14\)"):
        read_text(path)


def test_read_text_drops_bom_and_keeps_the_rest(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhola \xc3\xb1\n")
    assert read_text(path) == "hola ñ\n"


def test_split_sentences_by_hand():
    text = "One.\n  Two.  \n\n\nThree.\nFour.\n\nFive.\n"
    assert split_sentences(text) == [["One.", "Two."], ["Three.", "Four."], ["Five."]]


def test_split_documents_keeps_order_and_sizes():
    docs = [[f"d0s{i}" for i in range(5)], [f"d1s{i}" for i in range(5)]]
    train, valid = split_documents(docs, 0.3)  # 3 of 10 held out
    assert train == [docs[0], docs[1][:2]] and valid == [docs[1][2:]]
    assert split_documents(docs, 0.1) == (docs, [])  # 1 sentence: too few to validate on
    with pytest.raises(ValueError, match=r"valid_fraction must be in \[0, 1\). Received: 1.5"):
        split_documents(docs, 1.5)


# ---------------------------------------------------------------------------------------------- tokenizers


@pytest.mark.parametrize("s", ["sentence number 3", "unseen: ¿qué tal? ✓ 日本語 🙂", "\n\t  x", ""])
def test_byte_bpe_round_trips_any_string(s):
    tok = train_byte_bpe([CORPUS], vocab_size=400)
    assert tok.token_to_id(EOS_TOKEN) == 0
    ids = tok.encode(s, add_special=False)
    assert tok.decode(ids) == s
    assert unknown_pieces(tok, s) == []


def test_byte_bpe_learns_merges_and_limits_vocab():
    tok = train_byte_bpe([CORPUS], vocab_size=300)
    assert tok.vocab_size <= 300
    # merges make the text shorter than its UTF-8 bytes (a BPE tokenizer with merges compresses)
    assert len(encode_text(tok, CORPUS)) < len(CORPUS.encode("utf-8"))


def test_byte_bpe_vocab_size_too_small():
    with pytest.raises(ValueError, match=r"vocab_size must be an int >= 257 .* Received: 100"):
        train_byte_bpe([CORPUS], vocab_size=100)


def test_encode_text_matches_decoding_of_whole_text():
    tok = train_byte_bpe([CORPUS], vocab_size=400)
    assert tok.decode(encode_text(tok, CORPUS)) == CORPUS


def test_wordpiece_specials_pairs_and_unknowns():
    tok = train_wordpiece([CORPUS], vocab_size=120)
    assert [tok.token_to_id(t) for t in BERT_SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    ids = tok.encode("Sentence says", "and")
    assert tok.tokens(ids) == ["[CLS]", "sentence", "says", "[SEP]", "and", "[SEP]"]  # lower-cased
    assert tok.backend.encode("Sentence says", "and").type_ids == [0, 0, 0, 0, 1, 1]
    assert unknown_pieces(tok, "says ☃ and") == ["☃"]
    cased = train_wordpiece([CORPUS], vocab_size=120, lowercase=False)
    assert cased.tokens(cased.encode("Sentence", add_special=False)) != ["sentence"]


def test_load_tokenizer_round_trip_and_errors(tmp_path):
    tok = train_wordpiece([CORPUS], vocab_size=120)
    tok.save(str(tmp_path / "tokenizer.json"))
    again = load_tokenizer(tmp_path, required=BERT_SPECIAL_TOKENS)  # a directory holding tokenizer.json
    assert again.encode("sentence says a") == tok.encode("sentence says a") and again == tok
    (tmp_path / "junk.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="junk.json' is not a tokenizer.json file"):
        load_tokenizer(tmp_path / "junk.json")
    bpe = tmp_path / "bpe.json"
    train_byte_bpe([CORPUS], vocab_size=300).save(str(bpe))
    with pytest.raises(InputError, match=r"lacks the special tokens \['\[PAD\]', '\[UNK\]', '\[CLS\]'"):
        load_tokenizer(bpe, required=BERT_SPECIAL_TOKENS)
    with pytest.raises(InputError, match="tokenizer file .*nope.json' does not exist"):
        load_tokenizer(tmp_path / "nope.json")


# ---------------------------------------------------------------------------------------------- GPT blocks


def _blocks_of(stream: BlockStream, n: int) -> list[list[int]]:
    return [row for _ in range(n) for row in next(stream).input_ids.tolist()]


def test_blocks_are_contiguous_non_overlapping_and_cover_an_epoch():
    ids = list(range(103))  # unique ids: a block's first value is its start
    s = BlockStream(ids, block_size=10, batch_size=4, seed=3)
    n = s.batches_per_epoch
    rows = _blocks_of(s, n)
    starts = sorted(r[0] for r in rows)
    assert all(r == list(range(r[0], r[0] + 10)) for r in rows)  # contiguous slices of the text
    offset = starts[0]
    assert 0 <= offset < 10 and starts == list(range(offset, 103 - 9, 10))  # every whole block once
    assert next(s).position == (1, 0)


def test_blocks_move_between_epochs_and_depend_on_seed_only():
    ids = list(range(500))

    def first_epochs(seed):
        s = BlockStream(ids, block_size=16, batch_size=8, seed=seed)
        out = []
        for _ in range(6):
            rows = _blocks_of(s, s.batches_per_epoch)
            out.append(min(r[0] for r in rows))
        return out

    offsets = first_epochs(0)
    assert offsets == first_epochs(0)
    assert len(set(offsets)) > 1  # offsets differ between epochs (6 draws from 16 values)
    assert first_epochs(0) != first_epochs(1)


def test_block_stream_resumes_exactly():
    ids = list(range(300))
    a = BlockStream(ids, block_size=8, batch_size=5, seed=1)
    for _ in range(11):  # into the second epoch
        next(a)
    state = a.state_dict()
    expected = [next(a).input_ids for _ in range(9)]
    b = BlockStream(ids, block_size=8, batch_size=5, seed=1)
    b.load_state_dict(state)
    got = [next(b).input_ids for _ in range(9)]
    assert all(torch.equal(x, y) for x, y in zip(expected, got, strict=True))


def test_block_stream_refuses_other_text_on_resume():
    state = BlockStream(list(range(300)), block_size=8, batch_size=5).state_dict()
    with pytest.raises(ValueError, match="num_tokens differs .* Expected: 299. Received: 300"):
        BlockStream(list(range(299)), block_size=8, batch_size=5).load_state_dict(state)


def test_block_stream_text_too_short():
    with pytest.raises(InputError, match="text too short: 5 tokens, fewer than one block of 8"):
        BlockStream([1, 2, 3, 4, 5], block_size=8, batch_size=2)
    s = BlockStream([1, 2, 3, 4, 5, 6, 7, 8], block_size=8, batch_size=2)  # exactly one block
    assert next(s).input_ids.tolist() == [[1, 2, 3, 4, 5, 6, 7, 8]]


def test_eval_blocks_in_order():
    batches = eval_blocks(list(range(25)), block_size=4, batch_size=4)
    assert [b.input_ids.shape[0] for b in batches] == [4, 2]
    assert torch.cat([b.input_ids for b in batches]).flatten().tolist() == list(range(24))


# ---------------------------------------------------------------------------------------------- BERT pairs


def _identity_mask(ids, special_tokens_mask, generator):
    return ids.clone(), torch.where(special_tokens_mask, -100, ids)


def _docs(sizes, length=1):
    """Documents whose sentence k (counted over all documents) is ``[10 + k] * length``."""
    docs, k = [], 0
    for n in sizes:
        docs.append([[10 + k + i] * length for i in range(n)])
        k += n
    return docs


def _pairs(batch):
    """(a, b, label) sentence numbers from a batch built on ``_docs`` with length 1."""
    out = []
    for row, label in zip(batch.input_ids.tolist(), batch.next_sentence_label.tolist(), strict=True):
        assert row[0] == 2 and row[2] == 3 and row[4] == 3  # [CLS] a [SEP] b [SEP]
        out.append((row[1] - 10, row[3] - 10, label))
    return out


def test_pairs_follow_the_definition_and_are_half_random():
    docs = _docs([6, 4, 10])  # sentence 5 and 9 end a document: no IsNext pair starts there
    s = SentencePairStream(docs, _identity_mask, max_len=8, batch_size=7, seed=0)
    ends = {5, 9, 19}
    labels = []
    for _epoch in range(40):
        seen = []
        for _ in range(s.batches_per_epoch):
            seen += _pairs(next(s))
        assert sorted(a for a, _, _ in seen) == [
            a for a in range(20) if a not in ends
        ]  # one pair per sentence
        for a, b, label in seen:
            if label == IS_NEXT:
                assert b == a + 1
            else:
                assert label == NOT_NEXT and b not in (a, a + 1) and 0 <= b < 20
        labels += [label for _, _, label in seen]
    n = len(labels)  # 680 pairs: NotNext share within 4 standard deviations of 1/2
    assert abs(sum(labels) / n - 0.5) < 4 * math.sqrt(0.25 / n)


def test_token_types_attention_mask_and_truncation_by_hand():
    docs = [[[11, 12, 13, 14, 15, 16], [21, 22]], [[31]]]
    s = SentencePairStream(docs, _identity_mask, max_len=7, batch_size=8, seed=0)
    batch = s.make_batch([(0, 1, IS_NEXT), (1, 2, NOT_NEXT)], torch.Generator().manual_seed(0))
    # budget 7 - 3 = 4 tokens: the longer sentence loses its tail first
    assert batch.input_ids.tolist() == [[2, 11, 12, 3, 21, 22, 3], [2, 21, 22, 3, 31, 3, 0]]
    assert batch.token_type_ids.tolist() == [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1, 0]]
    assert batch.attention_mask.tolist() == [[True] * 7, [True] * 6 + [False]]
    assert batch.labels.tolist() == [[-100, 11, 12, -100, 21, 22, -100], [-100, 21, 22, -100, 31, -100, -100]]
    assert batch.next_sentence_label.tolist() == [0, 1]


def test_masking_with_the_bert_rule_never_touches_specials():
    docs = _docs([200], length=6)
    mask_fn = partial(mask_tokens, mask_token_id=4, vocab_size=300)
    s = SentencePairStream(docs, mask_fn, max_len=16, batch_size=32, seed=0)
    chosen = real = 0
    for _ in range(s.batches_per_epoch):
        b = next(s)
        for row_ids, row_labels, row_real in zip(b.input_ids, b.labels, b.attention_mask, strict=True):
            n = int(row_real.sum())
            # [CLS] at 0, [SEP] at 7 and n - 1, padding after: never chosen
            for pos in (0, 7, *range(n - 1, len(row_ids))):
                assert row_labels[pos] == -100
        picked = b.labels != -100
        # labels hold the original sentence token: 10 + sentence number, one value per sentence
        assert (b.labels[picked] >= 10).all() and (b.labels[picked] < 210).all()
        chosen += int(picked.sum())
        real += int(b.attention_mask.sum()) - 3 * b.input_ids.shape[0]  # all but [CLS] and two [SEP]
    rate = chosen / real  # about 2300 maskable tokens: 15% within 4 standard deviations
    assert abs(rate - 0.15) < 4 * math.sqrt(0.15 * 0.85 / real)


def test_pair_stream_is_deterministic_and_resumes_exactly():
    docs = _docs([30, 30], length=3)
    mask_fn = partial(mask_tokens, mask_token_id=4, vocab_size=100)

    def make():
        return SentencePairStream(docs, mask_fn, max_len=10, batch_size=8, seed=5)

    a = make()
    for _ in range(10):  # crosses into epoch 1 (8 batches per epoch)
        next(a)
    state = a.state_dict()
    expected = [next(a) for _ in range(10)]
    b = make()
    b.load_state_dict(state)
    for x, y in zip(expected, [next(b) for _ in range(10)], strict=True):
        assert torch.equal(x.input_ids, y.input_ids) and torch.equal(x.labels, y.labels)
        assert torch.equal(x.next_sentence_label, y.next_sentence_label)
    c = make()
    c.load_state_dict({**state, "epoch": 0, "index": 0})
    assert torch.equal(next(c).input_ids, next(make()).input_ids)


def test_pair_stream_refuses_other_text_on_resume():
    state = SentencePairStream(_docs([5]), _identity_mask, max_len=8).state_dict()
    with pytest.raises(ValueError, match="num_sentences differs .* Expected: 6. Received: 5"):
        SentencePairStream(_docs([6]), _identity_mask, max_len=8).load_state_dict(state)


def test_pair_stream_text_too_short():
    with pytest.raises(InputError, match=r"text too short: 2 sentence\(s\) .* needs at least 3"):
        SentencePairStream(_docs([2]), _identity_mask)
    with pytest.raises(InputError, match="no two consecutive non-empty lines in one document"):
        SentencePairStream(_docs([1, 1, 1]), _identity_mask)


def test_encode_documents_drops_sentences_without_tokens():
    tok = train_wordpiece([CORPUS], vocab_size=120)
    docs = encode_documents(tok, [["sentence says", "\u200b"], ["\u200b"]])  # a zero-width space: no token
    assert docs == [[tok.encode("sentence says", add_special=False)]]
