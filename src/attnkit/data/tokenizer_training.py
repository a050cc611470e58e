"""Training Hugging Face ``tokenizers`` back ends: the vocabularies attnkit learns from text.

Each function returns a plain ``tokenizers.Tokenizer``; :class:`attnkit.data.tokenize.Tokenizer` wraps it
(``Tokenizer.train``, ``train_byte_bpe``, ``train_wordpiece`` are the entry points users call).

* Sequence-to-sequence schemes (``"char"``, ``"word"``, ``"bpe"``) reserve
  ``<pad>=0 <sos>=1 <eos>=2 <unk>=3`` (:data:`SPECIAL_TOKENS`).
* GPT: byte-level BPE (Radford et al. 2019), ``<|endoftext|>`` at id 0 then the 256 bytes and merges.
* BERT: WordPiece (Wu et al. 2016; Devlin et al. 2019), ``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4``.

Example:
    >>> backend = train_seq2seq_backend(["abca"], scheme="char")
    >>> [backend.token_to_id(s) for s in SPECIAL_TOKENS], backend.token_to_id("a")
    ([0, 1, 2, 3], 4)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

PAD, SOS, EOS, UNK = "<pad>", "<sos>", "<eos>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, SOS, EOS, UNK)  # ids 0, 1, 2, 3 in the sequence-to-sequence schemes
#: The tokenizer schemes ``Tokenizer.train`` learns: how a text is cut into tokens.
TOKENIZER_SCHEMES: tuple[str, ...] = ("char", "word", "bpe")
DEFAULT_BPE_VOCAB = 2000
EOS_TOKEN = "<|endoftext|>"
#: BERT's special tokens, at ids 0..4 in every WordPiece vocabulary trained here.
BERT_SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
BYTE_ALPHABET = 256


def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = list(texts)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"Expected texts to be strings. Received: {type(bad).__name__} {bad!r}")
    return texts


def _seq2seq_shell(scheme: str, model: models.Model, lowercase: bool) -> Tokenizer:
    """An untrained back end of ``scheme`` with the normaliser, pre-tokeniser, decoder and specials set."""
    tok = Tokenizer(model)
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    if scheme == "char":
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character
        tok.decoder = decoders.Fuse()
    else:
        # "Hello, world!" -> "▁Hello" "," "▁world" "!": spaces become a ▁ prefix, punctuation splits off.
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])
        tok.decoder = decoders.Metaspace()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return tok


def train_seq2seq_backend(
    texts: Sequence[str],
    scheme: str = "char",
    vocab_size: int | None = None,
    min_frequency: int = 1,
    lowercase: bool = False,
) -> Tokenizer:
    """A ``"char"``, ``"word"`` or ``"bpe"`` back end with ``<pad>=0 <sos>=1 <eos>=2 <unk>=3``.

    Args:
        texts: training strings.
        scheme: ``"char"`` (one token per character), ``"word"`` (words and punctuation, ``▁`` marks a
            preceding space) or ``"bpe"`` (Sennrich et al. 2016, on the word pre-tokenisation).
        vocab_size: largest vocabulary, specials included (most frequent items kept); ``None`` keeps every
            item for char/word and means 2000 for BPE.
        min_frequency: drop items seen fewer times.
        lowercase: lower-case text before tokenising (also when encoding later).

    Returns:
        The trained ``tokenizers.Tokenizer``.

    Example:
        >>> train_seq2seq_backend(["ab ab"], scheme="word").get_vocab(with_added_tokens=False)["▁ab"] > 3
        True
    """
    if scheme not in TOKENIZER_SCHEMES:
        raise ValueError(f"Expected scheme to be one of {TOKENIZER_SCHEMES}. Received: scheme={scheme!r}")
    if vocab_size is not None and (not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS)):
        raise ValueError(
            f"Expected vocab_size to be None or an int > {len(SPECIAL_TOKENS)}. Received: vocab_size={vocab_size!r}"
        )
    texts = _check_texts(texts)
    if scheme == "char":
        counts = Counter(c for t in texts for c in (t.lower() if lowercase else t))
        items = sorted((c for c, n in counts.items() if n >= min_frequency), key=lambda c: (-counts[c], c))
        if vocab_size is not None:
            items = items[: vocab_size - len(SPECIAL_TOKENS)]
        vocab = {s: i for i, s in enumerate(SPECIAL_TOKENS)}
        vocab.update({c: len(SPECIAL_TOKENS) + i for i, c in enumerate(items)})
        return _seq2seq_shell(scheme, models.WordLevel(vocab, unk_token=UNK), lowercase)
    if scheme == "word":
        backend = _seq2seq_shell(scheme, models.WordLevel(unk_token=UNK), lowercase)
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size if vocab_size is not None else 10**9, min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    else:
        backend = _seq2seq_shell(scheme, models.BPE(unk_token=UNK), lowercase)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size if vocab_size is not None else DEFAULT_BPE_VOCAB, min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    backend.train_from_iterator(texts, trainer)
    return backend


def _check_vocab_size(vocab_size: int, minimum: int, what: str) -> None:
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < minimum:
        raise ValueError(f"vocab_size must be an int >= {minimum} for {what}. Received: {vocab_size!r}")


def train_byte_bpe_backend(texts: Sequence[str], vocab_size: int = 1000, min_frequency: int = 2) -> Tokenizer:
    """A GPT-2-style byte-level BPE back end; see :func:`attnkit.data.lm_tokenizers.train_byte_bpe`.

    Example:
        >>> train_byte_bpe_backend(["ab ab ab"], vocab_size=258).get_vocab_size()
        258
    """
    _check_vocab_size(vocab_size, BYTE_ALPHABET + 1, "byte-level BPE (256 bytes + <|endoftext|>)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_check_texts(texts), trainer)
    return tok


def train_wordpiece_backend(
    texts: Sequence[str], vocab_size: int = 2000, lowercase: bool = True, min_frequency: int = 1
) -> Tokenizer:
    """A BERT WordPiece back end; see :func:`attnkit.data.lm_tokenizers.train_wordpiece`.

    Example:
        >>> train_wordpiece_backend(["a b"], vocab_size=10).token_to_id("[MASK]")
        4
    """
    _check_vocab_size(vocab_size, len(BERT_SPECIAL_TOKENS) + 1, "WordPiece (5 special tokens + pieces)")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(BERT_SPECIAL_TOKENS),
        show_progress=False,
    )
    tok.train_from_iterator(_check_texts(texts), trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tok
