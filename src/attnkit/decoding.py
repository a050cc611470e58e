"""Greedy and beam search, shared by every autoregressive attnkit model.

A model plugs in through a *step function* (the ``StepFn`` protocol)::

    step(tokens, state) -> (log_probs, state, weights)

    tokens     (N,)      long   the previous output token of each row (``sos_id`` at the first step)
    state      any pytree (tensor, tuple, list, dict, None) whose tensors have the rows on dim 0
    log_probs  (N, V)    float  log p(y_t | y_<t, x) for every vocabulary entry
    weights    (N, Tk)   float  the attention (alignment) row used for this step, or ``None``

``N`` is ``B`` for greedy search and ``B * K`` for beam search (row ``b * K + k`` is beam ``k`` of
sentence ``b``). The search reorders the state's rows itself with ``index_select`` on dim 0, so a
model keeps everything per-row (decoder state *and* encoder memory) inside ``state`` and needs no
beam-specific code.

Shape legend: ``B`` batch, ``K`` beam size, ``V`` vocabulary, ``T`` output steps, ``Tk`` source length.

Length normalisation (Wu et al. 2016 use a smoothed variant; attnkit uses the plain one): a finished
hypothesis ``y`` of ``|y|`` tokens (its end token included) is ranked by

    score(y) = log p(y | x) / |y| ** length_penalty

so ``length_penalty=0`` is the raw log-probability and ``1`` the per-token average.

Example:
    >>> import torch
    >>> table = torch.log_softmax(torch.tensor([[3.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 2.0, 1.0]]), -1)
    >>> def step(tokens, state):  # a bigram model: next token depends on the previous one only
    ...     return table[tokens], state, None
    >>> out = decode(step, None, batch_size=1, sos_id=2, eos_id=0, max_len=5, beam_size=2)
    >>> out.tokens.tolist()
    [[1, 0]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor


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


def map_state(state: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """Apply ``fn`` to every tensor of a state pytree (tensor, tuple, list, dict or None)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, tuple):
        return tuple(map_state(s, fn) for s in state)
    if isinstance(state, list):
        return [map_state(s, fn) for s in state]
    if isinstance(state, dict):
        return {k: map_state(v, fn) for k, v in state.items()}
    return state  # plain Python values (ints, strings) travel unchanged


def reorder_state(state: Any, index: Tensor) -> Any:
    """Select rows ``index`` (dim 0) of every tensor in ``state``; used to follow beams and to expand them."""
    return map_state(state, lambda t: t.index_select(0, index.to(t.device)))


def _check(batch_size: int, max_len: int, beam_size: int, length_penalty: float) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected batch_size to be a positive int. Received: batch_size={batch_size!r}")
    if not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"Expected max_len to be a positive int. Received: max_len={max_len!r}")
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"Expected beam_size to be a positive int. Received: beam_size={beam_size!r}")
    if length_penalty < 0:
        raise ValueError(f"Expected length_penalty >= 0. Received: length_penalty={length_penalty!r}")


def _check_step(log_probs: Tensor, weights: Tensor | None, rows: int) -> None:
    if log_probs.dim() != 2 or log_probs.size(0) != rows:
        raise ValueError(
            f"Expected the step function to return log_probs of shape ({rows}, V). "
            f"Received: {tuple(log_probs.shape)}"
        )
    if weights is not None and (weights.dim() != 2 or weights.size(0) != rows):
        raise ValueError(
            f"Expected the step function to return weights of shape ({rows}, Tk) or None. "
            f"Received: {tuple(weights.shape)}"
        )


def _merge_pool(pool: Tensor, cand: Tensor, keep: Tensor, fill: float) -> Tensor:
    """Rows ``keep (B, K)`` of the finished ``pool (B, K, max_len, ...)`` followed by the candidates
    ``cand (B, n, t, ...)``, each candidate padded with ``fill`` to ``max_len`` first."""
    B, n, t = cand.shape[:3]
    padded = pool.new_full((B, n, pool.size(2), *cand.shape[3:]), fill)  # (B, n, max_len, ...)
    padded[:, :, :t] = cand
    batch_idx = torch.arange(B, device=pool.device)[:, None]  # (B, 1)
    return torch.cat([pool, padded], dim=1)[batch_idx, keep]  # (B, K, max_len, ...)


