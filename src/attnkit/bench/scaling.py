"""The scaling run: time and memory of every attention path from short to long sequences, with the
fitted exponent of each (``time ~ T^a``, ``memory ~ T^b``).

Time is measured in this process by :mod:`attnkit.timing`'s timer: the paths' calls interleave
round by round (median per path), one head of width 64, batch 1. Memory is measured by its peak-memory
child (:func:`attnkit.bench.measure.peak_memories`): every case of a batch in one fresh child process,
which resets its peak resident memory before each case and reports the peak minus the resident memory
just before the inputs were made, so the figure includes the case's inputs, outputs and gradients. On a
system without ``/proc`` the memory figures are skipped (said so), never zero.

Example:
    >>> rows = time_paths(["sdpa"], [16, 32], repeat=1)
    >>> sorted(rows[0]) == ['forward_backward_s', 'forward_s', 'length', 'path']
    True
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from attnkit.bench.measure import peak_memories
from attnkit.bench.paths import DENSE, PathFn, available_paths, inputs, run_path
from attnkit.timing import interleaved_medians

MiB = 2**20
#: cases whose dense score matrix would pass this many bytes are not run on the ``naive`` path
NAIVE_LIMIT = 2**30
MEMORY_TIMEOUT = 3600.0
#: an attention kind is not run at a length where its forward+backward would take longer (extrapolated)
TIME_BUDGET = 120.0


def lengths_for(quick: bool) -> list[int]:
    """128 ... 32,768 tokens in powers of two (quick: 128 ... 1024).

    Example:
        >>> lengths_for(True)
        [128, 256, 512, 1024]
    """
    return [128, 256, 512, 1024] if quick else [2**i for i in range(7, 16)]


def runs_at(path: str, length: int) -> bool:
    """Whether ``path`` is run at ``length`` (the naive path stops where its (T, T) matrix passes 1 GiB)."""
    return path != "naive" or 4 * length * length <= NAIVE_LIMIT // 4


def _within_budget(rows: list[dict], path: str, length: int) -> bool:
    """False for an attention kind whose forward+backward at ``length``, extrapolated quadratically from
    its last timed length, would pass ``TIME_BUDGET`` seconds (the dense paths always run: they are the
    reference)."""
    last = [r for r in rows if r["path"] == path]
    if path in DENSE or not last:
        return True
    r = last[-1]
    return r["forward_backward_s"] * (length / r["length"]) ** 2 <= TIME_BUDGET


def time_paths(names: list[str], lengths: list[int], repeat: int = 3) -> list[dict]:
    """Median seconds of forward and of forward+backward of each path at each length.

    Args:
        names: path names (see :mod:`attnkit.bench.paths`); ones that cannot run are left out.
        lengths: sequence lengths ``T``.
        repeat: interleaved rounds per length (fewer above 4096: 2, above 8192: 1).

    Returns:
        One dict per (path, length): ``path``, ``length``, ``forward_s``, ``forward_backward_s``.
    """
    paths, _ = available_paths(names)
    rows: list[dict] = []
    for length in lengths:
        q, k, v, _, _ = inputs(length, grad=True)
        here = {n: fn for n, fn in paths.items() if runs_at(n, length) and _within_budget(rows, n, length)}
        rounds = repeat if length <= 4096 else (min(repeat, 2) if length <= 8192 else 1)
        med = {}
        for backward in (False, True):
            args = (q, k, v, None, False, backward)
            fns = {n: (lambda fn=fn, a=args: run_path(fn, *a)) for n, fn in here.items()}
            med[backward] = interleaved_medians(fns, rounds, warmup=1 if length <= 8192 else 0)
        rows += [{"path": n, "length": length, "forward_s": med[False][n], "forward_backward_s": med[True][n]}
                 for n in here]
    return rows


# ---------------------------------------------------------------------------------------------
# memory, in the peak-memory child


@functools.cache
def _warm(path: str, mask: str) -> PathFn:
    """``path``'s call after one forward and one forward+backward at T = 256 (its code's pages resident)."""
    paths, skipped = available_paths([path])
    if not paths:
        raise RuntimeError(skipped[0][1])
    for backward in (False, True):
        q, k, v, key_mask, causal = inputs(256, grad=backward, mask=mask)
        run_path(paths[path], q, k, v, key_mask, causal, backward)
    return paths[path]


def memory_case(path: str, length: int, mask: str, backward: bool, dim: int = 64) -> Callable[[], None]:
    """The factory of one memory case (``"attnkit.bench.scaling:memory_case"`` for the peak-memory child):
    warms ``path`` up and returns the call that makes the inputs and runs the case, so inputs, outputs and
    gradients count in its working memory.

    Example:
        >>> from attnkit.bench.measure import peak_memory
        >>> m = peak_memory("attnkit.bench.scaling:memory_case", dict(path="naive", length=1024, mask="none",
        ...                 backward=False))
        >>> m["bytes"] >= 4 * 1024 * 1024   # naive builds the (T, T) float32 score matrix
        True
    """
    fn = _warm(path, mask)

    def run() -> None:
        q, k, v, key_mask, causal = inputs(length, dim=dim, grad=backward, mask=mask)
        run_path(fn, q, k, v, key_mask, causal, backward)

    return run


def measure_memory(cases: list[dict], threads: int | None = None) -> list[dict]:
    """Run ``cases`` (dicts with ``path``, ``length``, ``mask``, ``backward``) in one peak-memory child.

    Returns:
        The cases with ``working_bytes``, ``peak_rss_bytes`` (the child's whole peak) and ``seconds`` added,
        or ``error`` (a case the child did not reach because it died says so).
    """
    results = peak_memories("attnkit.bench.scaling:memory_case", cases, threads=threads or torch.get_num_threads(),
                            timeout=MEMORY_TIMEOUT)
    return [{**case, "error": r["error"]} if "error" in r else
            {**case, "working_bytes": r["bytes"], "peak_rss_bytes": r["peak_bytes"], "seconds": r["seconds"]}
            for case, r in zip(cases, results, strict=True)]


def memory_cases(names: list[str], lengths: list[int], timing: list[dict] | None = None) -> list[dict]:
    """The scaling run's memory cases: every path and length (no mask), forward and forward+backward;
    with ``timing``, only the (path, length) pairs that were timed."""
    timed = None if timing is None else {(r["path"], r["length"]) for r in timing}
    return [{"path": n, "length": t, "mask": "none", "backward": b}
            for t in lengths for n in names if runs_at(n, t) and (timed is None or (n, t) in timed)
            for b in (False, True)]

