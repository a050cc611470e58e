"""Argument checks shared by the models; each message says "Expected ... Received: ...".

Shape legend: B batch, T positions.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
from torch import Tensor

from attnkit.errors import CheckpointError


def check_ids(ids: object, name: str, high: int, what: str = "vocab_size", max_len: int | None = None,
              max_name: str = "") -> Tensor:
    """Check a ``(B, T)`` integer tensor of ids in ``[0, high)`` (and at most ``max_len`` positions); return it.

    Example:
        >>> check_ids(torch.tensor([[1, 2]]), "input_ids", 5).tolist()
        [[1, 2]]
        >>> check_ids(torch.tensor([[1, 7]]), "input_ids", 5)
        Traceback (most recent call last):
        ...
        ValueError: Expected `input_ids` token ids in [0, 5) (vocab_size). Received: ids in [1, 7]
    """
    if not isinstance(ids, Tensor):
        raise TypeError(f"Expected `{name}` a torch.Tensor. Received: {type(ids).__name__}")
    if ids.dim() != 2:
        raise ValueError(f"Expected `{name}` of shape (B, T). Received: shape {tuple(ids.shape)}")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.dtype.is_complex:
        raise TypeError(f"Expected `{name}` of an integer dtype. Received: {ids.dtype}")
    if max_len is not None and ids.shape[1] > max_len:
        raise ValueError(f"Expected `{name}` of at most {max_name}={max_len} positions (the position table). "
                         f"Received: shape {tuple(ids.shape)}")
    if ids.numel():
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= high:
            raise ValueError(f"Expected `{name}` token ids in [0, {high}) ({what}). Received: ids in [{lo}, {hi}]")
    return ids


def check_padding_mask(mask: object, batch: int, length: int, name: str = "attention_mask") -> Tensor:
    """Check a ``(B, T)`` padding mask (bool or 0/1 integers, True/1 = real token); return it as bool.

    Example:
        >>> check_padding_mask(torch.tensor([[1, 0]]), 1, 2).tolist()
        [[True, False]]
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"Expected `{name}` a torch.Tensor. Received: {type(mask).__name__}")
    if tuple(mask.shape) != (batch, length):
        raise ValueError(f"Expected `{name}` of shape {(batch, length)}. Received: {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        if mask.dtype.is_floating_point or bool(((mask != 0) & (mask != 1)).any()):
            raise ValueError(f"Expected `{name}` of bools or 0/1 integers. Received: dtype {mask.dtype}")
        mask = mask.bool()
    return mask


def lengths_mask(lengths: object, batch: int, length: int, device: torch.device, name: str = "src_lengths") -> Tensor:
    """``(B, T)`` bool from real lengths ``(B,)``: True for the first ``lengths[b]`` positions.

    Example:
        >>> lengths_mask(torch.tensor([2, 0]), 2, 3, torch.device("cpu")).tolist()
        [[True, True, False], [False, False, False]]
    """
    if not isinstance(lengths, Tensor) or lengths.shape != (batch,):
        got = tuple(lengths.shape) if isinstance(lengths, Tensor) else type(lengths).__name__
        raise ValueError(f"Expected {name} of shape ({batch},). Received: {got}")
    return torch.arange(length, device=device)[None, :] < lengths.to(device)[:, None]  # (B, T)


def check_generate_args(input_ids: object, attention_mask: object, max_new_tokens: object, eos_token_id: object,
                        vocab_size: int, n_positions: int) -> None:
    """The arguments of a causal language model's ``generate``: ``(B, T)`` prompts of at least one token, padded
    on the left, ``T + max_new_tokens <= n_positions``, an eos id in the vocabulary.

    Example:
        >>> check_generate_args(torch.tensor([[1, 2]]), None, 3, None, vocab_size=5, n_positions=4)
        Traceback (most recent call last):
        ...
        ValueError: Expected prompt + new tokens <= n_positions=4. Received: 2 + 3 = 5
    """
    check_ids(input_ids, "input_ids", vocab_size)
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ValueError(f"Expected max_new_tokens an int >= 0. Received: {max_new_tokens!r}")
    if eos_token_id is not None and not (isinstance(eos_token_id, int) and 0 <= eos_token_id < vocab_size):
        raise ValueError(f"Expected eos_token_id in [0, {vocab_size}). Received: {eos_token_id!r}")
    B, T = input_ids.shape  # type: ignore[union-attr]
    if T == 0:
        raise ValueError("Expected a prompt of at least one token. Received: input_ids of shape (B, 0)")
    if T + max_new_tokens > n_positions:
        raise ValueError(f"Expected prompt + new tokens <= n_positions={n_positions}. "
                         f"Received: {T} + {max_new_tokens} = {T + max_new_tokens}")
    if attention_mask is not None and not bool(check_padding_mask(attention_mask, B, T)[:, -1].all()):
        raise ValueError("Expected prompts padded on the left (the last column of attention_mask all 1) for "
                         "generation. Received: right padding; call the tokenizer with padding_side='left'")


# -- sizes a model config may ask for -------------------------------------------------------------------------
#: The largest value of each size a model config may hold, by field name (every model's config, attnkit's
#: names and Hugging Face's). Far above any model attnkit trains or reads (GPT-2: V=50257, D=768, T=1024; BERT:
#: V=30522, T=512), small enough that a damaged or hostile ``config.json`` cannot make ``attnkit.load`` ask for
#: more memory than a machine has before the weights are even read (buffers that grow with the config, such as
#: the captioner's image of ``image_size``^2 pixels, are not in the weights file, so its size cannot bound them).
SIZE_LIMITS: dict[str, int] = {
    **dict.fromkeys(("vocab_size", "src_vocab_size", "tgt_vocab_size"), 1 << 20),  # V
    **dict.fromkeys(("type_vocab_size", "num_labels"), 1 << 16),
    **dict.fromkeys(("embed_dim", "hidden_dim", "attention_dim", "annotation_dim", "cnn_channels", "d_model", "ff_dim",
                     "head_dim", "hidden_size", "intermediate_size", "n_embd", "n_inner"), 1 << 16),  # widths
    **dict.fromkeys(("num_heads", "num_attention_heads", "n_head"), 1 << 10),  # H
    **dict.fromkeys(("encoder_layers", "decoder_layers", "num_hidden_layers", "n_layer"), 1 << 10),  # L
    **dict.fromkeys(("max_len", "max_src_len", "max_tgt_len", "max_position_embeddings", "n_positions",
                     "local_window", "attention_window", "kernel_size"), 1 << 17),  # T
    "image_size": 4096,  # S: an S x S RGB image per caption (4096: 200 MB in float32)
    "grid": 512,  # the small CNN's grid side: L = grid^2 regions
}


def check_config_sizes(config: object, where: str) -> None:
    """Refuse a model config with a size above :data:`SIZE_LIMITS` (``CheckpointError`` naming ``where``
    and the key), before anything is built from it.

    Args:
        config: a model config dataclass (nested dataclasses are checked too).
        where: the file it was read from, for the message.

    Example:
        >>> from attnkit.models.captioner import CaptionerConfig
        >>> check_config_sizes(CaptionerConfig(vocab_size=9), "m/config.json")
        >>> check_config_sizes(CaptionerConfig(vocab_size=9, image_size=96000), "m/config.json")
        Traceback (most recent call last):
        ...
        attnkit.errors.CheckpointError: m/config.json: key 'image_size' is 96000, above attnkit's limit of 4096: the file is damaged or not attnkit's; fix the key or save the model again
    """
    for field in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_config_sizes(value, where)
        limit = SIZE_LIMITS.get(field.name)
        if limit is not None and isinstance(value, int) and value > limit:
            raise CheckpointError(f"{where}: key {field.name!r} is {value}, above attnkit's limit of {limit}: "
                                  f"the file is damaged or not attnkit's; fix the key or save the model again")


def warn_right_padding(input_ids: Tensor, attention_mask: object, pad_id: int | None, stacklevel: int = 3) -> None:
    """Warn when ``generate`` gets ``(B, T)`` prompts of which some, not all, end with ``pad_id`` and no mask:
    a right-padded batch, which generation would continue after its padding.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     warn_right_padding(torch.tensor([[5, 6, 7], [5, 0, 0]]), None, pad_id=0, stacklevel=2)
        >>> print(seen[0].message)
        generate: prompt(s) [1] of input_ids end with the pad token 0 and no attention_mask was given, so generation would continue after the padding: pad on the left and pass attention_mask (a tokenizer's padding_side='left')
    """
    if attention_mask is not None or pad_id is None or input_ids.shape[0] < 2 or input_ids.shape[1] == 0:
        return
    ends = (input_ids[:, -1] == pad_id).tolist()  # (B,)
    if any(ends) and not all(ends):
        rows = [b for b, padded in enumerate(ends) if padded]
        warnings.warn(f"generate: prompt(s) {rows} of input_ids end with the pad token {pad_id} and no "
                      f"attention_mask was given, so generation would continue after the padding: pad on the "
                      f"left and pass attention_mask (a tokenizer's padding_side='left')", UserWarning,
                      stacklevel=stacklevel)


def warn_unknown_texts(rows: list[list[int]], unk_id: int | None, stacklevel: int = 3) -> None:
    """Warn when texts (their token ids ``rows``) hold no known word at all: the answer for such a text is the
    model's prior, not a reading of it (as ``translate`` notes tokens outside the vocabulary).

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     warn_unknown_texts([[4, 5], [1, 1, 1]], unk_id=1, stacklevel=2)
        >>> print(seen[0].message)
        classify: text(s) [1] hold no word the model knows (every word read as <unk>): their labels come from the model's prior, not from the text
    """
    if unk_id is None:
        return
    unknown = [i for i, row in enumerate(rows) if all(t == unk_id for t in row)]
    if unknown:
        warnings.warn(f"classify: text(s) {unknown} hold no word the model knows (every word read as <unk>): "
                      f"their labels come from the model's prior, not from the text", UserWarning,
                      stacklevel=stacklevel)


def new_token_count(max_new_tokens: int | None, max_length: int | None, input_ids: Tensor) -> int:
    """Tokens to generate, from ``max_new_tokens`` or ``max_length`` (prompt included) as ``transformers``
    reads them: ``max_new_tokens`` takes precedence when both are given (with a warning).

    Example:
        >>> new_token_count(None, 7, torch.zeros(1, 3, dtype=torch.long))  # max_length counts the prompt
        4
    """
    if max_new_tokens is not None:
        if max_length is not None:
            warnings.warn(f"Both max_new_tokens (={max_new_tokens}) and max_length (={max_length}) were set; "
                          f"max_new_tokens takes precedence, as in transformers", UserWarning, stacklevel=5)
        return max_new_tokens
    if max_length is None:
        raise ValueError("Expected max_new_tokens (tokens after the prompt) or max_length (prompt included). "
                         "Received: neither")
    T = input_ids.shape[-1] if isinstance(input_ids, Tensor) else 0
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < T:
        raise ValueError(f"Expected max_length an int >= the prompt length {T} (it counts the prompt; "
                         f"max_new_tokens does not). Received: max_length={max_length!r}")
    return max_length - T


def check_beams(num_beams: object, do_sample: bool) -> None:
    """``num_beams``: an int >= 1, and 1 when sampling.

    Example:
        >>> check_beams(2, do_sample=True)
        Traceback (most recent call last):
        ...
        ValueError: Expected num_beams=1 with do_sample=True (beam sampling is not supported). Received: num_beams=2
    """
    if not isinstance(num_beams, int) or isinstance(num_beams, bool) or num_beams < 1:
        raise ValueError(f"Expected num_beams an int >= 1. Received: {num_beams!r}")
    if num_beams > 1 and do_sample:
        raise ValueError(f"Expected num_beams=1 with do_sample=True (beam sampling is not supported). "
                         f"Received: num_beams={num_beams}")


def checked_new_tokens(input_ids: Tensor, attention_mask: object, max_new_tokens: int | None, max_length: int | None,
                       eos_token_id: object, num_beams: object, do_sample: bool, vocab_size: int, n_positions: int,
                       pad_id: int | None) -> int:
    """Every check of a causal language model's ``generate`` in one call (:func:`new_token_count`,
    :func:`check_generate_args`, :func:`check_beams`, and :func:`warn_right_padding` for a pad id the config
    names: a prompt may well end with eos, GPT-2's stand-in for padding); returns the tokens to generate.

    Example:
        >>> checked_new_tokens(torch.tensor([[1, 2]]), None, None, 4, None, 1, False, 5, 8, None)
        2
    """
    new = new_token_count(max_new_tokens, max_length, input_ids)
    check_generate_args(input_ids, attention_mask, new, eos_token_id, vocab_size, n_positions)
    warn_right_padding(input_ids, attention_mask, pad_id, stacklevel=5)  # the caller of generate, past no_grad
    check_beams(num_beams, do_sample)
    return new
