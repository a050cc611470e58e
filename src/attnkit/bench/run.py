"""``attnkit bench``: every suite in one process, the machine's limit first, one report out.

Order: the machine (CPU name, vector flags, float32 matmul GFLOP/s measured here), then the suites asked
for (default: functional, layers, models, kinds; ``compile`` with ``--compile``), then the share of the
matmul limit that attention reaches. The report is printed as Markdown and, with ``out``, written as
``bench.json`` (every table, figure and raw measurement), ``bench.md`` and the scaling plots
(``scaling_time.png``, ``scaling_memory.png``). A suite that fails is reported as failed with its one-line
cause and the others still run.

Example:
    >>> sorted(SUITES)
    ['compile', 'functional', 'kinds', 'layers', 'models']
"""

from __future__ import annotations

import importlib
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from attnkit.bench.measure import one_line
from attnkit.bench.report import Section
from attnkit.machine import cpu_description, load_average, matmul_gflops
from attnkit.storage import atomic_write_text, updating
from attnkit.timing import timed

#: suite name -> (module with ``run(quick) -> Section``, what it measures)
SUITES = {
    "functional": ("attnkit.bench.functional", "attention() vs torch SDPA vs naive, masks, fwd and fwd+bwd"),
    "layers": ("attnkit.bench.layers", "MultiHeadAttention vs torch.nn.MultiheadAttention vs Keras 3"),
    "models": ("attnkit.bench.models", "GPT / BERT vs transformers; bfloat16 autocast"),
    "kinds": ("attnkit.bench.kinds", "attention kinds and the 128..32,768-token scaling run"),
    "compile": ("attnkit.bench.compiled", "torch.compile's compile time and speed-up"),
}
DEFAULT_SUITES = ("functional", "layers", "models", "kinds")


def machine_section(quick: bool) -> Section:
    """The machine's limit: CPU, vector flags, threads, torch, load, and float32 matmul GFLOP/s."""
    section = Section("machine", "Machine")
    size = 512 if quick else 2048
    gflops = matmul_gflops(size, min_seconds=0.2 if quick else 1.0, repeat=2 if quick else 3)
    section.figures["machine/matmul_gflops"] = gflops
    section.raw = {"cpu": cpu_description(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                   "python": platform.python_version(), "load_average_start": load_average(),
                   "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: "n/a")()}
    section.table("The machine's limit", ["what", "value"], [
        ["CPU", cpu_description()], ["torch", f"{torch.__version__} (kernels: {section.raw['cpu_capability']})"],
        ["torch threads", torch.get_num_threads()], ["load average at the start (1, 5, 15 min)", load_average()],
        [f"float32 matmul {size} x {size}, GFLOP/s (best run)", gflops]])
    return section


def limit_share(machine: Section, sections: dict[str, Section]) -> None:
    """Add the share of the matmul limit that attention forward reaches (``4 T^2 Dh`` flops per head) to
    ``machine``, from the kinds suite's longest dense timing."""
    kinds = sections.get("kinds")
    gflops = machine.figures["machine/matmul_gflops"]
    if kinds is None or not kinds.raw.get("timing"):
        machine.notes.append("Attention's share of the matmul limit needs the kinds suite (not run).")
        return
    rows = []
    for path in ("sdpa", "attnkit"):
        timed = [r for r in kinds.raw["timing"] if r["path"] == path]
        if not timed:
            continue
        r = max(timed, key=lambda r: r["length"])
        reached = 4 * r["length"] ** 2 * 64 / r["forward_s"] / 1e9
        machine.figures[f"machine/{path}_share_of_limit"] = reached / gflops
        rows.append([path, r["length"], reached, reached / gflops])
    machine.table("Attention forward against the matmul limit (one head, width 64)",
                  ["path", "T", "GFLOP/s (4 T^2 Dh flops)", "share of the matmul limit"], rows,
                  ["The softmax and masking are not counted as flops; a share near 1 means attention runs at "
                   "matmul speed."])


def run_bench(suites: list[str], *, quick: bool = False, out: Path | None = None,
              echo: Callable[[str], None] = print) -> dict:
    """Run the machine section and ``suites``; print each section; write the files into ``out``.

    Args:
        suites: names of :data:`SUITES`, in order.
        quick: short runs of every suite (the smoke test's form).
        out: directory for ``bench.json``, ``bench.md`` and the plots (created), or None.
        echo: where progress and sections are printed.

    Returns:
        The report: ``{"machine": ..., "suites": {name: section dict}, "failed": {name: reason}, "seconds": ...}``.
    """
    start = time.time()
    machine = machine_section(quick)
    echo(machine.markdown())
    sections: dict[str, Section] = {}
    failed: dict[str, str] = {}
    for name in suites:
        echo(f"\n[attnkit bench] running {name}: {SUITES[name][1]} ...")
        cpu = time.process_time()
        try:
            sections[name], seconds = timed(lambda name=name: importlib.import_module(SUITES[name][0]).run(quick=quick))
            sections[name].raw["seconds"] = seconds
            sections[name].raw["cpu_seconds_this_process"] = time.process_time() - cpu
        except Exception as exc:  # noqa: BLE001 -- one failing suite must not lose the others
            failed[name] = one_line(exc)
            echo(f"[attnkit bench] {name} failed: {failed[name]}")
            continue
        echo(sections[name].markdown())
        echo(f"\n[attnkit bench] {name}: {sections[name].raw['seconds']:.0f} s")
        if out is not None:  # keep what is done so far: a long run interrupted later loses nothing
            with updating():
                write_report(_report(machine, sections, failed, quick, start), [machine, *sections.values()], out)
    limit_share(machine, sections)
    report = _report(machine, sections, failed, quick, start)
    if out is not None:
        write_report(report, [machine, *sections.values()], out)
        echo(f"\n[attnkit bench] wrote {out / 'bench.json'}, {out / 'bench.md'} and the plots")
    return report


def _report(machine: Section, sections: dict[str, Section], failed: dict[str, str], quick: bool,
            start: float) -> dict:
    machine.raw["load_average_end"] = load_average()
    return {"machine": machine.as_dict(), "suites": {n: s.as_dict() for n, s in sections.items()},
            "failed": failed, "quick": quick, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(start)),
            "seconds": time.time() - start}


def write_report(report: dict, sections: list[Section], out: Path) -> list[Path]:
    """Write ``bench.json``, ``bench.md`` and (when the kinds suite ran) the scaling plots into ``out``."""
    from attnkit.bench.plots import scaling_plots  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "bench.json", json.dumps(report, indent=1, default=_jsonable))
    md = ["# attnkit bench" + (" --quick" if report["quick"] else ""), "", f"Started {report['started']}.", ""]
    md += [s.markdown() + "\n" for s in sections]
    md += [f"- failed: {n} ({why})" for n, why in report["failed"].items()]
    md.append(f"\nLoad average at the end: {report['machine']['raw']['load_average_end']}; "
              f"{report['seconds']:.0f} s in all.")
    atomic_write_text(out / "bench.md", "\n".join(md) + "\n")
    files = [out / "bench.json", out / "bench.md"]
    kinds = report["suites"].get("kinds")
    if kinds and kinds["raw"].get("timing"):
        files += scaling_plots(kinds["raw"]["timing"], kinds["raw"]["memory"], out)
    return files


def _jsonable(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)
