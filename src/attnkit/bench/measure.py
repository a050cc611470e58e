"""The one peak-memory probe behind every memory figure of ``attnkit bench``, ``benchmarks/`` and
``attnkit experiment`` (the one timer is :mod:`attnkit.timing`).

Memory (:func:`peak_memory`): a fresh child process imports ``factory`` (``"package.module:function"``),
calls it with ``kwargs`` to build its inputs and warm up, and gets back the call to measure; the child
resets its resident high-water mark (Linux ``/proc/self/clear_refs``), runs the call once and reports the
peak resident memory above what it held before the call. A fresh process per measurement means no
allocator cache of an earlier case hides or inflates the figure; :func:`peak_memories` runs many small
cases of one factory in one child (start-up paid once), freeing everything between them.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from attnkit.timing import timed

__all__ = ["one_line", "peak_memories", "peak_memory", "peak_rss", "reset_peak"]


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


#: the directory attnkit is imported from, first on the child's path: the child measures this very code
_SRC = str(Path(__file__).resolve().parents[2])


def peak_memory(factory: str, kwargs: dict | None = None, *, threads: int = 1, timeout: float = 1800) -> dict:
    """Peak working memory of one call, measured in a fresh child process.

    Args:
        factory: ``"package.module:function"``; the child calls ``function(**kwargs)``, which builds the inputs,
            warms up (a small run of the same code, so library pages already resident do not count) and
            returns the call to measure (no arguments). Inputs the call itself creates count in the figure;
            inputs the factory created before it do not.
        kwargs: JSON-serialisable arguments of the factory.
        threads: torch threads in the child (0: leave torch's default).
        timeout: seconds before the child is killed.

    Returns:
        ``{"bytes": peak resident memory above the level before the call, "peak_bytes": the child's whole
        peak resident memory during the call, "seconds": its duration}``, or the same keys set to None and
        ``"error": "..."`` when the child failed or timed out.

    Example:
        >>> m = peak_memory("attnkit.bench.measure:_example_factory", {"n": 2_000_000}, threads=0)
        >>> 7_000_000 < m["bytes"] < 64_000_000   # one float32 tensor of 2M elements: 8 MB (page counts lag a little)
        True
        >>> m["peak_bytes"] > m["bytes"]           # the whole process: Python and torch too
        True
    """
    return peak_memories(factory, [kwargs or {}], threads=threads, timeout=timeout)[0]


def peak_memories(factory: str, cases: list[dict], *, threads: int = 1, timeout: float = 1800) -> list[dict]:
    """Peak working memory of several calls of one factory, measured one after the other in ONE fresh child
    process (a run of many small cases pays the child's start-up, about a second, once).

    Before each case the child frees what the previous case left (``gc``, ``malloc_trim``) and glibc's
    ``MALLOC_MMAP_THRESHOLD_`` is fixed at 64 KiB in it, so every freed tensor goes back to the system and a
    case cannot hide in memory an earlier one left resident. A case that raises reports its error and the
    next case still runs; cases the child did not reach (killed, timed out) say so.

    Args:
        factory: as for :func:`peak_memory`.
        cases: the keyword arguments of the factory, one dict per case.
        threads: torch threads in the child (0: leave torch's default).
        timeout: seconds before the child is killed (for all the cases together).

    Returns:
        One result per case, in order, as :func:`peak_memory` returns it.

    Example:
        >>> a, b = peak_memories("attnkit.bench.measure:_example_factory", [{"n": 4_000_000}, {"n": -1}])
        >>> 15_000_000 < a["bytes"] < 96_000_000, b["bytes"], b["error"].startswith("RuntimeError")
        (True, None, True)
    """
    spec = json.dumps({"factory": factory, "cases": cases, "threads": threads})
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536",
               PYTHONPATH=os.pathsep.join([_SRC, *filter(None, [os.environ.get("PYTHONPATH")])]))
    command = [sys.executable, "-c", "from attnkit.bench.measure import _child; _child()", spec]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=env)
        stdout, why = done.stdout, (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        stdout, why = out.decode() if isinstance(out, bytes) else out, f"timed out after {timeout:g} s"
    results = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    failed = {"bytes": None, "peak_bytes": None, "seconds": None}
    return results + [{**failed, "error": why if not results else f"the memory child stopped before this case: {why}"}
                      for _ in cases[len(results):]]


def _child() -> None:
    """The memory child's main: measure every case of ``sys.argv[1]`` in turn, one JSON line each."""
    spec = json.loads(sys.argv[1])
    if spec["threads"]:
        import torch

        torch.set_num_threads(spec["threads"])
    module, _, name = spec["factory"].partition(":")
    build = getattr(importlib.import_module(module), name)
    gc.freeze()  # what the imports made lives on: each case's gc.collect scans only what came after
    for kwargs in spec["cases"]:
        print(json.dumps(_measure_case(build, kwargs)), flush=True)


def _measure_case(build: Callable[..., Callable[[], object]], kwargs: dict) -> dict:
    """Build one case, reset the high-water mark, run the call once: its working and whole peak memory."""
    if not Path("/proc/self/clear_refs").exists():
        return {"bytes": None, "peak_bytes": None, "seconds": None,
                "error": "peak resident memory cannot be reset here (no /proc/self/clear_refs)"}
    try:
        run = build(**kwargs)
        base = reset_peak()
        _, seconds = timed(run)
    except Exception as exc:  # noqa: BLE001 -- a case that fails (a mask a kind refuses, say) is reported
        return {"bytes": None, "peak_bytes": None, "seconds": None, "error": one_line(exc)}
    peak = peak_rss()
    return {"bytes": max(0, peak - base), "peak_bytes": peak, "seconds": seconds}


def one_line(exc: BaseException) -> str:
    """``"Type: first line of the message"``: how a benchmark reports a failure in a table cell.

    Example:
        >>> one_line(ValueError("bad mask\\nlong details"))
        'ValueError: bad mask'
    """
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()


def _example_factory(n: int) -> Callable[[], object]:
    """A factory for :func:`peak_memory`'s example: allocates and fills ``n`` float32 numbers."""
    import torch

    torch.ones(16).sum()  # warm-up

    def run() -> float:
        return float(torch.ones(n).sum())  # n < 0 raises: a failing case

    return run
