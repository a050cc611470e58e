"""Greedy search, sampling and beam search, shared by every autoregressive attnkit model: greedy search and
the sampling policies in :mod:`attnkit.decoding.greedy` (what GPT runs), beam search and :func:`decode` in
:mod:`attnkit.decoding.beam`.

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

from attnkit.decoding.beam import beam_search, decode, map_state, reorder_state
from attnkit.decoding.greedy import DecodeOutput, Policy, StepFn, argmax, greedy_search, sampling

__all__ = ["DecodeOutput", "Policy", "StepFn", "argmax", "beam_search", "decode", "greedy_search", "map_state",
           "reorder_state", "sampling"]
