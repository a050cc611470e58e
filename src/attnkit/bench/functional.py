"""Benchmark of the functional core: time ratios against torch SDPA and a naive implementation, and
working memory of the chunked additive path against the naive one, for attnkit's ``AdditiveScore`` module
and for a plain closure ``lambda a, b: additive(a, b, w_q, w_k, w_v)`` (no attribute: probed, then chunked).

Everything is measured in one run, as ratios, so a busy machine slows every contender alike: timings go
through :mod:`attnkit.timing`'s timer (the contenders interleaved call by call, medians of the
rounds, ratios as medians of per-round ratios). Each memory case runs in a fresh peak-memory child
(:func:`attnkit.bench.measure.peak_memory`: peak resident memory minus the resident memory once the
inputs exist); a case whose estimate exceeds ``MEMORY_LIMIT`` is reported as its estimate instead of
being run.

Run it as ``attnkit bench functional`` or ``python benchmarks/bench_functional.py`` (``--quick`` for a short run;
``python -m attnkit.bench.functional --additive-only`` for the additive time and memory cases alone).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from attnkit.bench.measure import peak_memory
from attnkit.bench.paths import PathFn, available_paths, inputs, run_path
from attnkit.bench.report import Section
from attnkit.functional import additive, attention
from attnkit.layers.scores import AdditiveScore
from attnkit.machine import cpu_description
from attnkit.storage import atomic_write_text
from attnkit.timing import interleaved_samples, paired_ratio

GiB = 2**30
MiB = 2**20
MEMORY_LIMIT = 8 * GiB


# ---------------------------------------------------------------------------------------------
# timing


def naive_additive(q, k, v, score: AdditiveScore):
    """Bahdanau's formula as written: softmax_j(w_v^T tanh(W_q q_i + W_k k_j)) v_j, materialising (B, Tq, Tk, H)."""
    hidden = torch.tanh(score.w_q(q)[:, :, None, :] + score.w_k(k)[:, None, :, :])  # (B, Tq, Tk, H)
    return torch.softmax(hidden @ score.w_v, dim=-1) @ v


def closure_additive(q, k, v, score: AdditiveScore):
    """attnkit with the additive score as a plain closure: no ``expansion``, no ``project``; chunk_size=None."""
    return attention(q, k, v, score=lambda a, b: additive(a, b, score.w_q.weight, score.w_k.weight, score.w_v))


def additive_paths(score: AdditiveScore) -> dict[str, PathFn]:
    """The additive contenders as paths ``call(q, k, v, mask, causal)`` (mask and causal unused): ``naive``,
    ``attnkit`` (the ``AdditiveScore`` module, auto chunks) and ``closure``."""
    return {"naive": lambda q, k, v, m, c: naive_additive(q, k, v, score),
            "attnkit": lambda q, k, v, m, c: attention(q, k, v, score=score),
            "closure": lambda q, k, v, m, c: closure_additive(q, k, v, score)}


@dataclass
class SpeedRow:
    length: int
    mask: str
    mode: str
    attnkit_ms: float
    sdpa_ms: float
    naive_ms: float
    ratio: float  # attnkit / SDPA: median of per-round ratios


