"""The ``kinds`` suite: the attention kinds of ``attention(kind=...)`` beside full attention and torch SDPA,
from 128 to 32,768 tokens (quick: 128 to 1024), one head of width 64, batch 1.

It reports, per path: forward and forward+backward time and working memory at every length (see
:mod:`attnkit.bench.scaling` for how each is measured), the fitted exponents of time and memory (on the
longest lengths, where fixed costs no longer dominate), the peak resident memory of the longest length
with no mask, a causal mask and a padding mask against the 1 GiB goal, and each kind's speed-up over
SDPA at the longest length beside the speed-up its cost formula predicts. A kind that cannot run (not
built in this version, or failing) is listed as skipped with the reason.

Example:
    >>> section = run(quick=True, lengths=[64, 128], goal_masks=())  # doctest: +SKIP
"""

from __future__ import annotations

import torch

from attnkit.bench.paths import ALL_PATHS, DENSE, KINDS, WINDOW, available_paths, predicted_speedup
from attnkit.bench.report import Section, fit_exponent
from attnkit.bench.scaling import (
    TIME_BUDGET,
    MiB,
    _within_budget,  # noqa: PLC2701 -- shared with the scaling run
    lengths_for,
    measure_memory,
    memory_cases,
    runs_at,
    time_paths,
)

GiB = 2**30
GOAL_MASKS = ("none", "causal", "padding")
LONG = 8192  # above this length, each case runs once (in the memory child), which also times it


def run(quick: bool = False, *, lengths: list[int] | None = None, goal_masks: tuple[str, ...] = GOAL_MASKS,
        repeat: int | None = None) -> Section:
    """Measure the scaling run and the kinds' goals; returns the ``kinds`` section (tables, skipped, figures).

    Args:
        quick: short lengths and fewer rounds.
        lengths: override the lengths (default :func:`attnkit.bench.scaling.lengths_for`).
        goal_masks: masks measured at the longest length for the memory goal.
        repeat: interleaved timing rounds per length (default 1 quick, 3 full).
    """
    section = Section("kinds", "Attention kinds and the scaling run (one head, width 64, batch 1)")
    paths, skipped = available_paths(ALL_PATHS)
    for name, reason in skipped:
        section.skip(name, reason)
    lengths = lengths or lengths_for(quick)
    short = [t for t in lengths if t <= LONG]
    timing = time_paths(list(paths), short, repeat or (1 if quick else 3))
    memory = measure_memory(memory_cases(list(paths), short, timing), torch.get_num_threads())
    goal_paths = [n for n in paths if n not in ("sdpa", "naive")]
    for length in [t for t in lengths if t > LONG]:
        here = [n for n in paths if runs_at(n, length) and _within_budget(timing, n, length)]
        cases = memory_cases(here, [length])
        if length == lengths[-1]:
            cases += [{"path": n, "length": length, "mask": m, "backward": b}
                      for m in goal_masks if m != "none" for n in goal_paths if n in here for b in (False, True)]
        memory += measure_memory(cases, torch.get_num_threads())
        timing += _timing_from_memory(memory, here, length)
    if short and len(short) < len(lengths):
        section.notes.append(f"Above T = {LONG} each case ran once, timed in the memory child (no interleaving); "
                             f"a kind whose forward+backward would pass {TIME_BUDGET:.0f} s (extrapolated "
                             "quadratically) is not run at that length.")
    _scaling_table(section, timing, memory)
    _exponent_table(section, list(paths), timing, memory)
    _goal_table(section, goal_paths, lengths[-1], memory, goal_masks)
    _speedup_table(section, paths, timing, lengths)
    section.notes.append(
        f"Window of the sliding-window kind: {WINDOW} keys each side. Time: median of interleaved rounds in "
        "this process. Memory: peak resident memory (VmHWM) of one child process, reset before each case, "
        "minus its resident memory before the case's inputs existed (inputs, outputs and gradients count).")
    section.raw = {"timing": timing, "memory": memory}
    return section


def _timing_from_memory(memory: list[dict], names: list[str], length: int) -> list[dict]:
    rows = []
    for name in names:
        fwd, bwd = (_mem(memory, name, length, "none", b) for b in (False, True))
        if fwd and bwd and "error" not in fwd and "error" not in bwd:
            rows.append({"path": name, "length": length, "forward_s": fwd["seconds"], "forward_backward_s": bwd["seconds"]})
    return rows


def _mem(memory: list[dict], path: str, length: int, mask: str, backward: bool) -> dict | None:
    for m in memory:
        if (m["path"], m["length"], m["mask"], m["backward"]) == (path, length, mask, backward):
            return m
    return None


def _mib(m: dict | None, key: str = "working_bytes") -> float | str:
    if m is None:
        return "not run"
    if "error" in m:
        return "failed"
    return m[key] / MiB


