"""Benchmark: attnkit ``MultiHeadAttention`` vs ``torch.nn.MultiheadAttention`` vs Keras 3 (torch backend).

Self-attention, width 512, 8 heads, batch 8, lengths 128 / 512 / 2048; forward in inference
(``.eval()`` + ``torch.no_grad()``) and forward+backward (training mode, dropout 0). All peers
run in the same process and are interleaved round by round, so that a busy machine slows them
alike; the figures are the median (and best) wall-clock time per call, and each ratio is the median
over rounds of the ratio measured within one round (robust to the load of a shared machine).

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
Forward+backward with weights at length 2048 holds several (8, 8, 2048, 2048) float32 tensors (1 GiB
each); it is skipped unless ``--weights-backward-2048``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from attnkit.bench.machine import cpu_description  # noqa: E402
from attnkit.bench.peers import optional_import  # noqa: E402
from attnkit.bench.report import Section  # noqa: E402
from attnkit.layers.multi_head import MultiHeadAttention  # noqa: E402

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


def _time(peers: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """Round-robin timing: every round runs each peer once, starting from a different peer each round."""
    for fn in peers.values():  # warm-up
        fn()
    names = list(peers)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            peers[name]()
            times[name].append(time.perf_counter() - start)
    return times


def _ratio(times: dict[str, list[float]], a: str, b: str) -> str:
    """Median over rounds of the per-round ratio a/b (peers timed seconds apart share the machine's load)."""
    if a not in times or b not in times:
        return "-"
    return f"{statistics.median(x / y for x, y in zip(times[a], times[b], strict=True)):.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="sequence lengths (default 128 512 2048)")
    parser.add_argument("--quick", action="store_true", help="a short run: lengths 128 and 512, 3 rounds")
    parser.add_argument("--json", help="also write the table rows as JSON to this path")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default by length: 9/7/5)")
    parser.add_argument("--no-keras", action="store_true", help="leave Keras out")
    parser.add_argument("--weights-backward-2048", action="store_true", help="also time fwd+bwd with weights at 2048")
    args = parser.parse_args(argv)
    if args.lengths is None:
        args.lengths = [128, 512] if args.quick else [128, 512, 2048]
    if args.quick and args.repeats is None:
        args.repeats = 3
    keras_mod = None
    if not args.no_keras:
        keras_mod, reason = optional_import("keras")
        if keras_mod is None:
            print(f"keras: skipped ({reason})")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; width {WIDTH}, {HEADS} heads, batch {BATCH}")
    print(cpu_description())
    header = "| length | mode | " + " | ".join(["attnkit", "attnkit+w", "torch", "torch+w", "keras"]) + " | ak/torch | ak/keras | ak+w/torch+w | ak/ak+w |"
    rows = [header, "|" + "---|" * (header.count("|") - 1)]
    for length in args.lengths:
        repeats = args.repeats or {128: 9, 512: 7}.get(length, 5)
        for mode in ("inference", "fwd+bwd"):
            train = mode == "fwd+bwd"
            weights_backward = length < 2048 or args.weights_backward_2048
            peers = _peers(keras_mod, length, train, weights_backward)
            times = _time(peers, repeats)
            cells = []
            for name in ("attnkit", "attnkit+w", "torch", "torch+w", "keras"):
                if name in times:
                    cells.append(f"{statistics.median(times[name]) * 1e3:.1f} ({min(times[name]) * 1e3:.1f})")
                else:
                    cells.append("-")
            ratios = [
                _ratio(times, "attnkit", "torch"), _ratio(times, "attnkit", "keras"),
                _ratio(times, "attnkit+w", "torch+w"), _ratio(times, "attnkit", "attnkit+w"),
            ]  # fmt: skip
            row = f"| {length} | {mode} | " + " | ".join(cells + ratios) + " |"
            rows.append(row)
            print(row, flush=True)
            del peers, times
    print("\nms per call, median (best) over the timed rounds; ratios: median of per-round ratios (< 1 = attnkit faster).\n")
    print("\n".join(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"rows": rows}, fh, indent=2)
    return 0


def run(quick: bool = False) -> Section:
    """The ``layers`` suite for ``attnkit bench``: ``MultiHeadAttention`` vs ``torch.nn.MultiheadAttention``
    vs Keras 3 (skipped, with a line saying so, when Keras is not installed). Full: width 512, 8 heads,
    batch 8, T = 128 / 512 / 2048; quick: width 64, 4 heads, batch 2, T = 32 and 64, 3 rounds.
    """
    section = Section("layers", "Layers: MultiHeadAttention vs torch.nn.MultiheadAttention vs Keras 3")
    keras_mod, reason = optional_import("keras")
    if keras_mod is None:
        section.skip("keras", reason or "")
    size = dict(width=64, heads=4, batch=2) if quick else dict(width=WIDTH, heads=HEADS, batch=BATCH)
    names = ["attnkit", "attnkit+w", "torch", "torch+w"] + (["keras"] if keras_mod is not None else [])
    rows = []
    for length in ([32, 64] if quick else [128, 512, 2048]):
        for mode in ("inference", "fwd+bwd"):
            peers = _peers(keras_mod, length, mode == "fwd+bwd", length < 2048, **size)
            times = _time(peers, 3 if quick else {128: 7, 512: 5}.get(length, 2))
            cells = [statistics.median(times[n]) * 1e3 if n in times else None for n in names]
            ratios = [_ratio(times, "attnkit", "torch"), _ratio(times, "attnkit+w", "torch+w")]
            ratios += [_ratio(times, "attnkit", "keras")] if keras_mod is not None else []
            rows.append([length, mode, *cells, *ratios])
            for n in times:
                section.figures[f"layers/T={length}/{mode}/{n}_ms"] = statistics.median(times[n]) * 1e3
    ratio_names = ["ak/torch", "ak+w/torch+w"] + (["ak/keras"] if keras_mod is not None else [])
    section.table(f"Self-attention, width {size['width']}, {size['heads']} heads, batch {size['batch']}: ms per call",
                  ["T", "mode", *names, *ratio_names], rows,
                  ["ms: median over interleaved rounds; ratios: median of per-round ratios (< 1 = attnkit faster); "
                   "+w = per-head weights returned; '-': not run (fwd+bwd with weights at 2048 needs 1 GiB tensors)."])
    return section


if __name__ == "__main__":
    sys.exit(main())