def greedy_search(
    step: StepFn,
    state: Any,
    *,
    batch_size: int,
    sos_id: int,
    eos_id: int,
    max_len: int,
    pad_id: int = 0,
    length_penalty: float = 1.0,
    device: torch.device | str | None = None,
) -> DecodeOutput:
    """Pick the most likely token at every step, for a whole batch at once.

    Rows that produced ``eos_id`` keep being fed to ``step`` (so shapes stay fixed) but their output
    is frozen; the loop stops once every row has ended or after ``max_len`` tokens.

    Returns:
        A ``DecodeOutput`` with ``tokens (B, T)``, ``alignments (B, T, Tk)`` (or ``None``).
    """
    _check(batch_size, max_len, 1, length_penalty)
    B = batch_size
    tokens = torch.full((B,), sos_id, dtype=torch.long, device=device)
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    lengths = torch.zeros(B, dtype=torch.long, device=device)
    total = torch.zeros(B, device=device)
    out_tokens: list[Tensor] = []
    out_weights: list[Tensor] = []
    has_weights = True
    for _ in range(max_len):
        log_probs, state, weights = step(tokens, state)
        _check_step(log_probs, weights, B)
        best_lp, best = log_probs.max(dim=-1)  # (B,), (B,)
        best = best.masked_fill(finished, pad_id)
        total = total + best_lp.float().masked_fill(finished, 0.0)
        lengths = lengths + (~finished).long()
        out_tokens.append(best)
        if weights is None:
            has_weights = False
        else:
            out_weights.append(weights.float().masked_fill(finished[:, None], 0.0))
        finished = finished | (best == eos_id)
        tokens = best.masked_fill(finished, eos_id)
        if bool(finished.all()):
            break
    seq = torch.stack(out_tokens, dim=1)  # (B, T)
    align = torch.stack(out_weights, dim=1) if has_weights and out_weights else None  # (B, T, Tk)
    scores = total / lengths.clamp(min=1).float() ** length_penalty
    return DecodeOutput(seq, lengths, scores, total, align)


