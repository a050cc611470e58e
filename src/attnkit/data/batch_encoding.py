"""Model inputs from text, the way Hugging Face tokenizers give them: what calling a
:class:`attnkit.data.tokenize.Tokenizer` returns.

``tok(texts, padding=True, truncation=True, return_tensors="pt")`` gives a :class:`BatchEncoding`, a dict with
``input_ids`` ``(B, T)``, ``token_type_ids`` ``(B, T)`` (tokenizers with ``[CLS]``/``[SEP]``, i.e. BERT's) and
``attention_mask`` ``(B, T)`` (1 = real token, 0 = padding), so ``model(**enc)`` passes the mask along. As in
``transformers``: nothing is padded or truncated unless asked (``padding=False``, ``truncation=False``);
``padding=True`` (= ``"longest"``) pads to the longest text of the call, ``"max_length"`` to ``max_length``;
``truncation=True`` cuts to ``max_length`` (default: the tokenizer's ``model_max_length``); one string in gives
one row out (a list of ids, or a ``(1, T)`` tensor).

Shape legend: B texts, T tokens of the longest (or ``max_length``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from tokenizers import Tokenizer as _HFTokenizer


class Encoder(Protocol):
    """What encoding reads of a tokenizer (:class:`attnkit.data.tokenize.Tokenizer` has it all)."""

    seq2seq: bool
    backend: _HFTokenizer
    model_max_length: int | None
    padding_side: str
    pad_id: int | None
    has_token_types: bool

    def encode_batch(self, texts: Sequence[str], add_special: bool = True) -> list[list[int]]: ...

PADDING = {False: None, "do_not_pad": None, True: "longest", "longest": "longest", "max_length": "max_length"}
TRUNCATION = {False: False, None: False, "do_not_truncate": False, True: True, "longest_first": True}
MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


class BatchEncoding(dict):
    """``input_ids``, ``token_type_ids`` (BERT-style tokenizers) and ``attention_mask``, as keys and attributes.

    Example:
        >>> enc = BatchEncoding(input_ids=torch.tensor([[5, 6]]), attention_mask=torch.tensor([[1, 0]]))
        >>> enc.attention_mask.tolist(), sorted(enc)
        ([[1, 0]], ['attention_mask', 'input_ids'])
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no {name!r}. Expected one of {list(self)}") from None

    def to(self, device: torch.device | str) -> BatchEncoding:
        """The same encoding with every tensor moved to ``device``."""
        return BatchEncoding({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.items()})


def _rows(tok: Encoder, texts: list[str], pairs: list[str] | None, add_special: bool,
          limit: int | None) -> tuple[list[list[int]], list[list[int]]]:
    """Ids and token type ids of each text (pair), cut to ``limit`` tokens when given."""
    if tok.seq2seq:  # <sos> t_1 .. t_n <eos>: cut inside, keep the ends
        if pairs is not None:
            raise ValueError("Expected text_pair=None: a sequence-to-sequence tokenizer encodes one text at a time. "
                             f"Received: {len(pairs)} pairs")
        ids = tok.encode_batch(texts, add_special)
        if limit is not None:
            keep = 1 if add_special else 0
            ids = [r if len(r) <= limit else r[: limit - keep] + r[len(r) - keep:] for r in ids]
        return ids, [[0] * len(r) for r in ids]
    backend = tok.backend
    saved = backend.padding, backend.truncation  # restored after the call
    try:
        backend.no_padding()
        if limit is not None:
            backend.enable_truncation(limit)
        else:
            backend.no_truncation()
        inputs = texts if pairs is None else list(zip(texts, pairs, strict=True))
        encs = backend.encode_batch(inputs, add_special_tokens=add_special)
    finally:
        if saved[0] is not None:
            backend.enable_padding(**saved[0])
        if saved[1] is not None:
            backend.enable_truncation(**saved[1])
        else:
            backend.no_truncation()
    return [list(e.ids) for e in encs], [list(e.type_ids) for e in encs]


def _pad(rows: list[list[int]], length: int, value: int, left: bool) -> list[list[int]]:
    return [([value] * (length - len(r)) + r) if left else (r + [value] * (length - len(r))) for r in rows]


