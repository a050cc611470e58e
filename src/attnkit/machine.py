"""What machine a benchmark ran on: its CPU and vector extensions, printed beside every result, since
the ratios depend on them (an AVX-512 CPU has about twice the float32 matmul peak of an AVX2-only one).
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnkit.timing import interleaved_samples, timed

#: The CPU flags that decide float32/bfloat16 matmul speed, in the order they are reported.
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_description(cpuinfo: str | None = None) -> str:
    """One line: CPU model, logical cores and its vector flags (from ``/proc/cpuinfo`` where there is one).

    Example:
        >>> cpu_description("model name\\t: Some CPU\\nflags\\t\\t: fpu sse4_2 avx avx2 fma\\n").split(";")[0]
        'CPU Some CPU'
    """
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.is_file() else ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    flags = set(fields.get("flags", "").split())
    vector = " ".join(f for f in VECTOR_FLAGS if f in flags) or "unknown (no /proc/cpuinfo)"
    return f"CPU {name}; {os.cpu_count()} logical cores; vector flags: {vector}"


def matmul_gflops(size: int = 1024, min_seconds: float = 0.5, repeat: int = 3,
                  product: Callable[[Any, Any], Any] | None = None) -> float:
    """The machine's float32 limit as attnkit sees it: GFLOP/s of a ``size x size`` matmul (torch's ``a @ b``,
    or ``product(a, b)``, any function of two square matrices costing ``2 * size**3``; this process's
    threads), the best of ``repeat`` timed runs of about ``min_seconds`` each (the number of
    products per run is calibrated from one timed product; the runs go through the one timer of
    :mod:`attnkit.timing`).

    One product costs ``2 * size**3`` floating-point operations. The best run is kept because the
    question is what the machine can do; other processes only ever slow it down.

    Args:
        size: side of the square float32 matrices.
        min_seconds: each timed run repeats the product about this long.
        repeat: timed runs (the best is kept).

    Returns:
        GFLOP/s (1e9 floating-point operations per second).

    Example:
        >>> matmul_gflops(64, min_seconds=0.01, repeat=1) > 0
        True
    """
    import torch

    mul = product or torch.matmul
    a, b = torch.randn(size, size), torch.randn(size, size)
    mul(a, b)  # warm-up
    _, once = timed(lambda: mul(a, b))
    calls = max(1, math.ceil(min_seconds / max(once, 1e-9)))
    samples = interleaved_samples({"matmul": lambda: [mul(a, b) for _ in range(calls)]}, repeat, warmup=0)
    return 2 * size**3 * calls / min(samples["matmul"]) / 1e9


def load_average() -> str:
    """The 1, 5 and 15 minute load averages as text ("n/a" where the OS has none).

    Example:
        >>> isinstance(load_average(), str)
        True
    """
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (OSError, AttributeError):
        return "n/a"
