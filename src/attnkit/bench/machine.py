"""What machine a benchmark ran on: its CPU and vector extensions, printed beside every result, since
the ratios depend on them (an AVX-512 CPU has about twice the float32 matmul peak of an AVX2-only one).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

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
