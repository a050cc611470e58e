"""The named scores ``"dot"``, ``"scaled_dot"`` and ``"cosine"`` as weight-free callables, for the
reference and chunked paths of :func:`attnkit.functional.attention` (the fused path hands them to SDPA).

Half precision: float16 overflows above 65504, so a dot score of half inputs (float16, bfloat16) is
computed and returned in float32, as SDPA's CPU kernels do inside; the softmax after it runs in float32
too, and only the output (and returned weights) go back to the inputs' dtype. Every path thus gives the
same numbers for the same call, whatever ``return_weights`` and ``chunk_size`` are.

Shape legend: ``...`` leading dims, Tq query length, Tk key length, Dk query/key width.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attnkit.functional._checks import ScoreFn
from attnkit.functional.scores import dot

HALF = (torch.float16, torch.bfloat16)


def at_least_float32(t: Tensor) -> Tensor:
    """``t`` in float32 when it is float16 or bfloat16, else ``t`` itself."""
    return t.float() if t.dtype in HALF else t


def unit_rows(t: Tensor, eps: float = 1e-8) -> Tensor:
    """``t / |t|`` along the last dim, the norm taken at least in float32 (its squares overflow float16)."""
    wide = at_least_float32(t)
    return (wide / wide.norm(dim=-1, keepdim=True).clamp_min(eps)).to(t.dtype)


class ScaledDot:
    """A named dot-product score as a callable without weights: ``scale * q . k`` (Tq, Tk), at least float32.

    ``project`` widens half inputs once, so the chunked path does not widen the queries for every chunk.
    """

    _attnkit_named = True

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def project(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        return at_least_float32(query), at_least_float32(key)  # (..., Tq, Dk), (..., Tk, Dk)

    def combine(self, q: Tensor, k: Tensor) -> Tensor:
        scores = dot(q, k)  # (..., Tq, Tk)
        return scores if self.scale == 1.0 else scores * self.scale

    def __call__(self, query: Tensor, key: Tensor) -> Tensor:
        return self.combine(*self.project(query, key))


class CosineChunks(ScaledDot):
    """Cosine score split for the chunked path: normalise once (project), then dot per chunk (combine)."""

    def project(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        return unit_rows(at_least_float32(query)), unit_rows(at_least_float32(key))


def named_score(name: str, scale: float) -> ScoreFn:
    """The callable of a parameter-free score name with its resolved ``scale``."""
    return CosineChunks(scale) if name == "cosine" else ScaledDot(scale)
