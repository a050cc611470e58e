"""Language-model recipes: a small GPT (causal LM) or BERT (masked LM + next sentence) on a text file.

Used by ``attnkit train gpt``, ``attnkit train bert`` and ``attnkit generate``.

- ``TextRunSpec``: how the data is made (text file, seed, block size / longest pair, held-out share).
- ``LMOptions``: the model's sizes and the tokenizer (trained on the text, or read from a file).
- ``prepare_gpt`` / ``prepare_bert``: a checked ``PreparedRun``; the validation loss picks the best model.
- ``continue_text``: greedy or sampled continuation of a prompt.

The model classes are reached through four small calls (``new_gpt_lm``, ``new_bert_pretraining``,
``resume_lm``, ``tokenizer_of``) so that the model layer can change underneath in one place.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from attnkit.training import TrainConfig
    >>> text = Path(tempfile.mkdtemp()) / "t.txt"
    >>> _ = text.write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    >>> run = prepare_gpt(TextRunSpec("gpt", str(text), length=8),
    ...                   LMOptions(layers=1, heads=2, width=8, vocab_size=260, batch_size=4),
    ...                   TrainConfig(steps=2, progress=False, device="cpu"))
    >>> run.fit().steps
    2
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import torch

from attnkit.data.lm_streams import BlockStream, SentencePairStream, eval_blocks
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
from attnkit.errors import InputError
from attnkit.models.bert import BertConfig
from attnkit.models.bert_data import mask_tokens
from attnkit.models.bert_heads import BertForPreTraining
from attnkit.models.gpt import GPT, GPTConfig
from attnkit.recipes.common import Log, PreparedRun, no_log
from attnkit.storage import read_json
from attnkit.training.runtime import global_batch_size, resolve_device, seed_everything
from attnkit.training.trainer import TrainConfig, TrainResult

MAX_EVAL_BATCHES = 50


@dataclass
class TextRunSpec:
    """How a language-model run's data is made; saved as ``run.json`` (``--resume`` reads it back).

    Example:
        >>> TextRunSpec("bert", "corpus.txt", length=64).mlm_probability
        0.15
    """

    model: str = "gpt"  # gpt | bert
    text: str = ""  # the text file
    seed: int = 0  # data order, masks and initialisation
    length: int = 128  # GPT block size / BERT longest pair (tokens, specials included)
    valid_fraction: float = 0.1  # trailing part of the text held out for validation
    mlm_probability: float = 0.15  # BERT: share of tokens chosen for the masked LM

    @classmethod
    def read(cls, path: Path) -> TextRunSpec | None:
        """``run.json`` of a run directory, or None when there is none (unknown keys are ignored)."""
        if not path.is_file():
            return None
        data = read_json(path, dict)  # names the file when damaged
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in fields(cls)}})


@dataclass
class LMOptions:
    """Sizes of a fresh model and its tokenizer (ignored on resume: the checkpoint fixes them).

    Example:
        >>> LMOptions(layers=2, width=64).heads
        4
    """

    layers: int = 4  # blocks L
    heads: int = 4  # attention heads H per block (width must be a multiple)
    width: int = 128  # model width D
    dropout: float = 0.1  # on embeddings, attention weights and block outputs
    vocab_size: int = 2000  # tokenizer trained on the text (GPT: byte-level BPE; BERT: WordPiece)
    tokenizer: Path | None = None  # a tokenizer.json (or a directory holding one) instead of training one
    lowercase: bool = True  # BERT: lower-case the text when training WordPiece
    batch_size: int = 32  # blocks / sentence pairs per batch


# ----------------------------------------------------------------------------------------------------------
# The model layer, reached through these calls only
# ----------------------------------------------------------------------------------------------------------


def new_gpt_lm(config: GPTConfig, tokenizer: Any) -> GPT:
    """A fresh trainable GPT language model carrying ``tokenizer``."""
    model = GPT(config)
    model.tokenizer = tokenizer
    return model


def new_bert_pretraining(config: BertConfig, tokenizer: Any) -> BertForPreTraining:
    """A fresh trainable BERT (masked LM + next-sentence prediction) carrying ``tokenizer``."""
    model = BertForPreTraining(config)
    model.tokenizer = tokenizer
    return model


def resume_lm(model_class: type[GPT] | type[BertForPreTraining], directory: Path) -> Any:
    """The ``GPT`` or ``BertForPreTraining`` (with its tokenizer) saved in a checkpoint ``directory``."""
    model = model_class.load(directory)
    if tokenizer_of(model) is None:
        raise InputError(f"--resume: {str(directory)!r} has no tokenizer.json")
    return model


def tokenizer_of(model: Any) -> Any:
    """The Hugging Face ``tokenizers.Tokenizer`` a language model carries (None if it has none)."""
    return model.tokenizer


# ----------------------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------------------


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


def check_lm(spec: TextRunSpec, options: LMOptions) -> None:
    """``InputError`` naming the flag for any size out of range (before anything is read or written).

    Example:
        >>> check_lm(TextRunSpec(), LMOptions(width=30, heads=4))
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --d-model must be a positive multiple of --heads. Received: --d-model 30, --heads 4
    """
    o = options
    _need(o.layers >= 1, f"--layers must be >= 1. Received: {o.layers}")
    _need(o.heads >= 1, f"--heads must be >= 1. Received: {o.heads}")
    _need(o.width >= 1 and o.width % o.heads == 0,
          f"--d-model must be a positive multiple of --heads. Received: --d-model {o.width}, --heads {o.heads}")
    _need(o.batch_size >= 1, f"--batch-size must be >= 1. Received: {o.batch_size}")
    _need(0.0 <= o.dropout < 1.0, f"--dropout must be in [0, 1). Received: {o.dropout}")
    _need(0.0 <= spec.valid_fraction <= 0.5, f"--valid-fraction must be in [0, 0.5]. Received: {spec.valid_fraction}")
    if spec.model == "gpt":
        _need(spec.length >= 2, f"--block-size must be >= 2. Received: {spec.length}")
        _need(o.vocab_size >= 257, "--vocab-size must be >= 257 for byte-level BPE (256 bytes + <|endoftext|>). "
              f"Received: {o.vocab_size}")
    else:
        _need(spec.length >= 5, f"--max-len must be >= 5 ([CLS] A [SEP] B [SEP]). Received: {spec.length}")
        _need(o.vocab_size >= 6, f"--vocab-size must be >= 6 (5 special tokens + pieces). Received: {o.vocab_size}")
        _need(0.0 < spec.mlm_probability < 1.0,
              f"--mlm-probability must be in (0, 1). Received: {spec.mlm_probability}")


def _checkpoint(config: TrainConfig) -> Path:
    return Path(str(config.out_dir)) / "checkpoint"


# ----------------------------------------------------------------------------------------------------------
# GPT
# ----------------------------------------------------------------------------------------------------------


def _gpt_model(spec: TextRunSpec, o: LMOptions, config: TrainConfig, raw: str) -> Any:
    """Resumed from the checkpoint, or fresh: tokenizer read or trained, weights from ``spec.seed``."""
    if config.resume:
        return resume_lm(GPT, _checkpoint(config))
    tok = load_tokenizer(o.tokenizer) if o.tokenizer else train_byte_bpe([raw], vocab_size=o.vocab_size)
    seed_everything(spec.seed)  # the initial weights depend on --seed only
    eos = tok.token_to_id(EOS_TOKEN)
    return new_gpt_lm(GPTConfig(vocab_size=tok.get_vocab_size(), n_positions=spec.length, n_embd=o.width,
                                n_layer=o.layers, n_head=o.heads, resid_pdrop=o.dropout, embd_pdrop=o.dropout,
                                attn_pdrop=o.dropout, bos_token_id=eos, eos_token_id=eos), tok)


def prepare_gpt(spec: TextRunSpec, options: LMOptions, config: TrainConfig, log: Log = no_log) -> PreparedRun:
    """The ``train gpt`` recipe: a GPT-2-style causal LM on the whole text as one token stream.

    Args:
        spec: the data recipe (``length`` = block size = the model's context).
        options: sizes and tokenizer of a fresh model.
        config: trainer settings (``metric="loss"``, ``mode="min"`` are set here); with ``resume`` the model
            comes from ``config.out_dir/checkpoint``.
        log: unused (kept for a uniform recipe signature).

    Returns:
        A ``PreparedRun``: training blocks, and up to 50 batches of held-out blocks from the end of the text.
    """
    check_lm(spec, options)
    raw = read_text(spec.text)
    model = _gpt_model(spec, options, config, raw)
    train_ids, valid_ids = split_tokens(encode_text(tokenizer_of(model), raw), spec)  # (tokens,) each
    stream = BlockStream(train_ids, block_size=spec.length, batch_size=global_batch_size(options.batch_size),
                         seed=spec.seed)
    valid = eval_blocks(valid_ids, spec.length, options.batch_size)[:MAX_EVAL_BATCHES] if len(valid_ids) else []
    c = model.config
    summary = (f"training gpt ({c.n_layer} layers, {c.n_head} heads, width {c.n_embd}, "
               f"{model.num_parameters():,} parameters) on {spec.text}: {len(train_ids):,} tokens in blocks of "
               f"{spec.length}, vocabulary {c.vocab_size}"
               + (f"; {len(valid_ids):,} tokens for validation" if valid else "; no validation split"))
    return PreparedRun(model, dataclasses.replace(config, metric="loss", mode="min"), stream, _evaluator(valid),
                       summary, best_line=_gpt_best)


def split_tokens(ids: Any, spec: TextRunSpec) -> tuple[Any, Any]:
    """``(train, held_out)``: the trailing ``spec.valid_fraction`` of the token ids is held out (none when
    either part would be shorter than one block of ``spec.length``).

    Example:
        >>> train, held = split_tokens(list(range(100)), TextRunSpec(length=8, valid_fraction=0.1))
        >>> len(train), held
        (90, [90, 91, 92, 93, 94, 95, 96, 97, 98, 99])
    """
    n_valid = int(len(ids) * spec.valid_fraction)
    if n_valid < spec.length or len(ids) - n_valid < spec.length:
        n_valid = 0
    return ids[: len(ids) - n_valid], ids[len(ids) - n_valid:]


def _evaluator(valid: list) -> Any:
    return (lambda m: m.evaluate_batches(valid)) if valid else None


def _gpt_best(result: TrainResult) -> str | None:
    if result.best_metric is None:
        return None
    return (f"best validation loss {result.best_metric:.4f} (perplexity "
            f"{math.exp(min(result.best_metric, 50)):.2f}) at step {result.best_step}; ")


# ----------------------------------------------------------------------------------------------------------
# BERT
# ----------------------------------------------------------------------------------------------------------


def _bert_model(spec: TextRunSpec, o: LMOptions, config: TrainConfig, documents: list[list[str]]) -> Any:
    """Resumed from the checkpoint, or fresh: WordPiece read or trained, weights from ``spec.seed``."""
    if config.resume:
        return resume_lm(BertForPreTraining, _checkpoint(config))
    if o.tokenizer:
        tok = load_tokenizer(o.tokenizer, required=BERT_SPECIAL_TOKENS)
    else:
        tok = train_wordpiece([s for doc in documents for s in doc], vocab_size=o.vocab_size, lowercase=o.lowercase)
    seed_everything(spec.seed)  # the initial weights depend on --seed only
    return new_bert_pretraining(BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=o.width, num_hidden_layers=o.layers,
        num_attention_heads=o.heads, intermediate_size=4 * o.width, max_position_embeddings=spec.length,
        hidden_dropout_prob=o.dropout, attention_probs_dropout_prob=o.dropout,
        pad_token_id=tok.token_to_id("[PAD]")), tok)


def prepare_bert(spec: TextRunSpec, options: LMOptions, config: TrainConfig, log: Log = no_log) -> PreparedRun:
    """The ``train bert`` recipe: masked LM + next-sentence prediction on sentence pairs of the text.

    The text has one sentence (or segment) per line and blank lines between documents; trailing sentences
    are held out. Args and Returns as ``prepare_gpt`` (``spec.length`` = longest ``[CLS] A [SEP] B [SEP]``).
    """
    check_lm(spec, options)
    documents = split_sentences(read_text(spec.text))
    model = _bert_model(spec, options, config, documents)
    train_docs, valid_docs = split_documents(encode_documents(tokenizer_of(model), documents), spec.valid_fraction)
    pairs = _pair_stream(model, spec, global_batch_size(options.batch_size))
    stream = pairs(train_docs, seed=spec.seed)
    valid = _fixed_pairs(pairs, valid_docs, spec)[:MAX_EVAL_BATCHES]
    c = model.config
    summary = (f"training bert ({c.num_hidden_layers} layers, {c.num_attention_heads} heads, width "
               f"{c.hidden_size}, {model.num_parameters():,} parameters) on {spec.text}: "
               f"{len(stream.sentences):,} sentences, {len(stream.has_next):,} pairs per epoch, vocabulary "
               f"{c.vocab_size}" + (f"; {len(valid)} validation batches" if valid else "; no validation split"))
    return PreparedRun(model, dataclasses.replace(config, metric="loss", mode="min"), stream, _evaluator(valid),
                       summary, best_line=_bert_best)


def _pair_stream(model: Any, spec: TextRunSpec, batch_size: int) -> Any:
    """``SentencePairStream`` with the model's special ids and the run's masking, waiting for documents."""
    tok = tokenizer_of(model)
    mask_fn = partial(mask_tokens, mask_token_id=tok.token_to_id("[MASK]"), vocab_size=model.config.vocab_size,
                      mlm_probability=spec.mlm_probability)
    ids = {name: tok.token_to_id(t) for name, t in (("cls_id", "[CLS]"), ("sep_id", "[SEP]"), ("pad_id", "[PAD]"))}
    return partial(SentencePairStream, mask_fn=mask_fn, max_len=spec.length, batch_size=batch_size, **ids)


def _fixed_pairs(pairs: Any, docs: list, spec: TextRunSpec) -> list:
    """The fixed (always equally masked) validation batches of ``docs``; none without a two-sentence document."""
    if not docs or not sum(len(d) > 1 for d in docs):
        return []
    return pairs(docs, seed=spec.seed + 1).fixed_batches()


def _bert_best(result: TrainResult) -> str | None:
    if not result.history:
        return None
    h = next((h for h in result.history if h["step"] == result.best_step), result.history[-1])
    return (f"validation at step {h['step']}: MLM accuracy {h['mlm_accuracy']:.4f}, MLM loss "
            f"{h['mlm_loss']:.4f}, NSP accuracy {h['nsp_accuracy']:.4f}; ")


# ----------------------------------------------------------------------------------------------------------
# Evaluation on held-out text
# ----------------------------------------------------------------------------------------------------------


def evaluate_lm(model: Any, spec: TextRunSpec, text: str | Path | None = None, batch_size: int = 32,
                max_batches: int | None = None) -> dict[str, Any]:
    """Scores of a trained language model on held-out text, with the batches its training validated on.

    Args:
        model: a ``GPT`` or ``BertForPreTraining`` carrying its tokenizer (``attnkit.load`` of a run).
        spec: the run's ``TextRunSpec`` (``run.json``): its text, held-out share, block size / longest pair,
            masking share and seed.
        text: another UTF-8 file to score as a whole (default: the held-out tail of ``spec.text``).
        batch_size: blocks / sentence pairs per batch.
        max_batches: score at most this many batches (default: all).

    Returns:
        GPT: ``loss`` (mean next-token cross-entropy), ``perplexity = exp(loss)``, ``accuracy`` (next token);
        BERT: ``mlm_accuracy`` (share of the chosen tokens predicted exactly), ``mlm_loss``,
        ``nsp_accuracy``, ``nsp_loss``, ``loss``. Both with ``text`` and ``batches``.

    Raises:
        InputError: no held-out text (``--valid-fraction 0`` or a short text) and no ``text`` given.

    Example:
        >>> import tempfile
        >>> from attnkit.training import TrainConfig
        >>> text = Path(tempfile.mkdtemp()) / "t.txt"
        >>> _ = text.write_text("the cat sat on the mat. " * 40, encoding="utf-8")
        >>> spec = TextRunSpec("gpt", str(text), length=8)
        >>> run = prepare_gpt(spec, LMOptions(layers=1, heads=2, width=8, vocab_size=260, batch_size=4),
        ...                   TrainConfig(steps=1, progress=False, device="cpu"))
        >>> scores = evaluate_lm(run.model, spec)
        >>> sorted(scores), scores["batches"]
        (['accuracy', 'batches', 'loss', 'perplexity', 'text'], 1)
    """
    source = str(text if text is not None else spec.text)
    raw = read_text(source)
    if isinstance(model, GPT):
        ids = encode_text(tokenizer_of(model), raw)  # (tokens,)
        held = ids if text is not None else split_tokens(ids, spec)[1]
        block = min(spec.length, model.config.n_positions)
        batches = eval_blocks(held, block, batch_size) if len(held) >= block else []
    else:
        docs = encode_documents(tokenizer_of(model), split_sentences(raw))
        held = docs if text is not None else split_documents(docs, spec.valid_fraction)[1]
        batches = _fixed_pairs(_pair_stream(model, spec, batch_size), held, spec)
    batches = batches[:max_batches]
    _need(bool(batches), f"no held-out text to score in {source!r} (the run kept none: --valid-fraction 0 or a "
          "short text). Expected --data FILE with text to score")
    with torch.no_grad():
        scores = model.eval().evaluate_batches(batches)
    return {"text": source, "batches": len(batches), **scores}


# ----------------------------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Sampling:
    """How ``continue_text`` picks tokens.

    Example:
        >>> Sampling(do_sample=True, top_k=5).temperature
        1.0
    """

    do_sample: bool = False  # sample from the softmax (else greedy)
    temperature: float = 1.0  # with do_sample: logits / temperature
    top_k: int | None = None  # with do_sample: only the K most likely tokens
    top_p: float | None = None  # with do_sample: nucleus of probability P
    seed: int = 0  # the same seed gives the same text
    stop_at_eos: bool = True  # stop at the model's end-of-text token

    def check(self) -> None:
        """``InputError`` for values out of range."""
        _need(self.temperature > 0, f"--temperature must be > 0. Received: {self.temperature}")
        _need(self.top_k is None or self.top_k >= 1, f"--top-k must be >= 1. Received: {self.top_k}")
        _need(self.top_p is None or 0 < self.top_p <= 1, f"--top-p must be in (0, 1]. Received: {self.top_p}")


def _prompt_ids(model: Any, prompt: str, max_new_tokens: int) -> tuple[list[int], int | None]:
    """The prompt's ids (``[eos]`` for an empty prompt) and the end-of-text id; checks the context fits."""
    tok, c = tokenizer_of(model), model.config
    bad = unknown_pieces(tok, prompt)
    _need(not bad, f"the prompt has text the model's tokenizer cannot encode: {bad[:10]}")
    ids = tok.encode(prompt, add_special=False)
    eos = c.eos_token_id if c.eos_token_id is not None else tok.token_to_id(EOS_TOKEN)
    if not ids:
        _need(eos is not None, "empty prompt and no end-of-text token to start from; give a prompt")
        ids = [eos]
    _need(len(ids) + max_new_tokens <= c.n_positions,
          f"prompt ({len(ids)} tokens) + --max-new-tokens {max_new_tokens} = {len(ids) + max_new_tokens} is more "
          f"than the model's context of {c.n_positions} tokens; shorten the prompt or lower --max-new-tokens")
    return ids, eos


def continue_text(model: Any, prompt: str, max_new_tokens: int, sampling: Sampling | None = None,
                  device: str = "auto") -> str:
    """The text a GPT (carrying its tokenizer) writes after ``prompt``: the new text only.

    Args:
        model: a ``GPT`` with ``tokenizer``.
        prompt: text to continue (empty: start from the end-of-text token).
        max_new_tokens: tokens to generate (fewer only at the end-of-text token with ``stop_at_eos``).
        sampling: greedy by default.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Returns:
        The continuation (end-of-text tokens removed).
    """
    s = sampling or Sampling()
    _need(max_new_tokens >= 1, f"--max-new-tokens must be >= 1. Received: {max_new_tokens}")
    s.check()
    ids, eos = _prompt_ids(model, prompt, max_new_tokens)
    dev = resolve_device(device)
    model.to(dev)
    out = model.generate(torch.tensor([ids], device=dev), max_new_tokens, do_sample=s.do_sample,
                         temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                         eos_token_id=eos if s.stop_at_eos else None,
                         generator=torch.Generator(device=dev).manual_seed(s.seed))  # (1, T + new)
    tok = tokenizer_of(model)
    new = [i for i in out[0, len(ids):].tolist() if i != eos]
    full, head = tok.decode(ids + new), tok.decode(ids)
    return full[len(head):] if full.startswith(head) else tok.decode(new)