def _scaling_table(section: Section, timing: list[dict], memory: list[dict]) -> None:
    rows = []
    for r in timing:
        fwd, bwd = (_mem(memory, r["path"], r["length"], "none", b) for b in (False, True))
        rows.append([r["path"], r["length"], r["forward_s"] * 1e3, r["forward_backward_s"] * 1e3, _mib(fwd), _mib(bwd)])
        key = f"kinds/{r['path']}/T={r['length']}"
        section.figures[f"{key}/forward_s"] = r["forward_s"]
        section.figures[f"{key}/forward_backward_s"] = r["forward_backward_s"]
        for tag, m in (("forward", fwd), ("forward_backward", bwd)):
            if m is not None and "error" not in m:
                section.figures[f"{key}/{tag}_peak_rss_bytes"] = m["peak_rss_bytes"]
    section.table("Time and working memory against length (no mask)",
                  ["path", "T", "fwd ms", "fwd+bwd ms", "fwd MiB", "fwd+bwd MiB"], rows)


def _fit(points: list[tuple[int, float]]) -> float | None:
    """Exponent fitted on the lengths >= 1/8 of the longest with a positive value (None if < 2 points)."""
    if not points:
        return None
    top = max(t for t, _ in points)
    use = [(t, y) for t, y in points if t >= top / 8 and y > 0]
    return fit_exponent([t for t, _ in use], [y for _, y in use]) if len({t for t, _ in use}) >= 2 else None


def _exponent_table(section: Section, names: list[str], timing: list[dict], memory: list[dict]) -> None:
    rows = []
    for name in names:
        cells: list = [name]
        for key in ("forward_s", "forward_backward_s"):
            cells.append(_fit([(r["length"], r[key]) for r in timing if r["path"] == name]))
        for backward in (False, True):
            cells.append(_fit([(m["length"], m["working_bytes"]) for m in memory if m["path"] == name
                               and m["mask"] == "none" and m["backward"] == backward and "error" not in m]))
        for label, value in zip(("time_fwd", "time_fwd_bwd", "memory_fwd", "memory_fwd_bwd"), cells[1:], strict=True):
            if value is not None:
                section.figures[f"kinds/{name}/exponent_{label}"] = value
        rows.append(cells)
    section.table("Fitted exponents: time ~ T^a, memory ~ T^b (lengths >= 1/8 of the longest)",
                  ["path", "a fwd", "a fwd+bwd", "b fwd", "b fwd+bwd"], rows,
                  ["Expected: a near 2 for the dense paths (sdpa, attnkit, naive), near 1 for the kinds; b near 1 "
                   "for every path that never builds the T x T matrix, near 2 for naive. '-': too few lengths "
                   "with a measurable (positive) working memory."])


def _goal_table(section: Section, names: list[str], length: int, memory: list[dict], masks: tuple[str, ...]) -> None:
    rows = []
    for name in names:
        for mask in masks:
            for backward in (False, True):
                m = _mem(memory, name, length, mask, backward)
                peak = _mib(m, "peak_rss_bytes")
                ok = "yes" if isinstance(peak, float) and peak < GiB / MiB else ("no" if isinstance(peak, float) else "-")
                reason = m.get("error", "") if m else ""
                rows.append([name, mask, "fwd+bwd" if backward else "fwd", peak, _mib(m), ok, reason])
    held = [m["peak_rss_bytes"] - m["working_bytes"] for m in memory if "error" not in m]
    base = f", {min(held) / MiB:.0f} MiB here" if held else ""
    section.table(f"Peak resident memory at T = {length}: goal < 1 GiB (1024 MiB) for the whole process",
                  ["path", "mask", "pass", "peak RSS MiB", "working MiB", "< 1 GiB", "note"], rows,
                  [f"Peak RSS counts the whole child process (Python and torch's libraries{base})."])


def _speedup_table(section: Section, paths: dict, timing: list[dict], lengths: list[int]) -> None:
    by = {(r["path"], r["length"]): r for r in timing}
    rows = []
    for name in (n for n in paths if n not in DENSE):
        length = max(t for t in lengths if (name, t) in by and ("sdpa", t) in by)
        predicted = predicted_speedup(name, length)
        for key, label in (("forward_s", "fwd"), ("forward_backward_s", "fwd+bwd")):
            measured = by["sdpa", length][key] / by[name, length][key]
            section.figures[f"kinds/{name}/speedup_vs_sdpa_{label}"] = measured
            met = "-" if predicted is None else ("yes" if measured >= predicted / 2 else "no")
            rows.append([name, length, label, measured, predicted, None if predicted is None else measured / predicted, met])
    if rows:
        section.table("Speed-up over SDPA at the longest length, against the cost formula's prediction",
                      ["kind", "T", "pass", "measured", "predicted", "measured / predicted", "goal: >= 1/2 of predicted"],
                      rows, ["Predicted: sliding window T / (2w + 1), linear T / Dv; none for block_sparse and "
                             "performer (their cost depends on block and feature settings)."])
    elif any(k in KINDS for k in paths) is False:
        section.notes.append("No attention kind could run: the speed-up table is empty.")
