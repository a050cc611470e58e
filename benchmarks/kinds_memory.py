"""Peak resident memory of self-attention over 32,768 tokens (one head, width 64) for every attention kind.

Each case runs in a fresh peak-memory child (:func:`attnkit.bench.measure.peak_memory`, the same probe as
`attnkit bench kinds`, with the case factory of :mod:`attnkit.bench.scaling`): the child warms the path up,
resets its peak resident memory, creates the inputs, runs the forward (and backward) pass and reports its
peak. Both the whole peak (what the 1 GiB goal is about) and the peak minus the process before the inputs
existed (the attention's own working memory, inputs and gradients included) are printed, as a Markdown
table, and written as JSON with ``--json``.

Usage (from the repository root)::

    .venv/bin/python benchmarks/kinds_memory.py                   # every kind, fwd and fwd+bwd, 3 masks
    .venv/bin/python benchmarks/kinds_memory.py --length 8192 --kinds linear performer --json out.json
"""

from __future__ import annotations

import argparse
import json

from attnkit.bench.measure import peak_memory
from attnkit.bench.paths import KINDS, WINDOW

PATHS = (*KINDS, "attnkit")  # "attnkit": full attention, the reference
MASKS = ("none", "causal", "padding")
GiB = 2**30


def measure(path: str, mask: str, backward: bool, length: int, dim: int, threads: int) -> dict:
    """One case in its own child: ``{"path", "mask", "pass", "length", "peak_bytes", "working_bytes", "seconds"}``."""
    case = {"path": path, "length": length, "mask": mask, "backward": backward, "dim": dim}
    m = peak_memory("attnkit.bench.scaling:memory_case", case, threads=threads)
    row = {"path": path, "mask": mask, "pass": "fwd+bwd" if backward else "fwd", "length": length}
    if "error" in m:
        return {**row, "error": m["error"]}
    return {**row, "peak_bytes": m["peak_bytes"], "working_bytes": m["bytes"], "seconds": round(m["seconds"], 3)}


def markdown(rows: list[dict]) -> str:
    """The table: peak RSS, working memory, time, and whether the 1 GiB goal is met."""
    lines = ["| path | mask | pass | peak RSS (MiB) | working memory (MiB) | seconds | < 1 GiB |",
             "|---|---|---|---:|---:|---:|:---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['path']} | {r['mask']} | {r['pass']} | error: {r['error']} | | | |")
            continue
        ok = "yes" if r["peak_bytes"] < GiB else "NO"
        lines.append(f"| {r['path']} | {r['mask']} | {r['pass']} | {r['peak_bytes'] / 2**20:.0f} | "
                     f"{r['working_bytes'] / 2**20:.0f} | {r['seconds']:.2f} | {ok} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=32768)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kinds", nargs="+", default=list(PATHS), choices=PATHS,
                        help="attention kinds to measure ('attnkit': full attention)")
    parser.add_argument("--masks", nargs="+", default=list(MASKS), choices=MASKS)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    a = parser.parse_args()
    rows = [measure(path, mask, backward, a.length, a.dim, a.threads)
            for path in a.kinds for mask in a.masks for backward in (False, True)]
    print(f"Self-attention over {a.length} tokens, one head, width {a.dim}, batch 1, {a.threads} thread(s); "
          f"sliding window {WINDOW} each side.\n")
    print(markdown(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
