"""The parts a :class:`~attnkit.models.Captioner` config chooses, each built once in ``__init__`` and composed.

Shape legend: ``N`` rows of a decoding step (images, or images x beams), ``L = gh * gw`` image regions,
``Da`` annotation width, ``D`` LSTM width, ``A`` additive-attention width, ``K`` octaves of the place features.

| config field      | value        | part                                                                        |
|-------------------|--------------|-----------------------------------------------------------------------------|
| ``place_encoding``| ``fourier``  | :class:`FourierPlaces`: ``p_i = W_p phi(y_i, x_i)``, sines and cosines      |
|                   | ``table``    | :class:`TablePlaces`: one free vector ``p_i`` per region                    |
| ``place_in``      | ``annotation``| :func:`place_in_annotation`: the context averages ``W_a f_i + p_i``        |
|                   | ``keys``     | :func:`place_in_keys`: the context averages ``W_a f_i`` alone               |
| ``init_state``    | ``mean``     | :func:`mean_annotation`: ``h_0, c_0`` from ``mean_i a_i`` (the paper)       |
|                   | ``learned``  | :func:`no_annotation`: ``h_0 = tanh(b_h)``, a learned start state           |
| ``attention_mode``| ``soft``     | :class:`SoftMode`: ``z_t = sum_i alpha_ti a_i``                             |
|                   | ``hard``     | :class:`HardMode`: ``z_t = a_{s_t}``, ``s_t ~ Categorical(alpha_t)``        |
|                   | ``uniform``  | :class:`UniformMode`: ``z_t = mean_i a_i``, no attention (a baseline)       |

Example:
    >>> import torch
    >>> FourierPlaces((2, 3), 5)().shape, TablePlaces((2, 3), 5)().shape      # (L, Da)
    (torch.Size([6, 5]), torch.Size([6, 5]))
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from attnkit.functional.hard import hard_pick
from attnkit.layers.bahdanau import BahdanauAttention

#: Octaves of the Fourier place features: frequencies ``pi * 2**k``, ``k < PLACE_OCTAVES``, per coordinate.
PLACE_OCTAVES = 4


def place_features(grid: tuple[int, int], octaves: int = PLACE_OCTAVES) -> Tensor:
    """Fixed Fourier features of the region centres: ``(L, 4 * octaves)``, row ``i = r * gw + c``.

    For the centre ``(y, x) = ((r + 0.5) / gh, (c + 0.5) / gw)``: ``sin(pi 2^k y)`` for each ``k``, then the
    cosines, then the same for ``x``.

    Example:
        >>> place_features((3, 5)).shape
        torch.Size([15, 16])
    """
    gh, gw = grid
    ys, xs = torch.meshgrid((torch.arange(gh) + 0.5) / gh, (torch.arange(gw) + 0.5) / gw, indexing="ij")
    angles = torch.stack([ys.flatten(), xs.flatten()], -1)[..., None] * (math.pi * 2.0 ** torch.arange(octaves))
    return torch.cat([angles.sin(), angles.cos()], -1).flatten(1)  # (L, 2, 2K) -> (L, 4K)


class FourierPlaces(nn.Module):
    """``p_i = W_p phi(y_i, x_i)``: nearby cells get nearby places, even where training never looked.

    Args:
        grid: ``(gh, gw)``; width: ``Da``.

    Returns (``forward()``):
        ``(L, Da)``.
    """

    def __init__(self, grid: tuple[int, int], width: int) -> None:
        super().__init__()
        self.register_buffer("features", place_features(grid), persistent=False)  # (L, 4K)
        self.proj = nn.Linear(4 * PLACE_OCTAVES, width)  # W_p

    def forward(self) -> Tensor:
        return self.proj(self.features)  # (L, Da)


class TablePlaces(nn.Module):
    """One learned vector ``p_i`` per region (starting at zero).

    Args:
        grid: ``(gh, gw)``; width: ``Da``.

    Returns (``forward()``):
        ``(L, Da)``.
    """

    def __init__(self, grid: tuple[int, int], width: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(grid[0] * grid[1], width))  # (L, Da)

    def forward(self) -> Tensor:
        return self.table


PLACE_ENCODINGS: dict[str, Callable[[tuple[int, int], int], nn.Module]] = {
    "fourier": FourierPlaces, "table": TablePlaces,
}


def place_in_annotation(what: Tensor, keys: Tensor) -> Tensor:
    """The context averages the annotations with their place: ``a_i = W_a f_i + p_i`` ``(N, L, Da)``."""
    return keys


def place_in_keys(what: Tensor, keys: Tensor) -> Tensor:
    """The place only enters the scores; the context averages ``a_i = W_a f_i`` ``(N, L, Da)``."""
    return what


PLACE_IN: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"annotation": place_in_annotation, "keys": place_in_keys}


def mean_annotation(a: Tensor) -> Tensor:
    """What ``h_0, c_0`` are read from: ``mean_i a_i``, ``(N, L, Da) -> (N, Da)`` (the paper)."""
    return a.mean(dim=1)


def no_annotation(a: Tensor) -> Tensor:
    """Zeros ``(N, Da)``: ``h_0 = tanh(b_h)``, so what is where must come through attention."""
    return a.new_zeros(a.shape[0], a.shape[2])


INIT_STATES: dict[str, Callable[[Tensor], Tensor]] = {"mean": mean_annotation, "learned": no_annotation}


class SoftMode:
    """Soft attention: the expected context ``sum_i alpha_ti a_i``, deterministic."""

    name = "soft"

    def rows_on_expected(self, batch_size: int, device: torch.device, training: bool) -> Tensor | None:
        """Rows of a training batch that use the expected context: all of them (None)."""
        return None

    def context(self, attn: BahdanauAttention, h: Tensor, state: dict[str, Tensor], expected_context: Tensor,
                rows_on_expected: Tensor | None, training: bool) -> tuple[Tensor, Tensor | None]:
        """``(z (N, Da), None)``: the expected context as it is."""
        return expected_context, None


class HardMode:
    """Hard attention: one region ``s_t ~ Categorical(alpha_t)`` in training (argmax otherwise), drawn by
    :func:`attnkit.functional.hard.hard_pick` (hard attention over given weights); a share ``expected_share`` of a training batch's captions uses
    the soft context instead (the paper's trick), and the others are read ``samples`` times each.

    Args:
        expected_share: that share, in ``[0, 1]``; samples: ``K``, samples per caption on sampled locations.
    """

    name = "hard"

    def __init__(self, expected_share: float, samples: int = 2) -> None:
        self.expected_share, self.samples = expected_share, samples

    def rows_on_expected(self, batch_size: int, device: torch.device, training: bool) -> Tensor | None:
        """``(B,)`` bool in training: True for captions that use the expected context; None otherwise."""
        if not training:
            return None
        return torch.rand(batch_size, device=device) < self.expected_share

    def training_rows(self, rows_on_expected: Tensor) -> Tensor:
        """``(B,)`` bool -> ``(N,)`` long, the caption of each training row: the ``B`` captions, then ``K - 1``
        more copies of each caption not on the expected context (``N = B + (K - 1) * sampled``).

        Example:
            >>> HardMode(0.5, samples=3).training_rows(torch.tensor([True, False, True, False])).tolist()
            [0, 1, 2, 3, 1, 3, 1, 3]
        """
        sampled = torch.nonzero(~rows_on_expected).flatten()  # (B_s,)
        first = torch.arange(rows_on_expected.numel(), device=rows_on_expected.device)
        return torch.cat([first, sampled.repeat(self.samples - 1)])

    def context(self, attn: BahdanauAttention, h: Tensor, state: dict[str, Tensor], expected_context: Tensor,
                rows_on_expected: Tensor | None, training: bool) -> tuple[Tensor, Tensor]:
        """``(z (N, Da), log p(s_t) (N,))``: the chosen region's annotation, or the expected context on the
        rows ``rows_on_expected`` marks. ``s_t`` is drawn from ``state["alpha"]`` ``(N, L)``, the step's soft
        weights ``alpha_t`` (computed once for both contexts)."""
        log_alpha = state["alpha"].clamp_min(1e-30).log()[:, None]  # (N, 1, L)
        hard = hard_pick(log_alpha, state["a"], training=training)  # context (N, 1, Da)
        sample_lp = hard.log_prob[:, 0]  # (N,)
        if rows_on_expected is None:
            return hard.context[:, 0], sample_lp
        return torch.where(rows_on_expected[:, None], expected_context, hard.context[:, 0]), sample_lp


class UniformMode:
    """No attention, the baseline of the other modes: ``z_t = mean_i a_i``, the same context at every word (the
    alignments a uniform-mode captioner reports are ``1 / L`` everywhere)."""

    name = "uniform"

    def rows_on_expected(self, batch_size: int, device: torch.device, training: bool) -> Tensor | None:
        """No sampled rows (None)."""
        return None

    def context(self, attn: BahdanauAttention, h: Tensor, state: dict[str, Tensor], expected_context: Tensor,
                rows_on_expected: Tensor | None, training: bool) -> tuple[Tensor, None]:
        """``(z (N, Da), None)``: the plain mean of the annotation vectors, whatever the scores say."""
        return state["a"].mean(dim=1), None


def attention_mode(name: str, expected_share: float, hard_samples: int = 2) -> SoftMode | HardMode | UniformMode:
    """The part for ``attention_mode`` ``"soft"``, ``"hard"`` or ``"uniform"``.

    Example:
        >>> attention_mode("hard", 0.5).name
        'hard'
    """
    if name == "uniform":
        return UniformMode()
    return HardMode(expected_share, hard_samples) if name == "hard" else SoftMode()


ATTENTION_MODES: tuple[str, ...] = ("soft", "hard", "uniform")

__all__ = ["ATTENTION_MODES", "INIT_STATES", "PLACE_ENCODINGS", "PLACE_IN", "PLACE_OCTAVES", "FourierPlaces",
           "HardMode", "SoftMode", "TablePlaces", "UniformMode", "attention_mode", "mean_annotation", "no_annotation",
           "place_features", "place_in_annotation", "place_in_keys"]
