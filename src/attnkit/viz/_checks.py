"""Argument checks shared by the pictures: a 2-D weight matrix and its row/column token labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def as_matrix(weights: Any, name: str = "weights") -> np.ndarray:
    """``weights`` (a tensor, array or nested list) as a finite float64 numpy matrix ``(Tq, Tk)``."""
    if hasattr(weights, "detach"):  # a torch tensor on any device: pictures are drawn from host memory
        weights = weights.detach().float().cpu().numpy()
    try:
        m = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a 2-D array of numbers (Tq, Tk). Received: {type(weights).__name__}") from err
    if m.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (Tq, Tk); select one example and head first. "
                         f"Received shape: {tuple(m.shape)}")
    if m.size == 0:
        raise ValueError(f"{name} must not be empty. Received shape: {tuple(m.shape)}")
    if not np.isfinite(m).all():
        raise ValueError(f"{name} must be finite. Received {int((~np.isfinite(m)).sum())} NaN/inf values")
    return m


def labels_for(labels: Sequence[Any] | None, n: int, axis: str) -> list[str]:
    """Token labels as display strings; ``None`` gives ``0..n-1``. Spaces show as '␣', empty as '∅'."""
    if labels is None:
        return [str(i) for i in range(n)]
    if isinstance(labels, str):
        raise TypeError(f"{axis} labels must be a sequence of tokens, not one string. Received: {labels!r}")
    labels = list(labels)
    if len(labels) != n:
        which = "rows (Tq)" if axis == "row" else "columns (Tk)"
        raise ValueError(f"{axis} labels must match the weights' {which}: expected {n} labels. "
                         f"Received: {len(labels)}")
    return [display_token(t) for t in labels]


def display_token(token: Any) -> str:
    """A token as shown in a picture: whitespace made visible."""
    s = str(token)
    if s == "":
        return "∅"
    return s.replace(" ", "␣").replace("\t", "⇥").replace("\n", "⏎")


def value_range(m: np.ndarray, vmin: float | None, vmax: float | None) -> tuple[float, float]:
    """Colour range: given bounds, else ``[0, 1]`` when all values lie there (attention weights), else min/max."""
    lo = vmin if vmin is not None else (0.0 if m.min() >= 0 and m.max() <= 1 else float(m.min()))
    hi = vmax if vmax is not None else (1.0 if m.min() >= 0 and m.max() <= 1 else float(m.max()))
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi
