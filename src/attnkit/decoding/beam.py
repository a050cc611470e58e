"""Batched beam search with length normalisation, through the step protocol of :mod:`attnkit.decoding`
(sequence-to-sequence models and the captioner decode with it), and :func:`decode`, greedy or beam by
``beam_size``.

``N`` is ``B * K`` for beam search (row ``b * K + k`` is beam ``k`` of sentence ``b``). The search reorders
the state's rows itself with ``index_select`` on dim 0, so a model keeps everything per-row (decoder state
*and* encoder memory) inside ``state`` and needs no beam-specific code.

Length normalisation (Wu et al. 2016 use a smoothed variant; attnkit uses the plain one): a finished
hypothesis ``y`` of ``|y|`` tokens (its end token included) is ranked by

    score(y) = log p(y | x) / |y| ** length_penalty

so ``length_penalty=0`` is the raw log-probability and ``1`` the per-token average.

Shape legend: ``B`` batch, ``K`` beam size, ``V`` vocabulary, ``T`` output steps, ``Tk`` source length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attnkit.decoding._checks import check_search, check_step
from attnkit.decoding.greedy import DecodeOutput, Policy, StepFn, argmax, first_tokens, greedy_search
from attnkit.kernels.decoding_weights import transposed_weights


def map_state(state: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """Apply ``fn`` to every tensor of a state pytree (tensor, tuple, list, dict or None); an object with a
    ``map_tensors(fn)`` method (such as :class:`attnkit.layers.KVCache`) maps its own tensors."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if hasattr(state, "map_tensors"):
        return state.map_tensors(fn)
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


def _merge_pool(pool: Tensor, cand: Tensor, keep: Tensor, fill: float) -> Tensor:
    """Rows ``keep (B, K)`` of the finished ``pool (B, K, max_len, ...)`` followed by the candidates
    ``cand (B, n, t, ...)``, each candidate padded with ``fill`` to ``max_len`` first."""
    B, n, t = cand.shape[:3]
    padded = pool.new_full((B, n, pool.size(2), *cand.shape[3:]), fill)  # (B, n, max_len, ...)
    padded[:, :, :t] = cand
    batch_idx = torch.arange(B, device=pool.device)[:, None]  # (B, 1)
    return torch.cat([pool, padded], dim=1)[batch_idx, keep]  # (B, K, max_len, ...)


