"""Benchmark: attnkit ``MultiHeadAttention`` vs ``torch.nn.MultiheadAttention`` vs Keras 3 (torch backend).

Self-attention, width 512, 8 heads, batch 8, lengths 128 / 512 / 2048; forward in inference
(``.eval()`` + ``torch.no_grad()``) and forward+backward (training mode, dropout 0). All peers
run in the same process and are interleaved round by round, so that a busy machine slows them
alike (:mod:`attnkit.timing`'s timer); the figures are the median wall-clock time per call, and
each ratio is the median over rounds of the ratio measured within one round (robust to the load of a
shared machine).

Peers:
    attnkit        MultiHeadAttention(...)(x, x)                              (fused SDPA path)
    attnkit+w      ... return_attention_scores=True                            (per-head weights)
    torch          nn.MultiheadAttention(..., batch_first=True)(x, x, x, need_weights=False)
    torch+w        ... need_weights=True, average_attn_weights=False           (per-head weights)
    keras          keras.layers.MultiHeadAttention(8, 64)(x, x)

Goals (issue 3): attnkit fwd+bwd <= 1.0x torch and <= 1.0x keras at every length; inference at
2048 <= 0.7x torch; attnkit+w <= 1.0x torch+w; attnkit <= attnkit+w.

Usage:
    python benchmarks/bench_layers.py                 # all lengths (a few minutes)
    python benchmarks/bench_layers.py --lengths 128 --repeats 5 --no-keras
    attnkit bench layers                              # the same suite, in the bench report
Forward+backward with weights at length 2048 holds several (8, 8, 2048, 2048) float32 tensors (1 GiB
each); it is skipped unless ``--weights-backward-2048``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from attnkit.bench.peers import optional_import  # noqa: E402
from attnkit.bench.report import Section  # noqa: E402
from attnkit.layers.multi_head import MultiHeadAttention  # noqa: E402
from attnkit.machine import cpu_description  # noqa: E402
from attnkit.storage import atomic_write_text  # noqa: E402
from attnkit.timing import interleaved_samples, paired_ratio  # noqa: E402

WIDTH, HEADS, BATCH = 512, 8, 8


def _peers(keras_mod, length: int, train: bool, weights_backward: bool, width: int = WIDTH, heads: int = HEADS,
           batch: int = BATCH) -> dict[str, Callable[[], None]]:
    """One zero-argument callable per peer, doing one forward (and backward when ``train``)."""
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(width, heads, batch_first=True)
    ours = MultiHeadAttention.from_torch(ref)
    ref.train(train)
    ours.train(train)
    x = torch.randn(batch, length, width, requires_grad=train)
    peers: dict[str, Callable[[], None]] = {}

    def run(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        if train:
            return lambda: fn().sum().backward()

        def infer() -> None:
            with torch.no_grad():
                fn()

        return infer

    peers["attnkit"] = run(lambda: ours(x, x))
    peers["torch"] = run(lambda: ref(x, x, x, need_weights=False)[0])
    if not train or weights_backward:
        peers["attnkit+w"] = run(lambda: ours(x, x, return_attention_scores=True)[0])
        peers["torch+w"] = run(lambda: ref(x, x, x, need_weights=True, average_attn_weights=False)[0])
    if keras_mod is not None:
        layer = keras_mod.layers.MultiHeadAttention(heads, width // heads)
        layer(x[:1, :4].detach(), x[:1, :4].detach())  # build
        peers["keras"] = run(lambda: layer(x, x, training=train))
    return peers


def _ratio(times: dict[str, list[float]], a: str, b: str) -> str:
    """Median over rounds of the per-round ratio a/b, as ``"0.93x"`` ("-" when a peer did not run)."""
    return f"{paired_ratio(times, a, b):.2f}x" if a in times and b in times else "-"


def measure_layers(lengths: list[int], *, width: int = WIDTH, heads: int = HEADS, batch: int = BATCH,
                   repeats: int | None = None, keras: bool = True, weights_backward_2048: bool = False) -> Section:
    """Time every peer at every length, inference and forward+backward; Keras is skipped (with a line
    saying so) when not installed or not wanted.

    Args:
        lengths: sequence lengths.
        width, heads, batch: the layer's width and heads, and the batch size.
        repeats: interleaved rounds per case (default by length: 7 at 128, 5 at 512, else 2).
        keras: include Keras 3 when it is installed.
        weights_backward_2048: also time fwd+bwd with weights at lengths >= 2048 (1 GiB tensors each).

    Returns:
        The ``layers`` :class:`attnkit.bench.report.Section`.
    """
    section = Section("layers", "Layers: MultiHeadAttention vs torch.nn.MultiheadAttention vs Keras 3")
    keras_mod, reason = optional_import("keras") if keras else (None, "left out (--no-keras)")
    if keras_mod is None:
        section.skip("keras", reason or "")
    names = ["attnkit", "attnkit+w", "torch", "torch+w"] + (["keras"] if keras_mod is not None else [])
    pairs = [("attnkit", "torch"), ("attnkit+w", "torch+w")] + ([("attnkit", "keras")] if keras_mod is not None else [])
    rows = []
    for length in lengths:
        for mode in ("inference", "fwd+bwd"):
            peers = _peers(keras_mod, length, mode == "fwd+bwd", length < 2048 or weights_backward_2048,
                           width, heads, batch)
            times = interleaved_samples(peers, repeats or {128: 7, 512: 5}.get(length, 2))
            medians = {n: statistics.median(t) * 1e3 for n, t in times.items()}
            rows.append([length, mode, *(medians.get(n) for n in names), *(_ratio(times, a, b) for a, b in pairs)])
            section.figures.update({f"layers/T={length}/{mode}/{n}_ms": ms for n, ms in medians.items()})
    ratio_names = ["ak/torch", "ak+w/torch+w"] + (["ak/keras"] if keras_mod is not None else [])
    section.table(f"Self-attention, width {width}, {heads} heads, batch {batch}: ms per call",
                  ["T", "mode", *names, *ratio_names], rows,
                  ["ms: median over interleaved rounds; ratios: median of per-round ratios (< 1 = attnkit faster); "
                   "+w = per-head weights returned; '-': not run (fwd+bwd with weights at 2048 needs 1 GiB tensors)."])
    return section


def run(quick: bool = False) -> Section:
    """The ``layers`` suite for ``attnkit bench``: ``MultiHeadAttention`` vs ``torch.nn.MultiheadAttention``
    vs Keras 3 (skipped, with a line saying so, when Keras is not installed). Full: width 512, 8 heads,
    batch 8, T = 128 / 512 / 2048; quick: width 64, 4 heads, batch 2, T = 32 and 64, 3 rounds.
    """
    if quick:
        return measure_layers([32, 64], width=64, heads=4, batch=2, repeats=3)
    return measure_layers([128, 512, 2048])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="sequence lengths (default 128 512 2048)")
    parser.add_argument("--quick", action="store_true", help="a short run: lengths 128 and 512, 3 rounds")
    parser.add_argument("--json", help="also write the section (tables and figures) as JSON to this path")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default by length: 7/5/2)")
    parser.add_argument("--no-keras", action="store_true", help="leave Keras out")
    parser.add_argument("--weights-backward-2048", action="store_true", help="also time fwd+bwd with weights at 2048")
    args = parser.parse_args(argv)
    lengths = args.lengths or ([128, 512] if args.quick else [128, 512, 2048])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; width {WIDTH}, {HEADS} heads, batch {BATCH}")
    print(cpu_description(), flush=True)
    section = measure_layers(lengths, repeats=args.repeats or (3 if args.quick else None), keras=not args.no_keras,
                             weights_backward_2048=args.weights_backward_2048)
    print(section.markdown())
    if args.json:
        atomic_write_text(args.json, json.dumps(section.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
