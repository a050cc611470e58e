"""The scaling run: time and memory of every attention path from short to long sequences, with the
fitted exponent of each (``time ~ T^a``, ``memory ~ T^b``).

Time is measured in this process: the paths' calls interleave round by round (median per path), one
head of width 64, batch 1. Memory is measured in ONE fresh child process (``python -m
attnkit.bench.scaling --memory-child``) that runs every case once: it resets its peak resident memory
(``VmHWM``, via ``/proc/self/clear_refs``) before each case and reports the peak minus the resident
memory just before the inputs were made, so the figure includes the case's inputs, outputs and
gradients. glibc's ``MALLOC_MMAP_THRESHOLD_`` is fixed at 64 KiB in the child, so every freed tensor is
returned to the system and a later case cannot hide in memory a former one left resident. On a system
without ``/proc`` the memory figures are skipped (said so), never zero.

Example:
    >>> rows = time_paths(["sdpa"], [16, 32], repeat=1)
    >>> sorted(rows[0]) == ['forward_backward_s', 'forward_s', 'length', 'path']
    True
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from attnkit.bench.functional import interleaved_samples
from attnkit.bench.paths import DENSE, available_paths, inputs

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


def _call(fn, q, k, v, mask, causal, backward: bool) -> None:
    if backward:
        fn(q, k, v, mask, causal).sum().backward()
        q.grad = k.grad = v.grad = None
    else:
        with torch.no_grad():
            fn(q, k, v, mask, causal)


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
            fns = {n: (lambda fn=fn, b=backward, qkv=(q, k, v): _call(fn, *qkv, None, False, b)) for n, fn in here.items()}
            samples = interleaved_samples(fns, rounds, warmup=1 if length <= 8192 else 0)
            med[backward] = {n: statistics.median(s) for n, s in samples.items()}
        rows += [{"path": n, "length": length, "forward_s": med[False][n], "forward_backward_s": med[True][n]}
                 for n in here]
    return rows


# ---------------------------------------------------------------------------------------------
# memory, in a child process


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@functools.cache
def _paths_once(path: str) -> tuple[dict, list]:
    return available_paths([path])


def memory_case(path: str, length: int, mask: str, backward: bool) -> dict:
    """Run one case in this process: its working memory (peak RSS minus RSS before its inputs), the
    process's whole peak RSS during it, and its seconds. Needs Linux's ``/proc``."""
    paths, skipped = _paths_once(path)
    if not paths:
        return {"error": skipped[0][1]}
    fn = paths[path]
    if not _reset_peak():
        return {"error": "peak resident memory cannot be reset here (no /proc/self/clear_refs)"}
    base = _status_bytes("VmRSS")
    q, k, v, key_mask, causal = inputs(length, grad=backward, mask=mask)
    start = time.perf_counter()
    try:
        _call(fn, q, k, v, key_mask, causal, backward)
    except Exception as exc:  # noqa: BLE001 -- a mask a kind does not support, say
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    seconds = time.perf_counter() - start
    peak = _status_bytes("VmHWM")
    del q, k, v, key_mask
    return {"working_bytes": peak - base, "peak_rss_bytes": peak, "seconds": seconds}


def measure_memory(cases: list[dict], threads: int | None = None) -> list[dict]:
    """Run ``cases`` (dicts with ``path``, ``length``, ``mask``, ``backward``) in one fresh child process.

    Returns:
        The cases with ``working_bytes``, ``peak_rss_bytes`` and ``seconds`` added, or ``error`` (a case
        the child did not reach because it died says so).
    """
    if not Path("/proc/self/clear_refs").exists():
        return [{**c, "error": "no /proc: peak resident memory is not measurable here"} for c in cases]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    cmd = [sys.executable, "-m", "attnkit.bench.scaling", "--memory-child", json.dumps(cases),
           "--threads", str(threads or torch.get_num_threads())]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=MEMORY_TIMEOUT)
    done = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    return done + [{**c, "error": f"the memory child stopped before this case: {why}"} for c in cases[len(done):]]


def _child(cases_json: str, threads: int) -> int:
    torch.set_num_threads(threads)
    cases = json.loads(cases_json)
    for path, mask in {(c["path"], c["mask"]) for c in cases}:  # warm-up: touch the code's pages once
        memory_case(path, 256, mask, False)
        memory_case(path, 256, mask, True)
    for case in cases:
        result = memory_case(case["path"], case["length"], case["mask"], case["backward"])
        print(json.dumps({**case, **result}), flush=True)
    return 0


def memory_cases(names: list[str], lengths: list[int], timing: list[dict] | None = None) -> list[dict]:
    """The scaling run's memory cases: every path and length (no mask), forward and forward+backward;
    with ``timing``, only the (path, length) pairs that were timed."""
    timed = None if timing is None else {(r["path"], r["length"]) for r in timing}
    return [{"path": n, "length": t, "mask": "none", "backward": b}
            for t in lengths for n in names if runs_at(n, t) and (timed is None or (n, t) in timed)
            for b in (False, True)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="attnkit bench: the memory child of the scaling run")
    parser.add_argument("--memory-child", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sys.exit(_child(args.memory_child, args.threads))
