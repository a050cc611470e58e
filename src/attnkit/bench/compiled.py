"""The ``compile`` suite (``attnkit bench --compile``): what ``torch.compile`` gains on attnkit here.

For each case the model runs eagerly and through :func:`attnkit.training.compile.compile_model` (inductor,
strict, so a failure is caught and reported rather than hidden): the seconds the first compiled call took
(compilation), then the median time per call of each, interleaved, and the speed-up (the median of the
per-round ratios). A case whose
compilation fails is reported with the one-line cause, never as a speed-up.

Cases: ``MultiHeadAttention`` forward (inference), GPT training step (forward, loss, backward), and in the
full run BERT-sized forward (a randomly initialised 2-layer Bert). Quick: smaller sizes.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

from attnkit.bench.report import Section
from attnkit.layers import MultiHeadAttention
from attnkit.models.gpt import GPT, GPTConfig
from attnkit.timing import interleaved_samples, paired_ratio, timed
from attnkit.training.compile import CompileUnavailable, compile_model, compile_unavailable_reason


def _cases(quick: bool) -> dict[str, tuple[torch.nn.Module, Callable[[torch.nn.Module], object]]]:
    torch.manual_seed(0)
    width, length = (64, 64) if quick else (256, 256)
    mha = MultiHeadAttention(num_heads=4, key_dim=width // 4).eval()
    x = torch.randn(4, length, width)
    mha(x, x)  # build

    def mha_call(m: torch.nn.Module) -> object:
        with torch.no_grad():
            return m(x, x)

    gpt = GPT(GPTConfig(vocab_size=512, n_positions=length, n_embd=width, n_layer=2, n_head=4))
    ids = torch.randint(0, 512, (4, length), generator=torch.Generator().manual_seed(1))

    def gpt_step(m: torch.nn.Module) -> object:
        loss = m(ids, labels=ids).loss
        loss.backward()
        return loss

    return {f"MultiHeadAttention forward (4 x {length} x {width})": (mha, mha_call),
            f"GPT training step, 2 layers (4 x {length} x {width})": (gpt, gpt_step)}


def _measure(module: torch.nn.Module, call: Callable, repeats: int) -> dict:
    try:
        compiled = compile_model(module, strict=True)
        _, compile_s = timed(lambda: call(compiled))
    except CompileUnavailable as exc:
        return {"status": f"failed: {exc}"}
    times = interleaved_samples({"eager": lambda: call(module), "compiled": lambda: call(compiled)}, repeats)
    eager, comp = statistics.median(times["eager"]), statistics.median(times["compiled"])
    return {"status": "compiled", "compile_s": compile_s, "eager_ms": eager * 1e3, "compiled_ms": comp * 1e3,
            "speedup": paired_ratio(times, "eager", "compiled")}


def run(quick: bool = False) -> Section:
    """Measure ``torch.compile``'s compile time and speed-up on attnkit models (see the module docstring).

    Returns:
        A :class:`attnkit.bench.report.Section`; a failing compilation is a ``skipped`` line with its cause.
    """
    section = Section("compile", "torch.compile (inductor) on attnkit models")
    reason = compile_unavailable_reason("inductor")
    if reason is not None:
        section.skip("torch.compile", reason)
        return section
    rows = []
    for i, (label, (module, call)) in enumerate(_cases(quick).items()):
        r = _measure(module, call, 3 if quick else 7)
        if r["status"] != "compiled":
            section.skip(label, r["status"])
            rows.append([label, r["status"], None, None, None, None])
            continue
        rows.append([label, "compiled", r["compile_s"], r["eager_ms"], r["compiled_ms"], r["speedup"]])
        for key in ("compile_s", "eager_ms", "compiled_ms", "speedup"):
            section.figures[f"compile/case{i}/{key}"] = r[key]
    section.table("torch.compile: compilation time and speed-up (eager / compiled time)",
                  ["case", "status", "first call s (compiles)", "eager ms", "compiled ms", "speed-up"], rows,
                  ["Medians of interleaved calls after the first; speed-up: median of per-round ratios; the trainer's --compile / "
                   "TrainConfig(compile=True) uses the same attnkit.training.compile.compile_model."])
    return section
