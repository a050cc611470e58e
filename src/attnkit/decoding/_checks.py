"""Argument checks of the searches of :mod:`attnkit.decoding`; each message says "Expected ... Received: ...".

Shape legend: V vocabulary, Tk source length.
"""

from __future__ import annotations

from torch import Tensor


def check_search(batch_size: int, max_len: int, beam_size: int, length_penalty: float) -> None:
    """The sizes of a search: positive ints, and ``length_penalty >= 0``."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected batch_size to be a positive int. Received: batch_size={batch_size!r}")
    if not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"Expected max_len to be a positive int. Received: max_len={max_len!r}")
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"Expected beam_size to be a positive int. Received: beam_size={beam_size!r}")
    if length_penalty < 0:
        raise ValueError(f"Expected length_penalty >= 0. Received: length_penalty={length_penalty!r}")


def check_step(log_probs: Tensor, weights: Tensor | None, rows: int) -> None:
    """What a step function returned: ``log_probs (rows, V)`` and ``weights (rows, Tk)`` or None."""
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
