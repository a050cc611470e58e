"""Text in, text out for the sequence-to-sequence models (``Seq2Seq``, ``Transformer``), and their training step.

This module holds no model: it is the shared body of the models' ``training_step``, ``encode_texts`` and
``translate(texts, beam_size=1, return_alignments=False)`` methods. Both models keep their tokenizers in ``model.tokenizers`` (``"source"``, ``"target"``), their output layer
in ``model.out`` and the ids and limits in ``model.config`` (``pad_id``, ``eos_id``, ``unk_id``,
``max_src_len``), and decode with ``model.generate(src, src_lengths, beam_size=, length_penalty=)``. Their
``training_step``, ``encode_texts`` and ``translate`` methods call the functions here.

Shapes: ``B`` texts, ``S`` source ids (``<sos>`` and ``<eos>`` included), ``T_out`` output tokens.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn


def training_step(model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
    """Teacher-forced loss of one ``attnkit.data.batches.Batch`` and its token counts for the trainer.

    Returns:
        ``(loss, {"correct": right target tokens, "total": target tokens, "tokens": source + target tokens})``;
        padding (``config.pad_id`` in ``batch.tgt_out`` ``(B, T)``) counts nowhere.

    Example::

        loss, stats = training_step(model, next(iter(stream)))   # stream: an attnkit.data.BatchStream
    """
    out = model(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out)
    real = batch.tgt_out != model.config.pad_id  # (B, T)
    correct = ((out.logits.argmax(-1) == batch.tgt_out) & real).sum()
    total = real.sum()
    stats = {"correct": float(correct), "total": float(total), "tokens": float(total + batch.src_lengths.sum())}
    return out.loss, stats


def tokenizer(model: nn.Module, name: str) -> Any:
    """``model.tokenizers[name]``, or a ``ValueError`` naming the tokenizers the model has.

    Example:
        >>> from attnkit.data import Tokenizer
        >>> from attnkit.models import Seq2Seq, Seq2SeqConfig
        >>> model = Seq2Seq(Seq2SeqConfig(src_vocab_size=8, tgt_vocab_size=8, embed_dim=4, hidden_dim=4))
        >>> model.tokenizers = {"source": Tokenizer.train(["abc"], scheme="char")}
        >>> tokenizer(model, "source").vocab_size
        7
        >>> tokenizer(model, "target")
        Traceback (most recent call last):
        ...
        ValueError: this Seq2Seq has no 'target' tokenizer; set model.tokenizers['target'] (attnkit.load gives them back). Received tokenizers: ['source']
    """
    if name not in model.tokenizers:
        raise ValueError(f"this {type(model).__name__} has no {name!r} tokenizer; set model.tokenizers[{name!r}] "
                         f"(attnkit.load gives them back). Received tokenizers: {sorted(model.tokenizers)}")
    return model.tokenizers[name]


def encode_texts(model: nn.Module, texts: list[str]) -> tuple[Tensor, Tensor, int, int]:
    """Tokenise ``texts`` with the model's source tokenizer.

    Returns:
        ``(src (B, S), src_lengths (B,), n_unknown, n_truncated)`` on the model's device: ids are
        ``[<sos>, t_1, ..., <eos>]`` padded with ``pad_id``; tokens outside the vocabulary become ``unk_id``
        (counted in ``n_unknown``); inputs longer than ``config.max_src_len`` ids keep their first
        ``max_src_len - 1`` ids and the end token (counted in ``n_truncated``).

    Example:
        >>> from attnkit.data import Tokenizer
        >>> from attnkit.models import Seq2Seq, Seq2SeqConfig
        >>> model = Seq2Seq(Seq2SeqConfig(src_vocab_size=8, tgt_vocab_size=8, embed_dim=4, hidden_dim=4))
        >>> model.tokenizers = {"source": Tokenizer.train(["abc"], scheme="char")}
        >>> src, lengths, n_unknown, n_truncated = encode_texts(model, ["ab", "abcx"])
        >>> src.tolist(), lengths.tolist(), n_unknown, n_truncated
        ([[1, 4, 5, 2, 0, 0], [1, 4, 5, 6, 3, 2]], [4, 6], 1, 0)
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"Expected texts to be a list of str. Received: {type(texts).__name__}")
    texts = list(texts)
    c = model.config
    ids = tokenizer(model, "source").encode_batch(texts) if texts else []  # [<sos>, t_1, ..., t_n, <eos>]
    unknown = sum(i == c.unk_id for row in ids for i in row)
    limit = c.max_src_len
    truncated = sum(len(row) > limit for row in ids)
    ids = [row if len(row) <= limit else row[: limit - 1] + row[-1:] for row in ids]  # keep the end token
    device = model.out.weight.device
    src = torch.full((len(ids), max([len(row) for row in ids] + [1])), c.pad_id, dtype=torch.long,
                     device=device)  # (B, S)
    for b, row in enumerate(ids):
        src[b, : len(row)] = torch.tensor(row, dtype=torch.long, device=device)
    lengths = torch.tensor([len(row) for row in ids], dtype=torch.long, device=device)  # (B,)
    return src, lengths, unknown, truncated


def translate(model: nn.Module, texts: list[str], beam_size: int = 1, return_alignments: bool = False,
              batch_size: int = 256, length_penalty: float = 1.0) -> list[str] | list[tuple[str, Tensor]]:
    """Translate strings with the model's tokenizers, ``batch_size`` texts at a time, in eval mode.

    Unknown tokens become ``<unk>`` and inputs longer than ``max_src_len`` are truncated, each with a
    ``UserWarning`` (pointing at the caller of ``model.translate``) giving the count.

    Returns:
        The output strings, or ``(text, alignment)`` pairs with ``return_alignments=True``, ``alignment``
        ``(T_out, S)`` on the CPU (one row per output token, end token included; one column per source id),
        ``None`` when the model's ``generate`` gives no alignments.

    Example:
        >>> import torch
        >>> from attnkit.data import Tokenizer
        >>> from attnkit.models import Seq2Seq, Seq2SeqConfig
        >>> tok = Tokenizer.train(["abc"], scheme="char")
        >>> _ = torch.manual_seed(0)
        >>> model = Seq2Seq(Seq2SeqConfig(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size,
        ...                               embed_dim=4, hidden_dim=4, max_tgt_len=5))
        >>> model.tokenizers = {"source": tok, "target": tok}
        >>> (text, alignment), = translate(model, ["cab"], beam_size=2, return_alignments=True)  # untrained
        >>> isinstance(text, str), alignment.shape[1]  # columns: <sos>, c, a, b, <eos>
        (True, 5)
    """
    if isinstance(texts, str):
        raise TypeError(f"Expected texts to be a list of str. Received: {type(texts).__name__}")
    texts = list(texts)
    src, lengths, unknown, truncated = encode_texts(model, texts)
    if unknown:
        warnings.warn(f"{unknown} source token(s) outside the vocabulary were mapped to <unk>", stacklevel=3)
    if truncated:
        warnings.warn(f"{truncated} input(s) longer than max_src_len={model.config.max_src_len} tokens "
                      f"were truncated", stacklevel=3)
    target = tokenizer(model, "target")
    was_training = model.training
    model.eval()
    results: list[Any] = []
    try:
        for i in range(0, len(texts), batch_size):
            s, n = src[i: i + batch_size], lengths[i: i + batch_size]
            s = s[:, : max(int(n.max()), 1)]  # (b, longest source of the batch)
            out = model.generate(s, n, beam_size=beam_size, length_penalty=length_penalty)
            for b in range(s.size(0)):
                L = int(out.lengths[b])
                toks = out.tokens[b, :L].tolist()
                text = target.decode([t for t in toks if t != model.config.eos_id])
                al = out.alignments[b, :L, : int(n[b])].cpu() if out.alignments is not None else None
                results.append((text, al) if return_alignments else text)
    finally:
        model.train(was_training)
    return results


__all__ = ["encode_texts", "tokenizer", "training_step", "translate"]
