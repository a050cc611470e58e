"""Sequence-to-sequence recipes: data splits, tokenizers, Seq2Seq / Transformer, training, decoding, scores.

Used by ``attnkit train seq2seq``, ``train transformer``, ``translate``, ``evaluate``, ``demo`` and
``experiment length``, and by ``benchmarks/compare_seq2seq.py``.

- ``RunSpec``: how a run's data is made (task or file, seed, lengths, tokenizer); saved as ``run.json``.
- ``load_split``, ``build_tokenizers``, ``length_limits``, ``build_model``, ``build_transformer``.
- ``prepare_seq2seq`` / ``prepare_transformer``: a checked ``PreparedRun`` (greedy validation exact match
  picks the best model); ``train_model`` trains a model you built.
- ``predict``, ``score``, ``translate_detailed``: outputs, metrics, and outputs with their alignments.

AER against a built-in task's gold links (``alignment_scores``, per Transformer head) is in
:mod:`attnkit.recipes.alignment`.

Example:
    >>> from attnkit.training import TrainConfig
    >>> spec = RunSpec(data="reverse", min_len=2, max_len=4)
    >>> run = prepare_seq2seq(spec, TrainConfig(steps=2, eval_every=2, progress=False, device="cpu"),
    ...                       {"embed_dim": 4, "hidden_dim": 8, "attention_dim": 8}, batch_size=8,
    ...                       train_size=40, valid_size=4)
    >>> result = run.fit()
    >>> result.steps, len(predict(run.model, ["abc"]))
    (2, 1)
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from attnkit.data import BUILTIN_TASKS, Tokenizer, encode_pairs, load_pairs, tokenizer_options
from attnkit.data.batches import BatchStream
from attnkit.errors import InputError
from attnkit.metrics import bleu, by_length_bucket, exact_match, token_accuracy
from attnkit.models.seq2seq import ATTENTIONS, CELLS, Seq2Seq, Seq2SeqConfig
from attnkit.models.transformer import NORMS, POSITIONALS, SHARINGS, Transformer, TransformerConfig
from attnkit.recipes.common import Log, PreparedRun, check_choice
from attnkit.storage import read_json
from attnkit.training.runtime import global_batch_size
from attnkit.training.trainer import TrainConfig, TrainResult

Pairs = list[tuple[str, str]]
TOKENIZER_SCHEMES: tuple[str, ...] = ("char", "word", "bpe")


@dataclass
class RunSpec:
    """How a run's data is made; saved as ``run.json`` so ``evaluate`` rebuilds the same splits.

    Example:
        >>> RunSpec(data="dates", seed=3).data
        'dates'
    """

    data: str = "dates"  # built-in task name or TSV path
    seed: int = 0  # split and sampling seed
    tokenizer: str | None = None  # char | word | bpe (None: the task's default)
    vocab_size: int | None = None  # BPE / word vocabulary limit
    min_len: int | None = None  # length bounds of numbers / toy tasks
    max_len: int | None = None
    test_max_len: int | None = None
    on_error: str = "raise"  # malformed TSV lines: raise | skip

    @classmethod
    def read(cls, path: Path) -> RunSpec | None:
        """``run.json`` of a run directory, or None when there is none (unknown keys are ignored)."""
        if not path.is_file():
            return None
        data = read_json(path, dict)  # names the file when damaged
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# ----------------------------------------------------------------------------------------------------------
# Data, tokenizers, models
# ----------------------------------------------------------------------------------------------------------


def load_split(spec: RunSpec, split: str, size: int | None, log: Log | None = None) -> Pairs:
    """``(source, target)`` pairs of one split; user-file problems become ``InputError`` (exit 2).

    Args:
        spec: the data recipe.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        size: pairs wanted (None: the task's default, or a whole file split).
        log: where the reader's warnings (e.g. skipped lines) go as ``"warning: ..."`` lines; None lets
            them through as Python warnings.

    Returns:
        The pairs.

    Example:
        >>> load_split(RunSpec(data="reverse", min_len=3, max_len=3), "train", 2)[0][0].__len__()
        3
    """
    if spec.on_error not in ("raise", "skip"):
        raise InputError(f"--on-error must be 'raise' or 'skip'. Received: {spec.on_error!r}")
    kwargs: dict[str, Any] = {"size": size, "seed": spec.seed}
    if spec.data in BUILTIN_TASKS:
        kwargs.update(min_len=spec.min_len, max_len=spec.max_len, test_max_len=spec.test_max_len)
    else:
        kwargs["on_error"] = spec.on_error
    if log is None:
        pairs = load_pairs(spec.data, split, **kwargs)
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pairs = load_pairs(spec.data, split, **kwargs)
        for w in caught:
            log(f"warning: {w.message}")
    if not pairs:
        raise InputError(f"the {split} split of {spec.data!r} is empty; give more data or a larger --*-size")
    return pairs


def build_tokenizers(spec: RunSpec, pairs: Pairs) -> tuple[Tokenizer, Tokenizer]:
    """Source and target tokenizers trained on the training pairs (built-in targets keep the task's scheme).

    Example:
        >>> src, tgt = build_tokenizers(RunSpec(data="dates"), [("3 mars 2021", "2021-03-03")])
        >>> tgt.scheme
        'char'
    """
    opts = tokenizer_options(spec.data)
    scheme = spec.tokenizer or opts["scheme"]
    src = Tokenizer.train([s for s, _ in pairs], scheme=scheme, vocab_size=spec.vocab_size,
                          lowercase=opts.get("lowercase", False))
    tgt_scheme = tokenizer_options(spec.data, "target")["scheme"] if spec.data in BUILTIN_TASKS else scheme
    tgt = Tokenizer.train([t for _, t in pairs], scheme=tgt_scheme, vocab_size=spec.vocab_size)
    return src, tgt


def length_limits(src_tok: Tokenizer, tgt_tok: Tokenizer, pairs: Pairs) -> dict[str, int]:
    """``max_src_len`` / ``max_tgt_len`` of a model config: room for twice the longest pair (in tokens).

    Example:
        >>> tok = Tokenizer.train(["abc"], scheme="char")
        >>> length_limits(tok, tok, [("abc", "ab")])
        {'max_src_len': 256, 'max_tgt_len': 18}
    """
    longest_src = max(len(ids) for ids in src_tok.encode_batch([s for s, _ in pairs]))
    longest_tgt = max(len(ids) for ids in tgt_tok.encode_batch([t for _, t in pairs]))
    return {"max_src_len": max(256, 2 * longest_src), "max_tgt_len": 2 * longest_tgt + 10}


def _special_ids(src_tok: Tokenizer, tgt_tok: Tokenizer) -> dict[str, int]:
    return {"pad_id": tgt_tok.pad_id, "sos_id": tgt_tok.sos_id, "eos_id": tgt_tok.eos_id,
            "unk_id": src_tok.unk_id}


def build_model(src_tok: Tokenizer, tgt_tok: Tokenizer, pairs: Pairs, seed: int = 0, **config: Any) -> Seq2Seq:
    """A fresh ``Seq2Seq`` sized for the tokenizers, initialised from ``seed``; length limits from the pairs.

    Example:
        >>> pairs = [("abc", "cba")]
        >>> tok = Tokenizer.train(["abc"], scheme="char")
        >>> build_model(tok, tok, pairs, hidden_dim=8, embed_dim=4).config.hidden_dim
        8
    """
    cfg = Seq2SeqConfig(src_vocab_size=src_tok.vocab_size, tgt_vocab_size=tgt_tok.vocab_size,
                        **length_limits(src_tok, tgt_tok, pairs), **_special_ids(src_tok, tgt_tok), **config)
    torch.manual_seed(seed)
    model = Seq2Seq(cfg)
    model.tokenizers = {"source": src_tok, "target": tgt_tok}
    return model


def build_transformer(spec: RunSpec, pairs: Pairs, share_embeddings: str = "none",
                      **config: Any) -> Transformer:
    """A fresh ``Transformer`` with tokenizers trained on ``pairs``; position tables from the longest pair.

    With ``share_embeddings="all"`` one tokenizer is trained on sources and targets together and serves
    both sides (one vocabulary, one embedding matrix); otherwise each side has its own (built-in targets
    keep their task's scheme, as for the RNN models).

    Example:
        >>> pairs = load_split(RunSpec(data="reverse", max_len=5), "train", 20)
        >>> build_transformer(RunSpec(data="reverse"), pairs, d_model=8, num_heads=2).config.d_model
        8
    """
    if share_embeddings == "all":
        opts = tokenizer_options(spec.data)
        tok = Tokenizer.train([s for s, _ in pairs] + [t for _, t in pairs], scheme=spec.tokenizer or opts["scheme"],
                              vocab_size=spec.vocab_size, lowercase=opts.get("lowercase", False))
        src_tok = tgt_tok = tok
    else:
        src_tok, tgt_tok = build_tokenizers(spec, pairs)
    cfg = TransformerConfig(src_vocab_size=src_tok.vocab_size, tgt_vocab_size=tgt_tok.vocab_size,
                            share_embeddings=share_embeddings, **length_limits(src_tok, tgt_tok, pairs),
                            **_special_ids(src_tok, tgt_tok), **config)
    torch.manual_seed(spec.seed)  # the initial weights depend on --seed only
    model = Transformer(cfg)
    model.tokenizers = {"source": src_tok, "target": tgt_tok}
    return model


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------


def exact_match_run(model: Seq2Seq, train: Pairs, valid: Pairs, config: TrainConfig, batch_size: int,
                    seed: int = 0, bucket_size: int | None = 8, summary: str = "") -> PreparedRun:
    """A ``PreparedRun`` with teacher forcing; greedy validation exact match picks the best model.

    ``bucket_size=k`` groups batches by source length within chunks of ``k`` batches (less padding, so
    faster when lengths vary a lot, but batches mix fewer kinds of input); ``None`` keeps batches random.
    """
    if bucket_size is not None and bucket_size < 1:
        raise InputError(f"--bucket-size must be >= 1. Received: {bucket_size}")
    src_tok, tgt_tok = model.tokenizers["source"], model.tokenizers["target"]
    stream = BatchStream(encode_pairs(train, src_tok, tgt_tok), batch_size=global_batch_size(batch_size), seed=seed,
                         bucket_size=bucket_size)
    sources, refs = [s for s, _ in valid], [t for _, t in valid]

    def evaluate(m: Seq2Seq) -> dict[str, float]:
        return {"exact_match": exact_match(predict(m, sources), refs)}

    config = dataclasses.replace(config, metric="exact_match", mode="max")
    return PreparedRun(model, config, stream, evaluate, summary, best_line=_best_exact_match)


def _best_exact_match(result: TrainResult) -> str | None:
    if result.best_metric is None:
        return None
    return f"best validation exact match {result.best_metric:.4f} at step {result.best_step}; "


def train_model(model: Seq2Seq, train: Pairs, valid: Pairs, config: TrainConfig, batch_size: int,
                seed: int = 0, bucket_size: int | None = 8) -> TrainResult:
    """Train ``model`` with teacher forcing (see ``exact_match_run``); returns the ``TrainResult``."""
    return exact_match_run(model, train, valid, config, batch_size, seed, bucket_size).fit()


def _check_tokenizer(spec: RunSpec) -> None:
    if spec.tokenizer is not None and spec.tokenizer not in TOKENIZER_SCHEMES:
        raise InputError(f"--tokenizer must be char, word or bpe. Received: {spec.tokenizer!r}")


def prepare_seq2seq(spec: RunSpec, config: TrainConfig, model: dict[str, Any], *, batch_size: int = 128,
                    train_size: int | None = None, valid_size: int = 500, bucket_size: int | None = None,
                    log: Log | None = None) -> PreparedRun:
    """The ``train seq2seq`` recipe: an RNN encoder-decoder on ``spec``'s data, checked, nothing written.

    Args:
        spec: the data recipe (with ``config.resume``: the run's saved one).
        config: trainer settings; ``metric``/``mode`` are set here. With ``resume`` the model and its
            tokenizers come from ``config.out_dir/checkpoint``.
        model: ``Seq2SeqConfig`` fields (``attention``, ``cell``, ``hidden_dim``, ...).
        batch_size, train_size, valid_size, bucket_size: batches and split sizes.
        log: where reader warnings go.

    Returns:
        A ``PreparedRun``; ``fit()`` trains.
    """
    check_choice("--attention", model.get("attention", "bahdanau"), ATTENTIONS)
    check_choice("--cell", model.get("cell", "gru"), CELLS)
    if not model.get("input_feeding", True) and not model.get("attention", "bahdanau").startswith("luong-"):
        raise InputError(f"--no-input-feeding needs a Luong attention (luong-*). Received: --attention "
                         f"{model.get('attention', 'bahdanau')}")
    if model.get("local_window", 1) < 1:
        raise InputError(f"--local-window must be >= 1. Received: {model['local_window']}")
    width = model.get("hidden_dim", 2)
    if width < 2 or width % 2:
        raise InputError(f"--d-model must be an even number >= 2 (half per encoder direction). Received: {width}")
    _check_tokenizer(spec)
    train, valid = load_split(spec, "train", train_size, log), load_split(spec, "validation", valid_size, log)
    if config.resume:  # the checkpoint fixes model and tokenizers
        net = Seq2Seq.load(Path(str(config.out_dir)) / "checkpoint")
    else:
        src_tok, tgt_tok = build_tokenizers(spec, train)
        net = build_model(src_tok, tgt_tok, train, seed=spec.seed, **model)
    summary = (f"training seq2seq ({net.config.attention}, {net.config.cell}, {net.num_parameters():,} "
               f"parameters) on {spec.data}: {len(train)} pairs, {len(valid)} for validation")
    return exact_match_run(net, train, valid, config, batch_size, spec.seed, bucket_size, summary)


def prepare_transformer(spec: RunSpec, config: TrainConfig, model: dict[str, Any], *,
                        share_embeddings: str = "none", batch_size: int = 128, train_size: int | None = None,
                        valid_size: int = 500, log: Log | None = None) -> PreparedRun:
    """The ``train transformer`` recipe: the encoder-decoder Transformer on ``spec``'s data.

    Args as ``prepare_seq2seq``; ``model`` holds ``TransformerConfig`` fields (``d_model``, ``num_heads``,
    ``norm``, ...), ``share_embeddings`` is ``"none"``, ``"decoder"`` or ``"all"``. Adam's ``beta_2`` is the
    paper's 0.98. A config value out of range is an ``InputError``.
    """
    check_choice("--norm", model.get("norm", "post"), NORMS)
    check_choice("--positional", model.get("positional", "sinusoidal"), POSITIONALS)
    check_choice("--share-embeddings", share_embeddings, SHARINGS)
    _check_tokenizer(spec)
    d_model, heads = model.get("d_model", 1), model.get("num_heads", 1)
    if d_model < 1 or heads < 1 or d_model % heads:
        raise InputError(f"--d-model must be a positive multiple of --heads. Received: --d-model {d_model}, "
                         f"--heads {heads}")
    train, valid = load_split(spec, "train", train_size, log), load_split(spec, "validation", valid_size, log)
    if config.resume:
        net = Transformer.load(Path(str(config.out_dir)) / "checkpoint")
    else:
        try:
            net = build_transformer(spec, train, share_embeddings=share_embeddings, **model)
        except ValueError as err:  # a config value out of range: a usage error
            raise InputError(str(err)) from err
    c = net.config
    summary = (f"training transformer ({c.encoder_layers}+{c.decoder_layers} layers, width {c.d_model}, "
               f"{c.num_heads} heads, {c.norm}-LN, {net.num_parameters():,} parameters) on {spec.data}: "
               f"{len(train)} pairs, {len(valid)} for validation")
    config = dataclasses.replace(config, betas=(0.9, 0.98))
    return exact_match_run(net, train, valid, config, batch_size, spec.seed, 8, summary)


# ----------------------------------------------------------------------------------------------------------
# Decoding and scores
# ----------------------------------------------------------------------------------------------------------


def predict(model: Seq2Seq, sources: list[str], beam_size: int = 1, batch_size: int = 512) -> list[str]:
    """Outputs for ``sources`` (decoded in length-sorted batches; the order of ``sources`` is kept)."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown-token counts are reported by the callers that care
        outs = model.translate([sources[i] for i in order], beam_size=beam_size, batch_size=batch_size)
    result = [""] * len(sources)
    for i, text in zip(order, outs, strict=True):
        result[i] = text
    return result


def score(model: Seq2Seq, pairs: Pairs, preds: list[str], buckets: int | list[int] = 10,
          length: str = "chars") -> dict[str, Any]:
    """Exact match, token accuracy, BLEU and exact match per source-length bucket."""
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    tgt = model.tokenizers["target"]
    pred_ids = tgt.encode_batch(preds, add_special=False)
    ref_ids = tgt.encode_batch(refs, add_special=False)
    char_level = tgt.scheme == "char"
    return {
        "exact_match": exact_match(preds, refs),
        "token_accuracy": token_accuracy(pred_ids, ref_ids),
        "bleu": bleu(preds, refs, tokenize="char" if char_level else "13a"),
        "examples": len(pairs),
        "by_length": [{"bucket": b.label, "count": b.count, "exact_match": b.score}
                      for b in by_length_bucket(sources, preds, refs, buckets, length=length)],
    }


def alignment_labels(model: Seq2Seq, text: str, out_ids: list[int]) -> tuple[list[str], list[str]]:
    """Row labels (output tokens, end token included) and column labels (source tokens) of an alignment."""
    src_tok, tgt_tok = model.tokenizers["source"], model.tokenizers["target"]
    src_ids = src_tok.encode(text)[: model.config.max_src_len]
    return tgt_tok.tokens(out_ids), src_tok.tokens(src_ids)


def translate_detailed(model: Seq2Seq, texts: list[str], beam_size: int = 1,
                       batch_size: int = 256) -> list[dict[str, Any]]:
    """Per text: ``output``, ``alignment`` ``(T_out, S)`` or None, ``rows``/``cols`` token labels, ``unknown``."""
    results = []
    for i in range(0, len(texts), batch_size):
        results += _translate_batch(model, texts[i: i + batch_size], beam_size)
    return results


def _translate_batch(model: Seq2Seq, texts: list[str], beam_size: int) -> list[dict[str, Any]]:
    model.eval()
    src, lengths, _, _ = model.encode_texts(texts)
    out = model.generate(src, lengths, beam_size=beam_size)
    src_tok = model.tokenizers["source"]
    results = []
    for b, text in enumerate(texts):
        n, t_out = int(lengths[b]), int(out.lengths[b])
        ids = out.tokens[b, :t_out].tolist()
        rows, cols = alignment_labels(model, text, ids)
        al = None if out.alignments is None else out.alignments[b, :t_out, :n].cpu()  # (T_out, S)
        results.append({"input": text, "output": model.tokenizers["target"].decode(ids), "alignment": al,
                        "rows": rows, "cols": cols, "unknown": dict(src_tok.unknown_counts([text]))})
    return results