def beam_search(
    step: StepFn,
    state: Any,
    *,
    batch_size: int,
    sos_id: int,
    eos_id: int,
    max_len: int,
    beam_size: int = 4,
    pad_id: int = 0,
    length_penalty: float = 1.0,
    device: torch.device | str | None = None,
) -> DecodeOutput:
    """Batched beam search with length normalisation.

    Each sentence keeps ``K`` live hypotheses. At step ``t`` the ``2K`` best one-token extensions
    (by raw log-probability) are taken: those ending in ``eos_id`` join the sentence's pool of ``K``
    finished hypotheses (ranked by the normalised score), the best ``K`` others stay alive. A sentence
    is done when its ``K``-th finished score beats every score its live hypotheses could still reach
    (``log p / max_len ** length_penalty``, an upper bound since log-probabilities only fall), so the
    search is exact when ``K`` covers every hypothesis. Hypotheses still alive at ``max_len`` are
    finished there without an end token.

    Args:
        step: the model's step function (see ``StepFn``); ``state`` rows are ``B`` on entry and are
            expanded here to ``B * K`` (row ``b * K + k``).
        beam_size: ``K``; with ``K = 1`` and ``length_penalty = 0`` this is greedy search.

    Returns:
        A ``DecodeOutput`` for the best finished hypothesis of each sentence.
    """
    _check(batch_size, max_len, beam_size, length_penalty)
    B, K = batch_size, beam_size
    expand = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,)
    state = reorder_state(state, expand)
    tokens = torch.full((B * K,), sos_id, dtype=torch.long, device=device)
    neg_inf = float("-inf")
    alive_raw = torch.full((B, K), neg_inf, device=device)
    alive_raw[:, 0] = 0.0  # only one live hypothesis (the empty one) at the start
    alive_seq = torch.zeros(B, K, 0, dtype=torch.long, device=device)
    alive_align: Tensor | None = None  # (B, K, t, Tk)
    fin_score = torch.full((B, K), neg_inf, device=device)
    fin_raw = torch.full((B, K), neg_inf, device=device)
    fin_len = torch.zeros(B, K, dtype=torch.long, device=device)
    fin_seq = torch.full((B, K, max_len), pad_id, dtype=torch.long, device=device)
    fin_align: Tensor | None = None  # (B, K, max_len, Tk)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    batch_idx = torch.arange(B, device=device)[:, None]  # (B, 1)
    has_weights = True

    for t in range(max_len):
        log_probs, state, weights = step(tokens, state)
        _check_step(log_probs, weights, B * K)
        V = log_probs.size(-1)
        cand = alive_raw[:, :, None] + log_probs.float().view(B, K, V)  # (B, K, V)
        n = min(2 * K, K * V)
        top_raw, top_idx = cand.view(B, K * V).topk(n, dim=1)  # (B, n)
        origin = top_idx // V  # (B, n) which live beam each candidate extends
        tok = top_idx % V  # (B, n)
        real = torch.isfinite(top_raw) & ~done[:, None]
        ends = real & ((tok == eos_id) | (t == max_len - 1))
        cand_seq = torch.cat([alive_seq[batch_idx, origin], tok[:, :, None]], dim=2)  # (B, n, t+1)
        if weights is None:
            has_weights = False
        elif has_weights:
            w = weights.float().view(B, K, 1, -1)  # (B, K, 1, Tk)
            step_align = w if alive_align is None else torch.cat([alive_align, w], dim=2)  # (B, K, t+1, Tk)
            cand_align = step_align[batch_idx, origin]  # (B, n, t+1, Tk)
            if fin_align is None:
                fin_align = torch.zeros(B, K, max_len, w.size(-1), device=w.device)

        # 1. finished pool: merge the new ended candidates, keep the K best normalised scores.
        norm = top_raw / float(t + 1) ** length_penalty
        new_score = torch.where(ends, norm, torch.full_like(norm, neg_inf))
        pool_score = torch.cat([fin_score, new_score], dim=1)  # (B, K + n)
        fin_score, keep = pool_score.topk(K, dim=1)  # (B, K)
        fin_seq = _merge_pool(fin_seq, cand_seq, keep, pad_id)  # (B, K, max_len)
        fin_raw = torch.cat([fin_raw, top_raw], dim=1)[batch_idx, keep]
        new_len = torch.full((B, n), t + 1, dtype=torch.long, device=tok.device)
        fin_len = torch.cat([fin_len, new_len], dim=1)[batch_idx, keep]
        if has_weights and fin_align is not None:
            fin_align = _merge_pool(fin_align, cand_align, keep, 0.0)  # (B, K, max_len, Tk)

        # 2. live beams: the K best candidates that did not end.
        live = torch.where(real & (tok != eos_id), top_raw, torch.full_like(top_raw, neg_inf))
        alive_raw, pick = live.topk(K, dim=1)  # (B, K)
        src_beam = origin.gather(1, pick)  # (B, K)
        alive_seq = cand_seq[batch_idx, pick]  # (B, K, t+1)
        if has_weights and weights is not None:
            alive_align = cand_align[batch_idx, pick]  # (B, K, t+1, Tk)
        tokens = tok.gather(1, pick).view(B * K)
        tokens = torch.where(torch.isfinite(alive_raw.view(-1)), tokens, torch.full_like(tokens, eos_id))
        flat = (torch.arange(B, device=src_beam.device)[:, None] * K + src_beam).view(B * K)
        state = reorder_state(state, flat)

        # 3. a sentence is done when no live hypothesis can beat its K-th finished one.
        bound = alive_raw.max(dim=1).values / float(max_len) ** length_penalty  # (B,)
        done = done | (fin_score[:, -1] >= bound) | ~torch.isfinite(bound)
        if bool(done.all()):
            break

    T = int(fin_len[:, 0].max().clamp(min=1))
    align = fin_align[:, 0, :T] if has_weights and fin_align is not None else None
    return DecodeOutput(fin_seq[:, 0, :T], fin_len[:, 0], fin_score[:, 0], fin_raw[:, 0], align)


def decode(
    step: StepFn,
    state: Any,
    *,
    batch_size: int,
    sos_id: int,
    eos_id: int,
    max_len: int,
    beam_size: int = 1,
    pad_id: int = 0,
    length_penalty: float = 1.0,
    device: torch.device | str | None = None,
) -> DecodeOutput:
    """Greedy search when ``beam_size == 1``, beam search otherwise (same arguments, same output)."""
    kwargs = dict(batch_size=batch_size, sos_id=sos_id, eos_id=eos_id, max_len=max_len, pad_id=pad_id,
                  length_penalty=length_penalty, device=device)
    if beam_size == 1:
        return greedy_search(step, state, **kwargs)
    return beam_search(step, state, beam_size=beam_size, **kwargs)
