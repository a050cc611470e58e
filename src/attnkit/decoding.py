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
    sos_id: int | Tensor,
    eos_id: int | None,
    max_len: int,
    pad_id: int = 0,
    length_penalty: float = 1.0,
    device: torch.device | str | None = None,
    policy: Policy = argmax,
) -> DecodeOutput:
    """Choose one token per row at every step with ``policy`` (the argmax by default), whole batch at once.

    Rows that produced ``eos_id`` keep being fed to ``step`` (so shapes stay fixed) but their output
    is frozen (``pad_id``); the loop stops once every row has ended or after ``max_len`` tokens. With
    ``eos_id=None`` no row ends: exactly ``max_len`` tokens. ``sos_id`` may be a ``(B,)`` tensor of
    first inputs (a language model's last prompt tokens).

    Returns:
        A ``DecodeOutput`` with ``tokens (B, T)``, ``alignments (B, T, Tk)`` (or ``None``).
    """
    _check(batch_size, max_len, 1, length_penalty)
    B = batch_size
    tokens = _first_tokens(sos_id, B, device)
    live = torch.ones(B, dtype=torch.bool, device=device)  # rows that have not produced eos_id yet
    chosen: list[Tensor] = []  # (B,) per step
    chosen_lp: list[Tensor] = []  # (B,) per step
    counted: list[Tensor] = []  # (B,) per step: the row was live when it chose this token
    out_weights: list[Tensor] | None = []
    for _ in range(max_len):
        log_probs, state, weights = step(tokens, state)
        _check_step(log_probs, weights, B)
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


def _first_tokens(sos_id: int | Tensor, rows: int, device: torch.device | str | None) -> Tensor:
    """The first step's input tokens ``(rows,)``: ``sos_id`` everywhere, or the given tensor."""
    if isinstance(sos_id, Tensor):
        if sos_id.shape != (rows,):
            raise ValueError(f"Expected sos_id an int or a tensor of shape ({rows},). Received: {tuple(sos_id.shape)}")
        return sos_id.to(device=device, dtype=torch.long)
    return torch.full((rows,), sos_id, dtype=torch.long, device=device)


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
    _check(batch_size, max_len, beam_size, length_penalty)
    B, K = batch_size, beam_size
    state = reorder_state(state, torch.arange(B, device=device).repeat_interleave(K))  # (B*K, ...) rows
    tokens = _first_tokens(sos_id, B, device).repeat_interleave(K)  # (B*K,)
    beams = _Beams.start(B, K, max_len, pad_id, device)
    for t in range(max_len):
        log_probs, state, weights = step(tokens, state)
        _check_step(log_probs, weights, B * K)
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
    ``beam_size == 1``, beam search otherwise (same arguments, same output)."""
    kwargs = dict(batch_size=batch_size, sos_id=sos_id, eos_id=eos_id, max_len=max_len, pad_id=pad_id,
                  length_penalty=length_penalty, device=device)
    if beam_size == 1:
        return greedy_search(step, state, policy=policy, **kwargs)
    return beam_search(step, state, beam_size=beam_size, **kwargs)
