"""The one timer of attnkit: every figure of ``attnkit bench``, ``benchmarks/``, ``attnkit experiment`` and the
measured choice of attention paths (:mod:`attnkit.functional.tuning`) is timed here.

:func:`interleaved_samples`: the contenders run in turn, round after round, the order rotating every round,
after ``warmup`` rounds that are not kept. Round ``i`` of every contender ran back to back, so a per-round ratio
(:func:`paired_ratio`) cancels the slow drifts of a shared machine, and a median (:func:`interleaved_medians`)
ignores the rounds a neighbour's burst spoiled. Anything timed once (a compilation, a training run) goes
through :func:`timed`.

A leaf module: it imports nothing of attnkit, so every layer may time with it (the peak-memory probe, which
needs child processes, stays in :mod:`attnkit.bench.measure`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

__all__ = ["interleaved_medians", "interleaved_samples", "paired_ratio", "timed"]


def interleaved_samples(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each call of each function, ``repeat`` rounds, the order rotating every round.

    Args:
        fns: name -> a call taking no argument (it should finish its work before returning).
        repeat: rounds kept.
        warmup: rounds run first and dropped (kernels chosen, caches filled, lazy imports done).

    Returns:
        name -> ``repeat`` seconds, round ``i`` of every name measured back to back.

    Example:
        >>> s = interleaved_samples({"a": lambda: sum(range(100)), "b": lambda: None}, repeat=3)
        >>> sorted(s), len(s["a"]), all(t >= 0 for t in s["b"])
        (['a', 'b'], 3, True)
    """
    if repeat < 1 or warmup < 0:
        raise ValueError(f"Expected repeat >= 1 and warmup >= 0. Received: repeat={repeat}, warmup={warmup}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeat):
        # rotate who goes first: the call after a contender that floods the caches pays for it
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name].append(timed(fns[name])[1])
    return samples


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """One call's result and its seconds (wall clock): for what happens once, such as a compilation or a
    training run; repeated calls compared against each other go through :func:`interleaved_samples`.

    Example:
        >>> result, seconds = timed(lambda: sum(range(1000)))
        >>> result, seconds >= 0
        (499500, True)
    """
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function (see :func:`interleaved_samples`).

    Example:
        >>> m = interleaved_medians({"a": lambda: None}, repeat=3)
        >>> list(m), m["a"] >= 0
        (['a'], True)
    """
    return {name: statistics.median(s) for name, s in interleaved_samples(fns, repeat, warmup).items()}


def paired_ratio(samples: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of ``time(a) / time(b)`` measured in the same round.

    Example:
        >>> paired_ratio({"x": [2.0, 4.0, 9.0], "y": [1.0, 1.0, 3.0]}, "x", "y")
        3.0
    """
    return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))
