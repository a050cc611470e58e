"""Peak resident memory of self-attention over 32,768 tokens (one head, width 64) for every attention kind.

Each case runs in a fresh child process: it imports torch and attnkit, notes its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the high-water mark; KiB on Linux), creates the inputs,
runs the forward (and backward) pass, and reports the new peak. Both the whole peak (what the 1 GiB goal
is about) and the peak minus the process before the inputs existed (the attention's own working memory,
inputs and gradients included) are printed, as a Markdown table, and written as JSON with ``--json``.

Usage (from the repository root)::

    .venv/bin/python benchmarks/kinds_memory.py                   # every kind, fwd and fwd+bwd, 3 masks
    .venv/bin/python benchmarks/kinds_memory.py --length 8192 --kinds linear performer --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

KINDS = ("sliding_window", "block_sparse", "linear", "performer", "full")
MASKS = ("none", "causal", "padding")
WINDOW = 128
GiB = 2**30

_CHILD = r"""
import resource, sys, time, torch
from attnkit.functional import attention
torch.set_num_threads(int(sys.argv[6]))
kind, mask_name, backward, length, dim = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]), int(sys.argv[5])
extra = {"window": WINDOW_SIZE} if kind == "sliding_window" else {}
q0 = torch.randn(1, 1, 8, dim)
attention(q0, q0, q0, kind=kind, **extra)  # warm up (lazy imports, kernels) before the baseline
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
q, k, v = (torch.randn(1, 1, length, dim, requires_grad=backward) for _ in range(3))
mask = None
if mask_name == "padding":
    mask = torch.ones(1, 1, 1, length, dtype=torch.bool)
    mask[..., 3 * length // 4:] = False
start = time.perf_counter()
out = attention(q, k, v, kind=kind, mask=mask, causal=mask_name == "causal", **extra)
if backward:
    out.sum().backward()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(base, peak, seconds, bool(torch.isfinite(out).all()))
""".replace("WINDOW_SIZE", str(WINDOW))


def measure(kind: str, mask: str, backward: bool, length: int, dim: int, threads: int) -> dict:
    """One case in a child process: ``{"kind", "mask", "pass", "peak_bytes", "working_bytes", "seconds"}``."""
    args = [sys.executable, "-c", _CHILD, kind, mask, "1" if backward else "0", str(length), str(dim), str(threads)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    row = {"kind": kind, "mask": mask, "pass": "fwd+bwd" if backward else "fwd", "length": length}
    if done.returncode:
        lines = done.stderr.strip().splitlines()
        return {**row, "error": lines[-1] if lines else f"exit status {done.returncode} (killed: out of memory?)"}
    base, peak, seconds, finite = done.stdout.split()
    return {**row, "peak_bytes": int(peak), "working_bytes": int(peak) - int(base),
            "seconds": round(float(seconds), 3), "finite": finite == "True"}


def markdown(rows: list[dict]) -> str:
    """The table: peak RSS, working memory, time, and whether the 1 GiB goal is met."""
    lines = ["| kind | mask | pass | peak RSS (MiB) | working memory (MiB) | seconds | < 1 GiB |",
             "|---|---|---|---:|---:|---:|:---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['kind']} | {r['mask']} | {r['pass']} | error: {r['error']} | | | |")
            continue
        ok = "yes" if r["peak_bytes"] < GiB and r["finite"] else "NO"
        lines.append(f"| {r['kind']} | {r['mask']} | {r['pass']} | {r['peak_bytes'] / 2**20:.0f} | "
                     f"{r['working_bytes'] / 2**20:.0f} | {r['seconds']:.2f} | {ok} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=32768)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--masks", nargs="+", default=list(MASKS), choices=MASKS)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    a = parser.parse_args()
    rows = [measure(kind, mask, backward, a.length, a.dim, a.threads)
            for kind in a.kinds for mask in a.masks for backward in (False, True)]
    print(f"Self-attention over {a.length} tokens, one head, width {a.dim}, batch 1, {a.threads} thread(s); "
          f"sliding window {WINDOW} each side.\n")
    print(markdown(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
