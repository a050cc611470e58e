"""Greedy search and sampling through the step protocol of :mod:`attnkit.decoding`: what GPT's ``generate``
runs (beam search lives in :mod:`attnkit.decoding.beam`).

A model plugs in through a *step function* (the ``StepFn`` protocol)::

    step(tokens, state) -> (log_probs, state, weights)

    tokens     (N,)      long   the previous output token of each row (``sos_id`` at the first step)
    state      any pytree (tensor, tuple, list, dict, None) whose tensors have the rows on dim 0
    log_probs  (N, V)    float  log p(y_t | y_<t, x) for every vocabulary entry
    weights    (N, Tk)   float  the attention (alignment) row used for this step, or ``None``

Each step a *policy* picks one token per row from ``log_probs``: :func:`argmax` (greedy) or a
:func:`sampling` policy (temperature, top-k, top-p).

Shape legend: ``N`` = ``B`` rows, ``V`` vocabulary, ``T`` output steps, ``Tk`` source length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from attnkit.decoding._checks import check_search, check_step


class StepFn(Protocol):
    """One decoding step: ``(tokens (N,), state) -> (log_probs (N, V), state, weights (N, Tk) | None)``."""

    def __call__(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any, Tensor | None]: ...


@dataclass
class DecodeOutput:
    """The best hypothesis per input sentence.

    Attributes:
        tokens: ``(B, T)`` long; output ids including the end token when one was produced, ``pad_id`` after it.
        lengths: ``(B,)`` long; number of real tokens in each row of ``tokens`` (end token included).
        scores: ``(B,)`` float; length-normalised log-probability (see the module docstring).
        log_probs: ``(B,)`` float; raw ``log p(y | x)`` of the hypothesis.
        alignments: ``(B, T, Tk)`` float; row ``t`` is the attention used to produce token ``t``
            (zeros past ``lengths``), or ``None`` when the step function returns no weights.
    """

    tokens: Tensor
    lengths: Tensor
    scores: Tensor
    log_probs: Tensor
    alignments: Tensor | None


#: A token policy: ``log_probs (N, V) -> chosen tokens (N,)``. Greedy search takes the argmax; sampling
#: policies come from :func:`sampling`.
Policy = Callable[[Tensor], Tensor]


def argmax(log_probs: Tensor) -> Tensor:
    """The greedy policy: the most likely token of each row, ``(N, V) -> (N,)``.

    Example:
        >>> argmax(torch.tensor([[0.1, 0.7, 0.2]]).log()).tolist()
        [1]
    """
    return log_probs.argmax(dim=-1)


def sampling(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             generator: torch.Generator | None = None) -> Policy:
    """A sampling policy: draw each row's token from ``softmax(log_probs / temperature)`` restricted to the
    ``top_k`` best tokens and then to the smallest set whose probability reaches ``top_p`` (nucleus
    sampling, Holtzman et al. 2020; the best token is always kept).

    Example:
        >>> pick = sampling(top_k=1)
        >>> pick(torch.tensor([[0.1, 0.7, 0.2]]).log()).tolist()   # top-1 sampling is greedy
        [1]
    """
    if not temperature > 0:
        raise ValueError(f"Expected temperature > 0. Received: {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"Expected top_k an int >= 1 or None. Received: {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"Expected top_p in (0, 1] or None. Received: {top_p!r}")

    def choose(log_probs: Tensor) -> Tensor:
        logits = log_probs.float() / temperature  # (N, V)
        if top_k is not None and top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (N, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if top_p is not None and top_p < 1.0:
            sorted_logits, order = logits.sort(dim=-1, descending=True)  # (N, V)
            probs = sorted_logits.softmax(-1)
            before = probs.cumsum(-1) - probs  # probability of the better tokens
            sorted_logits = sorted_logits.masked_fill(before >= top_p, float("-inf"))  # keeps the best token
            logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
        return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)

    return choose


def greedy_search(step: StepFn, state: Any, *, batch_size: int, sos_id: int | Tensor, eos_id: int | None,
                  max_len: int, pad_id: int = 0, length_penalty: float = 1.0,
                  device: torch.device | str | None = None, policy: Policy = argmax) -> DecodeOutput:
    """Choose one token per row at every step with ``policy`` (the argmax by default), whole batch at once.

    Rows that produced ``eos_id`` keep being fed to ``step`` (so shapes stay fixed) but their output
    is frozen (``pad_id``); the loop stops once every row has ended or after ``max_len`` tokens. With
    ``eos_id=None`` no row ends: exactly ``max_len`` tokens. ``sos_id`` may be a ``(B,)`` tensor of
    first inputs (a language model's last prompt tokens).

    Returns:
        A ``DecodeOutput`` with ``tokens (B, T)``, ``alignments (B, T, Tk)`` (or ``None``).
    """
    check_search(batch_size, max_len, 1, length_penalty)
    B = batch_size
    tokens = first_tokens(sos_id, B, device)
    live = torch.ones(B, dtype=torch.bool, device=device)  # rows that have not produced eos_id yet
    chosen: list[Tensor] = []  # (B,) per step
    chosen_lp: list[Tensor] = []  # (B,) per step
    counted: list[Tensor] = []  # (B,) per step: the row was live when it chose this token
    out_weights: list[Tensor] | None = []
    for _ in range(max_len):
        log_probs, state, weights = step(tokens, state)
        check_step(log_probs, weights, B)
        best = policy(log_probs)  # (B,)
        chosen.append(best)
        chosen_lp.append(log_probs.gather(1, best[:, None])[:, 0])
        out_weights = None if weights is None or out_weights is None else [*out_weights, weights]
        if eos_id is None:
            tokens = best
            continue
        counted.append(live)
        live = live & (best != eos_id)
        tokens = best.masked_fill(~live, eos_id)  # ended rows keep reading their end token
        if not bool(live.any()):
            break
    return _greedy_output(chosen, chosen_lp, counted, out_weights, pad_id, length_penalty)


def _greedy_output(chosen: list[Tensor], chosen_lp: list[Tensor], counted: list[Tensor],
                   weights: list[Tensor] | None, pad_id: int, length_penalty: float) -> DecodeOutput:
    """Stack the steps of :func:`greedy_search`; tokens after a row's end token become ``pad_id``."""
    seq = torch.stack(chosen, dim=1)  # (B, T)
    keep = torch.stack(counted, dim=1) if counted else torch.ones_like(seq, dtype=torch.bool)  # (B, T)
    seq = seq.masked_fill(~keep, pad_id)
    total = torch.stack(chosen_lp, dim=1).float().masked_fill(~keep, 0.0).sum(dim=1)  # (B,)
    lengths = keep.long().sum(dim=1)  # (B,)
    align = None
    if weights:
        align = torch.stack(weights, dim=1).float().masked_fill(~keep[:, :, None], 0.0)  # (B, T, Tk)
    scores = total / lengths.clamp(min=1).float() ** length_penalty
    return DecodeOutput(seq, lengths, scores, total, align)


def first_tokens(sos_id: int | Tensor, rows: int, device: torch.device | str | None) -> Tensor:
    """The first step's input tokens ``(rows,)``: ``sos_id`` everywhere, or the given tensor."""
    if isinstance(sos_id, Tensor):
        if sos_id.shape != (rows,):
            raise ValueError(f"Expected sos_id an int or a tensor of shape ({rows},). Received: {tuple(sos_id.shape)}")
        return sos_id.to(device=device, dtype=torch.long)
    return torch.full((rows,), sos_id, dtype=torch.long, device=device)