def bench_scaled_dot(lengths, *, batch=4, heads=8, dim=64, repeat=7, masks=("none", "causal", "padding")) -> list[SpeedRow]:
    """attnkit vs SDPA vs naive for scaled dot-product attention, forward and forward+backward."""
    rows = []
    paths, _ = available_paths(["attnkit", "sdpa", "naive"])
    for length in lengths:
        for kind in masks:
            q, k, v, mask, causal = inputs(length, batch=batch, heads=heads, dim=dim, grad=True, mask=kind)
            for backward in (False, True):
                args = (q, k, v, mask, causal, backward)
                fns = {name: (lambda fn=fn, a=args: run_path(fn, *a)) for name, fn in paths.items()}
                # short calls are noisier and cheap: give them more rounds (x4 at T=128, x2 at T=256)
                samples = interleaved_samples(fns, repeat * max(1, 512 // length))
                med = {name: statistics.median(t) for name, t in samples.items()}
                rows.append(SpeedRow(length, kind, "forward+backward" if backward else "forward",
                                     med["attnkit"] * 1e3, med["sdpa"] * 1e3, med["naive"] * 1e3,
                                     paired_ratio(samples, "attnkit", "sdpa")))
    return rows


# ---------------------------------------------------------------------------------------------
# memory: each case runs in a fresh peak-memory child


@dataclass
class MemoryCase:
    name: str
    what: str
    estimate_bytes: int


def _additive_inputs(batch: int, length: int, width: int, hidden: int, grad: bool):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    score = AdditiveScore(width, width, hidden)
    q, k, v = (torch.randn(batch, length, width, generator=gen).requires_grad_(grad) for _ in range(3))
    return score, q, k, v


def memory_cases(quick: bool = False) -> list[MemoryCase]:
    f32 = 4
    cases = [
        MemoryCase("fused_16k_forward", "attnkit scaled_dot forward, T=16384, 1 head of width 64", 64 * MiB),
        MemoryCase("naive_16k_forward", "naive scaled_dot forward, T=16384, 1 head of width 64", 2 * 16384**2 * f32),
    ]
    for length in ((512,) if quick else (512, 1024)):
        big = 8 * length * length * 256 * f32  # one (B, Tq, Tk, H) tensor
        for mode, factor in (("forward", 2), ("forward+backward", 3)):
            tag = "fwd" if mode == "forward" else "fwdbwd"
            cases.append(MemoryCase(f"naive_additive_{length}_{tag}", f"naive additive {mode}, B=8, T={length}, H=256", factor * big))
            cases.append(MemoryCase(f"chunked_additive_{length}_{tag}", f"attnkit additive (auto chunks) {mode}, B=8, T={length}, H=256",
                                    factor * big // 16))
            cases.append(MemoryCase(f"closure_additive_{length}_{tag}", f"attnkit additive closure (auto chunks) {mode}, B=8, T={length}, H=256",
                                    factor * big // 8))
    return cases


def _memory_case_call(name: str, scale: int = 1) -> Callable[[], None]:
    """The call a memory case measures; ``scale > 1`` shrinks the lengths (a warm-up of the same code)."""
    if name.endswith("16k_forward"):
        q, k, v, _, _ = inputs(16384 // scale)  # (1, 1, T, 64)
        fn = available_paths(["attnkit", "naive"])[0]["attnkit" if name.startswith("fused") else "naive"]
        return lambda: run_path(fn, q, k, v, None, False, False)
    contender, _, length, tag = name.split("_")
    backward = tag == "fwdbwd"
    score, q, k, v = _additive_inputs(8, int(length) // scale, 256, 256, backward)
    fn = additive_paths(score)["attnkit" if contender == "chunked" else contender]
    return lambda: run_path(fn, q, k, v, None, False, backward)


def memory_case(name: str) -> Callable[[], None]:
    """The factory of one memory case (``"attnkit.bench.functional:memory_case"`` for the peak-memory child):
    a small warm-up of the same code runs first, so the pages of torch's libraries that the call touches
    are already resident and do not count as working memory; the inputs exist before the call."""
    _memory_case_call(name, scale=16)()
    return _memory_case_call(name)


def measure_memory(cases: list[MemoryCase], limit: int = MEMORY_LIMIT) -> list[dict]:
    """Each case's working memory and seconds, measured in its own child (an estimate over ``limit``)."""
    results = []
    for case in cases:
        row = {"name": case.name, "what": case.what, "estimate_bytes": case.estimate_bytes}
        if case.estimate_bytes > limit:
            row.update(measured=False, working_bytes=case.estimate_bytes, seconds=None)
        else:
            m = peak_memory("attnkit.bench.functional:memory_case", {"name": case.name}, threads=2)
            row.update(measured="error" not in m, working_bytes=m["bytes"], seconds=m["seconds"])
            row.update({"error": m["error"]} if "error" in m else {})
        results.append(row)
    return results


def bench_additive_time(length: int = 512, repeat: int = 3) -> dict:
    """Naive vs chunked additive attention time (B=8, width 256, H=256), forward and forward+backward:
    attnkit with the ``AdditiveScore`` module and with a plain closure; ratios are medians of per-round ratios."""
    score, q, k, v = _additive_inputs(8, length, 256, 256, True)
    out = {}
    for backward in (False, True):
        samples = interleaved_samples({name: (lambda fn=fn, b=backward: run_path(fn, q, k, v, None, False, b))
                                       for name, fn in additive_paths(score).items()}, repeat, warmup=0)
        med = {name: statistics.median(t) for name, t in samples.items()}
        out["forward+backward" if backward else "forward"] = {
            "naive_s": med["naive"], "attnkit_s": med["attnkit"], "closure_s": med["closure"],
            "ratio": paired_ratio(samples, "attnkit", "naive"), "closure_ratio": paired_ratio(samples, "closure", "naive")}
    return out


# ---------------------------------------------------------------------------------------------
# report


def format_report(speed: list[SpeedRow], memory: list[dict], additive: dict | None) -> str:
    lines = [] if not speed else [
        "## Scaled dot-product attention: time vs torch SDPA", "",
        "ms: median of interleaved calls; attnkit / SDPA: median of the per-round ratios.", "",
        "| T | mask | pass | attnkit ms | SDPA ms | naive ms | attnkit / SDPA | naive / SDPA |",
        "|---|---|---|---|---|---|---|---|"]
    for r in speed:
        lines.append(f"| {r.length} | {r.mask} | {r.mode} | {r.attnkit_ms:.2f} | {r.sdpa_ms:.2f} | {r.naive_ms:.2f} | "
                     f"{r.ratio:.3f}x | {r.naive_ms / r.sdpa_ms:.2f}x |")
    if speed:
        worst = max(speed, key=lambda r: r.ratio)
        lines += ["", f"Worst attnkit / SDPA ratio: {worst.ratio:.3f}x (T={worst.length}, {worst.mask}, {worst.mode})."]
    if additive:
        lines += ["", "## Additive attention (B=8, T=512, A=256): attnkit (auto chunks) vs naive time", "",
                  "Module: attnkit.layers.AdditiveScore; closure: lambda a, b: additive(a, b, w_q, w_k, w_v). "
                  "Ratios: medians of per-round ratios.", "",
                  "| pass | naive s | attnkit module s | attnkit closure s | module / naive | closure / naive |",
                  "|---|---|---|---|---|---|"]
        for mode, r in additive.items():
            lines.append(f"| {mode} | {r['naive_s']:.2f} | {r['attnkit_s']:.2f} | {r.get('closure_s', float('nan')):.2f} | "
                         f"{r['ratio']:.2f}x | {r.get('closure_ratio', float('nan')):.2f}x |")
    if memory:
        lines += ["", "## Working memory (fresh child process per case)", "",
                  "| case | working memory | seconds | how |", "|---|---|---|---|"]
        for m in memory:
            wb = m.get("working_bytes")
            mem = "failed" if wb is None else f"{wb / MiB:,.0f} MiB"
            how = "measured" if m.get("measured") else ("estimate (over the limit, not run)" if wb is not None else f"error: {m.get('error')}")
            secs = "" if m.get("seconds") is None else f"{m['seconds']:.2f}"
            lines.append(f"| {m['what']} | {mem} | {secs} | {how} |")
        lines += _memory_ratio_lines(memory)
    return "\n".join(lines)


def _memory_ratio_lines(memory: list[dict]) -> list[str]:
    by, lines = {m["name"]: m for m in memory}, []
    for kind, label in (("chunked", "Chunked (module)"), ("closure", "Chunked (closure)")):
        for length in (512, 1024):
            for tag in ("fwd", "fwdbwd"):
                n, c = by.get(f"naive_additive_{length}_{tag}"), by.get(f"{kind}_additive_{length}_{tag}")
                if n and c and n.get("working_bytes") and c.get("working_bytes"):
                    lines.append(f"\n{label} / naive working memory, T={length} {tag}: "
                                 f"{c['working_bytes'] / n['working_bytes']:.3f} (1/{n['working_bytes'] / max(c['working_bytes'], 1):.0f})")
    return lines


def run(quick: bool = False) -> Section:
    """The ``functional`` suite for ``attnkit bench``: attnkit's ``attention()`` vs torch SDPA vs naive
    (scaled dot, masks none / causal / padding, forward and forward+backward). Full: batch 4, 8 heads,
    T = 128, 512, 2048, 3 rounds (x4 at 128); quick: batch 2, 2 heads, T = 64 and 128, 3 rounds.

    Returns:
        A :class:`attnkit.bench.report.Section` (its ``figures`` hold every measured number).
    """
    section = Section("functional", "Functional core: attention() vs torch SDPA vs naive")
    sizes = dict(batch=2, heads=2, repeat=3) if quick else dict(batch=4, heads=8, repeat=3)
    speed = bench_scaled_dot([64, 128] if quick else [128, 512, 2048], **sizes)
    section.table(f"Scaled dot-product attention, batch {sizes['batch']}, {sizes['heads']} heads, width 64",
                  ["T", "mask", "pass", "attnkit ms", "SDPA ms", "naive ms", "attnkit / SDPA", "naive / SDPA"],
                  [[r.length, r.mask, r.mode, r.attnkit_ms, r.sdpa_ms, r.naive_ms, r.ratio, r.naive_ms / r.sdpa_ms]
                   for r in speed], ["ms: median of interleaved calls; ratios: median of per-round ratios."])
    for r in speed:
        key = f"functional/T={r.length}/{r.mask}/{r.mode}"
        section.figures.update({f"{key}/attnkit_ms": r.attnkit_ms, f"{key}/sdpa_ms": r.sdpa_ms,
                                f"{key}/naive_ms": r.naive_ms, f"{key}/ratio": r.ratio})
    section.notes.append("The additive-attention time and memory cases (naive tensors of 2-6 GiB) run only in "
                         "`python -m attnkit.bench.functional --additive-only`; memory against length is in the "
                         "kinds suite.")
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: two lengths, no memory cases over T=512")
    parser.add_argument("--lengths", type=int, nargs="+", help="sequence lengths for the scaled-dot grid")
    parser.add_argument("--repeat", type=int, help="timed calls per contender (median is kept)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory cases")
    parser.add_argument("--no-speed", action="store_true", help="skip the timings (memory cases only)")
    parser.add_argument("--additive-only", action="store_true",
                        help="only the additive cases (module and closure vs naive: time, and memory at T=512)")
    parser.add_argument("--json", help="also write the results as JSON to this path")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    lengths = args.lengths or ([128, 512] if args.quick else [128, 256, 512, 1024, 2048])
    repeat = args.repeat or (5 if args.quick else 15)
    print(f"attnkit functional benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    print(cpu_description(), flush=True)
    only = args.additive_only
    speed = [] if (args.no_speed or only) else bench_scaled_dot(lengths, repeat=repeat, masks=("none", "causal", "padding"))
    additive = None if ((args.quick and not only) or args.no_speed) else bench_additive_time(512, repeat=args.repeat or 3)
    cases = [c for c in memory_cases(args.quick or only) if not only or "additive" in c.name]
    memory = [] if args.no_memory else measure_memory(cases)
    report = format_report(speed, memory, additive)
    print(report)
    if args.json:
        atomic_write_text(args.json, json.dumps({"speed": [asdict(r) for r in speed], "additive": additive,
                                                 "memory": memory}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
