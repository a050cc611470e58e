"""Trainable attention building blocks (``torch.nn.Module``s, batch-first) that call :mod:`attnkit.functional`."""

from attnkit.layers.scores import (
    AdditiveScore,
    ConcatScore,
    CosineScore,
    DotScore,
    GeneralScore,
    LocationScore,
    ScaledDotScore,
)

__all__ = [
    "AdditiveScore", "ConcatScore", "CosineScore", "DotScore", "GeneralScore", "LocationScore", "ScaledDotScore",
]