def _limits(tok: Encoder, padding: object, truncation: object, max_length: int | None) -> tuple[str | None, int | None]:
    """The padding strategy and the truncation length of one call, checked."""
    if padding not in PADDING:
        raise ValueError(f"Expected padding in {list(PADDING)}. Received: padding={padding!r}")
    if truncation not in TRUNCATION:
        raise ValueError(f"Expected truncation in {list(TRUNCATION)}. Received: truncation={truncation!r}")
    if max_length is not None and (not isinstance(max_length, int) or max_length <= 0):
        raise ValueError(f"Expected max_length a positive int or None. Received: max_length={max_length!r}")
    strategy = PADDING[padding]
    if strategy == "max_length" and max_length is None:
        max_length = tok.model_max_length
        if max_length is None:
            raise ValueError("Expected max_length with padding='max_length' (the tokenizer has no model_max_length)")
    limit = (max_length or tok.model_max_length) if TRUNCATION[truncation] else None
    return strategy, limit


def encode_inputs(tok: Encoder, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None, *,
                  padding: bool | str = False, truncation: bool | str | None = False, max_length: int | None = None,
                  return_tensors: str | None = None, add_special_tokens: bool = True, padding_side: str | None = None,
                  pad_id: int | None = None) -> BatchEncoding:
    """What ``tok(text, ...)`` returns; see :meth:`attnkit.data.tokenize.Tokenizer.__call__` and the module docstring.

    Example:
        >>> from attnkit.data.tokenize import Tokenizer
        >>> tok = Tokenizer.train(["abc", "a"], scheme="char")
        >>> enc = encode_inputs(tok, ["abc", "a"], padding=True, return_tensors="pt")
        >>> enc["input_ids"].tolist(), enc["attention_mask"].tolist()
        ([[1, 4, 5, 6, 2], [1, 4, 2, 0, 0]], [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    """
    single = isinstance(text, str)
    texts = [text] if single else list(text)
    pairs = None if text_pair is None else ([text_pair] if isinstance(text_pair, str) else list(text_pair))
    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"Expected one text_pair per text. Received: {len(texts)} texts, {len(pairs)} pairs")
    if return_tensors not in (None, "pt", "np"):
        raise ValueError(f"Expected return_tensors None, 'pt' or 'np'. Received: return_tensors={return_tensors!r}")
    side = padding_side or tok.padding_side
    if side not in ("right", "left"):
        raise ValueError(f"Expected padding_side 'right' or 'left'. Received: padding_side={side!r}")
    strategy, limit = _limits(tok, padding, truncation, max_length)
    ids, types = _rows(tok, texts, pairs, add_special_tokens, limit)
    masks = [[1] * len(r) for r in ids]
    if strategy is not None and ids:
        length = max(map(len, ids)) if strategy == "longest" else max(max_length or tok.model_max_length, *map(len, ids))
        fill = pad_id if pad_id is not None else tok.pad_id
        if fill is None and any(len(r) < length for r in ids):
            raise ValueError("Expected a tokenizer with a pad token to pad. Received: pad_id=None (set tok.pad_id, "
                             "e.g. tok.pad_id = tok.eos_id, or pass padding=False)")
        ids, types, masks = (_pad(x, length, v, side == "left") for x, v in ((ids, fill), (types, 0), (masks, 0)))
    out = {"input_ids": ids, "token_type_ids": types, "attention_mask": masks}
    if not tok.has_token_types:
        del out["token_type_ids"]
    if return_tensors is not None:
        if len({len(r) for r in ids}) > 1:
            raise ValueError(f"Expected texts of one length to make {return_tensors!r} tensors. Received: lengths "
                             f"{sorted({len(r) for r in ids})}; pass padding=True (and truncation=True)")
        shape = (len(ids), len(ids[0]) if ids else 0)
        out = {k: torch.tensor(v, dtype=torch.long).reshape(shape) for k, v in out.items()}  # (B, T)
        if return_tensors == "np":
            out = {k: v.numpy() for k, v in out.items()}
    elif single:
        out = {k: v[0] for k, v in out.items()}
    return BatchEncoding(out)


__all__ = ["BatchEncoding", "encode_inputs"]
