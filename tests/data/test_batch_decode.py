"""``Tokenizer.batch_decode`` / ``decode(skip_special_tokens=)`` against transformers' fast tokenizer wrapping
the same ``tokenizer.json`` (byte-level BPE as GPT-2's, WordPiece as BERT's), on the ids GPT.generate returns."""

from __future__ import annotations

import pytest
import torch

from attnkit.data.lm_tokenizers import train_byte_bpe, train_wordpiece
from attnkit.data.tokenize import Tokenizer

transformers = pytest.importorskip("transformers")
TEXTS = ["the cat sat on the mat", "a dog ran after the cat", "Ana va al cine a ver una nueva película"]


@pytest.mark.parametrize("train", [train_byte_bpe, train_wordpiece])
@pytest.mark.parametrize("skip", [True, False])
def test_batch_decode_matches_transformers(train, skip):
    tok = train(TEXTS * 3, vocab_size=300)
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tok.to_str()).backend)
    ids = torch.tensor([r[:6] for r in tok.encode_batch(TEXTS)])  # (3, 6), a 2-D tensor like generate's
    specials = [i for i in (tok.cls_id, tok.sep_id, tok.eos_id, tok.pad_id) if i is not None]
    ids[:, -1] = specials[0]  # a special token in every row
    assert tok.batch_decode(ids, skip_special_tokens=skip) == hf.batch_decode(ids, skip_special_tokens=skip)
    assert tok.decode(ids[0], skip_special_tokens=skip) == hf.decode(ids[0], skip_special_tokens=skip)


def test_seq2seq_tokenizer_keeps_or_skips_its_specials():
    tok = Tokenizer.train(["abc"], scheme="char")
    rows = [tok.encode("cab"), tok.encode("b")]  # [<sos>, ..., <eos>]
    assert tok.batch_decode(rows) == ["cab", "b"]
    assert tok.batch_decode(rows, skip_special_tokens=False) == ["<sos>cab<eos>", "<sos>b<eos>"]
