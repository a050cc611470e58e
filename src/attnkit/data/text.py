"""Language-model data from any UTF-8 text file (kept for existing imports; the code lives in three modules).

* ``attnkit.data.reading``: :func:`read_text`, :func:`split_sentences`, :func:`split_documents`.
* ``attnkit.data.lm_tokenizers``: :func:`train_byte_bpe`, :func:`train_wordpiece`, :func:`load_tokenizer`,
  :func:`encode_text`, :func:`encode_documents`, :func:`unknown_pieces` (all return or take attnkit's
  :class:`~attnkit.data.tokenize.Tokenizer`).
* ``attnkit.data.lm_streams``: :class:`BlockStream`, :func:`eval_blocks`, :class:`SentencePairStream` and
  their batches.

Example:
    >>> text = "the cat sat on the mat.\\nthe dog sat on the log.\\n" * 20
    >>> tok = train_byte_bpe([text], vocab_size=300)
    >>> ids = encode_text(tok, text)
    >>> tok.decode(ids) == text
    True
    >>> stream = BlockStream(ids, block_size=8, batch_size=4, seed=0)
    >>> next(stream).input_ids.shape
    torch.Size([4, 8])
"""

from attnkit.data.lm_streams import (
    IS_NEXT,
    NOT_NEXT,
    BlockBatch,
    BlockStream,
    MaskFn,
    PairBatch,
    SentencePairStream,
    eval_blocks,
)
from attnkit.data.lm_tokenizers import (
    BERT_SPECIAL_TOKENS,
    BYTE_ALPHABET,
    EOS_TOKEN,
    encode_documents,
    encode_text,
    load_tokenizer,
    train_byte_bpe,
    train_wordpiece,
    unknown_pieces,
)
from attnkit.data.reading import read_text, split_documents, split_sentences

__all__ = [
    "BERT_SPECIAL_TOKENS",
    "BYTE_ALPHABET",
    "EOS_TOKEN",
    "IS_NEXT",
    "NOT_NEXT",
    "BlockBatch",
    "BlockStream",
    "MaskFn",
    "PairBatch",
    "SentencePairStream",
    "encode_documents",
    "encode_text",
    "eval_blocks",
    "load_tokenizer",
    "read_text",
    "split_documents",
    "split_sentences",
    "train_byte_bpe",
    "train_wordpiece",
    "unknown_pieces",
]
