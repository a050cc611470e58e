"""Benchmark: the encoder-decoder Transformer vs the RNN encoder-decoders on ``dates`` and ``numbers``.

Every model gets the same budget: the same training pairs (20 000 by default), the same batch size, the
same number of optimiser steps (1000; the machine is shared, so steps are a fairer budget than seconds;
the training time is reported, timed by ``attnkit.timing.timed``, and a 900 s cap stops a run that
would take far longer), and the best validation checkpoint (greedy exact match on 500 pairs) is kept.
Each model uses the learning recipe that suits it: the RNNs the ``attnkit demo`` recipe (AdamW, warmup +
cosine), the Transformer the paper's (Adam beta_2 0.98, the noam warmup schedule, label smoothing 0.1,
dropout 0.1). The runs happen one after the other in one process; their training seconds are indicative only on a shared machine.
Scores are on the held-out test split (whose dates never appear in training) with greedy decoding.

Models:
    transformer   2 + 2 layers, width 64, 4 heads, FFN 256, post-LN, sinusoidal positions
    bahdanau      bidirectional GRU encoder (2 x 32), GRU decoder 64, additive attention
    none          the same RNN with a fixed context (Cho et al. 2014): no attention

Usage:
    python benchmarks/compare_seq2seq.py                        # both tasks (~10-25 minutes, by machine load)
    python benchmarks/compare_seq2seq.py --tasks dates --steps 300 --models transformer
Writes a Markdown table to stdout and, with ``--json PATH``, every figure to a JSON file.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from attnkit.recipes.seq2seq import (
    RunSpec,
    build_model,
    build_tokenizers,
    build_transformer,
    load_split,
    predict,
    score,
    train_model,
)
from attnkit.timing import timed
from attnkit.training import TrainConfig

MODELS = ("transformer", "bahdanau", "none")


def make_model(name: str, spec: RunSpec, train: list[tuple[str, str]], seed: int) -> tuple[Any, dict[str, Any]]:
    """A fresh model and its optimiser recipe (TrainConfig keyword arguments)."""
    torch.manual_seed(seed)
    if name == "transformer":
        model = build_transformer(spec, train, d_model=64, num_heads=4, encoder_layers=2, decoder_layers=2,
                                  ff_dim=256, dropout=0.1, label_smoothing=0.1)
        return model, dict(lr=1.0, schedule="noam", warmup_steps=100, betas=(0.9, 0.98))
    src_tok, tgt_tok = build_tokenizers(spec, train)
    model = build_model(src_tok, tgt_tok, train, attention=name, embed_dim=32, hidden_dim=64, attention_dim=64)
    return model, dict(lr=5e-3, schedule="cosine", warmup_steps=50)


def run(task: str, name: str, args: argparse.Namespace) -> dict[str, Any]:
    spec = RunSpec(data=task, seed=args.seed)
    train = load_split(spec, "train", args.train_size)
    valid = load_split(spec, "validation", args.valid_size)
    test = load_split(spec, "test", args.test_size)
    model, recipe = make_model(name, spec, train, args.seed)
    config = TrainConfig(steps=args.steps, eval_every=args.eval_every, metric="exact_match", mode="max",
                         seed=args.seed, progress=False, time_budget=args.budget, device="cpu", **recipe)
    result, train_time = timed(lambda: train_model(model, train, valid, config, args.batch_size, args.seed))
    preds, decode_time = timed(lambda: predict(model, [s for s, _ in test]))
    scores = score(model, test, preds)
    return {"task": task, "model": name, "params": model.num_parameters(), "steps": result.steps,
            "best_step": result.best_step, "train_s": round(train_time, 1), "decode_s": round(decode_time, 2),
            "exact_match": scores["exact_match"], "token_accuracy": scores["token_accuracy"],
            "valid_exact_match": result.best_metric, "test_pairs": len(test)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["dates", "numbers"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--budget", type=float, default=900.0, help="most training seconds per model (a safety cap)")
    parser.add_argument("--steps", type=int, default=1000, help="optimiser steps per model")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=20_000)
    parser.add_argument("--valid-size", type=int, default=500)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for task in args.tasks:
        for name in args.models:
            row = run(task, name, args)
            rows.append(row)
            print(f"# {task:8s} {name:12s} exact match {row['exact_match']:.4f} ({row['steps']} steps, "
                  f"{row['train_s']} s)", flush=True)
    print(f"\nEqual budgets: {args.steps} steps (at most {args.budget:.0f} s of training), batch "
          f"{args.batch_size}, {args.train_size} training pairs; test split, greedy decoding.\n")
    print("| task | model | parameters | steps | train s | test exact match | token accuracy | decode s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['task']} | {r['model']} | {r['params']:,} | {r['steps']} | {r['train_s']} | "
              f"{r['exact_match']:.4f} | {r['token_accuracy']:.4f} | {r['decode_s']} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
