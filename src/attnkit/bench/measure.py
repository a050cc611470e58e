"""The one timer and the one peak-memory probe behind every figure of ``attnkit bench``, ``benchmarks/`` and
``attnkit experiment``.

Timing (:func:`interleaved_samples`): the contenders run in turn, round after round, the order rotating
every round, after ``warmup`` rounds that are not kept. Round ``i`` of every contender ran back to back, so
a per-round ratio (:func:`paired_ratio`) cancels the slow drifts of a shared machine, and a median
(:func:`interleaved_medians`) ignores the rounds a neighbour's burst spoiled.

Memory (:func:`peak_memory`): a fresh child process imports ``factory`` (``"package.module:function"``),
calls it with ``kwargs`` to build its inputs and warm up, and gets back the call to measure; the child
resets its resident high-water mark (Linux ``/proc/self/clear_refs``), runs the call once and reports the
peak resident memory above what it held before the call. A fresh process per measurement means no
allocator cache of an earlier case hides or inflates the figure.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

__all__ = ["interleaved_medians", "interleaved_samples", "paired_ratio", "peak_memory", "peak_rss", "reset_peak"]


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
            start = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - start)
    return samples


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


# ------------------------------------------------------------------------------------------------- memory


def _status(field: str) -> int | None:
    """A ``/proc/self/status`` field in bytes (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss() -> int:
    """This process's peak resident memory in bytes (``VmHWM``: unlike ``ru_maxrss``, which a child started
    by fork + exec inherits from its parent, it belongs to this address space).

    Example:
        >>> peak_rss() > 0
        True
    """
    peak = _status("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> int:
    """Set the peak resident memory to the current one (Linux >= 4.0) after handing freed heap pages back to
    the system; returns the resident memory now, the base a measurement subtracts.

    Example:
        >>> reset_peak() > 0
        True
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed pages reused later count again, as they should
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # VmHWM := VmRSS
    except OSError:
        pass
    current = _status("VmRSS")
    return current if current is not None else peak_rss()


_CHILD = """
import importlib, json, sys, time
from attnkit.bench.measure import peak_rss, reset_peak
spec = json.loads(sys.argv[1])
if spec["threads"]:
    import torch
    torch.set_num_threads(spec["threads"])
module, _, name = spec["factory"].partition(":")
run = getattr(importlib.import_module(module), name)(**spec["kwargs"])
base = reset_peak()
start = time.perf_counter()
run()
seconds = time.perf_counter() - start
print(json.dumps({"bytes": max(0, peak_rss() - base), "seconds": seconds}), flush=True)
"""


def peak_memory(factory: str, kwargs: dict | None = None, *, threads: int = 1, timeout: float = 1800) -> dict:
    """Peak working memory of one call, measured in a fresh child process.

    Args:
        factory: ``"package.module:function"``; the child calls ``function(**kwargs)``, which builds the inputs,
            warms up (a small run of the same code, so library pages already resident do not count) and
            returns the call to measure (no arguments).
        kwargs: JSON-serialisable arguments of the factory.
        threads: torch threads in the child (0: leave torch's default).
        timeout: seconds before the child is killed.

    Returns:
        ``{"bytes": peak resident memory above the level before the call, "seconds": its duration}``, or
        ``{"bytes": None, "seconds": None, "error": "..."}`` when the child failed or timed out.

    Example:
        >>> m = peak_memory("attnkit.bench.measure:_example_factory", {"n": 2_000_000}, threads=0)
        >>> 8_000_000 <= m["bytes"] < 64_000_000   # one float32 tensor of 2M elements is 8 MB
        True
    """
    spec = json.dumps({"factory": factory, "kwargs": kwargs or {}, "threads": threads})
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, spec], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"bytes": None, "seconds": None, "error": f"timed out after {timeout:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return {"bytes": None, "seconds": None, "error": tail}
    return json.loads(lines[-1])


def _example_factory(n: int) -> Callable[[], object]:
    """A factory for :func:`peak_memory`'s example: allocates and fills ``n`` float32 numbers."""
    import torch

    torch.ones(16).sum()  # warm-up

    def run() -> float:
        return float(torch.ones(n).sum())

    return run