def beam_search(
    step: StepFn,
    state: Any,
    *,
    batch_size: int,
    sos_id: int | Tensor,
    eos_id: int | None,
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
    check_search(batch_size, max_len, beam_size, length_penalty)
    B, K = batch_size, beam_size
    state = reorder_state(state, torch.arange(B, device=device).repeat_interleave(K))  # (B*K, ...) rows
    tokens = first_tokens(sos_id, B, device).repeat_interleave(K)  # (B*K,)
    beams = _Beams.start(B, K, max_len, pad_id, device)
    for t in range(max_len):
        log_probs, state, weights = step(tokens, state)
        check_step(log_probs, weights, B * K)
        tokens, flat = beams.advance(t, log_probs, weights, eos_id, length_penalty)
        state = reorder_state(state, flat)
        if bool(beams.done.all()):
            break
    return beams.best()


@dataclass
class _Beams:
    """The bookkeeping of :func:`beam_search`: ``K`` live and ``K`` finished hypotheses per sentence."""

    alive_raw: Tensor  # (B, K) raw log-probabilities of the live hypotheses
    alive_seq: Tensor  # (B, K, t)
    fin_score: Tensor  # (B, K) normalised scores of the finished pool
    fin_raw: Tensor  # (B, K)
    fin_len: Tensor  # (B, K)
    fin_seq: Tensor  # (B, K, max_len)
    done: Tensor  # (B,)
    pad_id: int
    alive_align: Tensor | None = None  # (B, K, t, Tk)
    fin_align: Tensor | None = None  # (B, K, max_len, Tk)
    has_weights: bool = True

    @classmethod
    def start(cls, B: int, K: int, max_len: int, pad_id: int, device) -> _Beams:
        neg_inf = float("-inf")
        alive_raw = torch.full((B, K), neg_inf, device=device)
        alive_raw[:, 0] = 0.0  # only one live hypothesis (the empty one) at the start
        return cls(alive_raw, torch.zeros(B, K, 0, dtype=torch.long, device=device),
                   torch.full((B, K), neg_inf, device=device), torch.full((B, K), neg_inf, device=device),
                   torch.zeros(B, K, dtype=torch.long, device=device),
                   torch.full((B, K, max_len), pad_id, dtype=torch.long, device=device),
                   torch.zeros(B, dtype=torch.bool, device=device), pad_id)

    def advance(self, t: int, log_probs: Tensor, weights: Tensor | None, eos_id: int | None,
                length_penalty: float) -> tuple[Tensor, Tensor]:
        """Extend every live hypothesis by one token; returns the next input tokens ``(B*K,)`` and the
        state rows ``(B*K,)`` they continue."""
        B, K = self.alive_raw.shape
        max_len = self.fin_seq.shape[2]
        V = log_probs.size(-1)
        cand = self.alive_raw[:, :, None] + log_probs.float().view(B, K, V)  # (B, K, V)
        top_raw, top_idx = cand.view(B, K * V).topk(min(2 * K, K * V), dim=1)  # (B, n)
        origin, tok = top_idx // V, top_idx % V  # (B, n): which live beam each candidate extends, its token
        real = torch.isfinite(top_raw) & ~self.done[:, None]
        is_eos = tok == eos_id if eos_id is not None else torch.zeros_like(real)
        ends = real & (is_eos | (t == max_len - 1))
        bi = torch.arange(B, device=tok.device)[:, None]  # (B, 1)
        cand_seq = torch.cat([self.alive_seq[bi, origin], tok[:, :, None]], dim=2)  # (B, n, t+1)
        cand_align = self._candidate_alignments(weights, origin)
        # 1. finished pool: merge the new ended candidates, keep the K best normalised scores.
        norm = top_raw / float(t + 1) ** length_penalty
        pool_score = torch.cat([self.fin_score, torch.where(ends, norm, torch.full_like(norm, float("-inf")))], 1)
        self.fin_score, keep = pool_score.topk(K, dim=1)  # (B, K)
        self.fin_seq = _merge_pool(self.fin_seq, cand_seq, keep, self.pad_id)  # (B, K, max_len)
        self.fin_raw = torch.cat([self.fin_raw, top_raw], dim=1)[bi, keep]
        self.fin_len = torch.cat([self.fin_len, torch.full_like(tok, t + 1)], dim=1)[bi, keep]
        if cand_align is not None:
            self.fin_align = _merge_pool(self.fin_align, cand_align, keep, 0.0)  # (B, K, max_len, Tk)
        # 2. live beams: the K best candidates that did not end.
        live = torch.where(real & ~is_eos, top_raw, torch.full_like(top_raw, float("-inf")))
        self.alive_raw, pick = live.topk(K, dim=1)  # (B, K)
        self.alive_seq = cand_seq[bi, pick]  # (B, K, t+1)
        if cand_align is not None:
            self.alive_align = cand_align[bi, pick]  # (B, K, t+1, Tk)
        tokens = tok.gather(1, pick).view(B * K)
        filler = torch.full_like(tokens, eos_id if eos_id is not None else self.pad_id)
        tokens = torch.where(torch.isfinite(self.alive_raw.view(-1)), tokens, filler)
        # 3. a sentence is done when no live hypothesis can beat its K-th finished one.
        bound = self.alive_raw.max(dim=1).values / float(max_len) ** length_penalty  # (B,)
        self.done = self.done | (self.fin_score[:, -1] >= bound) | ~torch.isfinite(bound)
        return tokens, (bi * K + origin.gather(1, pick)).view(B * K)

    def _candidate_alignments(self, weights: Tensor | None, origin: Tensor) -> Tensor | None:
        """The alignments of every candidate ``(B, n, t+1, Tk)``, or None once a step gave no weights."""
        if weights is None:
            self.has_weights = False
        if not self.has_weights:
            return None
        B, K, _ = self.alive_seq.shape
        w = weights.float().view(B, K, 1, -1)  # (B, K, 1, Tk)
        step_align = w if self.alive_align is None else torch.cat([self.alive_align, w], dim=2)  # (B, K, t+1, Tk)
        if self.fin_align is None:
            self.fin_align = w.new_zeros(B, K, self.fin_seq.shape[2], w.size(-1))
        return step_align[torch.arange(B, device=w.device)[:, None], origin]  # (B, n, t+1, Tk)

    def best(self) -> DecodeOutput:
        """The best finished hypothesis of each sentence."""
        T = int(self.fin_len[:, 0].max().clamp(min=1))
        align = self.fin_align[:, 0, :T] if self.has_weights and self.fin_align is not None else None
        return DecodeOutput(self.fin_seq[:, 0, :T], self.fin_len[:, 0], self.fin_score[:, 0], self.fin_raw[:, 0], align)


def decode(
    step: StepFn,
    state: Any,
    *,
    batch_size: int,
    sos_id: int | Tensor,
    eos_id: int | None,
    max_len: int,
    beam_size: int = 1,
    pad_id: int = 0,
    length_penalty: float = 1.0,
    device: torch.device | str | None = None,
    policy: Policy = argmax,
) -> DecodeOutput:
    """Greedy search (choosing with ``policy``: the argmax, or a :func:`sampling` policy) when
    ``beam_size == 1``, beam search otherwise (same arguments, same output). The steps' few-row linear products
    read transposed weight copies (:func:`attnkit.kernels.transposed_weights`)."""
    kwargs = dict(batch_size=batch_size, sos_id=sos_id, eos_id=eos_id, max_len=max_len, pad_id=pad_id,
                  length_penalty=length_penalty, device=device)
    with transposed_weights():
        if beam_size == 1:
            return greedy_search(step, state, policy=policy, **kwargs)
        return beam_search(step, state, beam_size=beam_size, **kwargs)
