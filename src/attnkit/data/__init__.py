"""Data for attnkit models: built-in tasks, user TSV corpora, tokenizers and padded batches.

Data flow: generators/readers -> :class:`Tokenizer` -> :func:`encode_pairs` -> :class:`BatchStream`
-> trainer.

* :func:`load_pairs` (``"dates"``, ``"numbers"``, ``"phrases"``, ``"copy"``, ``"reverse"``, ``"sort"`` or a TSV path)
  returns ``(source, target)`` string pairs of one split, deterministic by seed.
* :class:`Tokenizer`: attnkit's one tokenizer, a wrapper of any Hugging Face ``tokenizer.json``
  (``Tokenizer.train`` schemes ``"char"``, ``"word"``, ``"bpe"`` use ``<pad>=0 <sos>=1 <eos>=2 <unk>=3``);
  :func:`load_tokenizer` reads one from a file or directory.
* :func:`gold_alignment` (``attnkit.data.alignments``): sure and possible links of a built-in task's pair,
  the truth attention is measured against.
* :class:`Batch`, :func:`collate`, :class:`BatchStream` (resumable), :func:`batches` (one epoch).
* Language models: ``attnkit.data.reading`` (text files), ``attnkit.data.lm_tokenizers`` (byte-level BPE,
  WordPiece), ``attnkit.data.lm_streams`` (GPT blocks, BERT sentence pairs).
* :class:`ResumableStream`: the epoch / position / resume logic every training stream shares.

Example:
    >>> from attnkit.data import load_pairs, Tokenizer, encode_pairs, BatchStream
    >>> pairs = load_pairs("dates", "train", size=64, seed=0)
    >>> src_tok = Tokenizer.train([s for s, _ in pairs], scheme="char")
    >>> tgt_tok = Tokenizer.train([t for _, t in pairs], scheme="char")
    >>> batch = next(BatchStream(encode_pairs(pairs, src_tok, tgt_tok), batch_size=16, seed=0))
    >>> batch.src.shape[0], batch.tgt_in[:, 0].eq(tgt_tok.sos_id).all().item()
    (16, True)
"""

from attnkit.data.alignments import GOLD_ALIGNMENTS, gold_alignment
from attnkit.data.batches import Batch, BatchStream, EncodedPairs, batches, collate, encode_pairs, epoch_order
from attnkit.data.builtin import BUILTIN_TASKS, DEFAULT_SIZES, load_pairs, tokenizer_options
from attnkit.data.dates import DATE_FORMATS, DateFormat, find_clashes, generate_dates
from attnkit.data.lm_tokenizers import load_tokenizer
from attnkit.data.numbers import NUMBER_LANGUAGES, generate_numbers, number_words
from attnkit.data.phrases import generate_phrases, phrase_alignment
from attnkit.data.splits import SPLITS
from attnkit.data.stream import ResumableStream
from attnkit.data.tokenize import SEQ2SEQ_SPECIAL_IDS, SPECIAL_TOKENS, TOKENIZER_SCHEMES, Tokenizer
from attnkit.data.toy import TOY_TASKS, generate_toy, toy_target
from attnkit.data.tsv import TsvData, TsvProblem, read_tsv

__all__ = [
    "BUILTIN_TASKS",
    "DATE_FORMATS",
    "DEFAULT_SIZES",
    "GOLD_ALIGNMENTS",
    "NUMBER_LANGUAGES",
    "SEQ2SEQ_SPECIAL_IDS",
    "SPECIAL_TOKENS",
    "SPLITS",
    "TOKENIZER_SCHEMES",
    "TOY_TASKS",
    "Batch",
    "BatchStream",
    "DateFormat",
    "EncodedPairs",
    "ResumableStream",
    "Tokenizer",
    "TsvData",
    "TsvProblem",
    "batches",
    "collate",
    "encode_pairs",
    "epoch_order",
    "find_clashes",
    "generate_dates",
    "generate_numbers",
    "generate_phrases",
    "generate_toy",
    "gold_alignment",
    "load_pairs",
    "load_tokenizer",
    "number_words",
    "phrase_alignment",
    "read_tsv",
    "tokenizer_options",
    "toy_target",
]
