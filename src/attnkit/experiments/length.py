"""The ``attnkit experiment length`` recipe: score against input length, with and without attention.

Bahdanau et al. 2015 (Fig. 2) show that an encoder-decoder that squeezes the source into one fixed
vector degrades as sentences grow, while the attention model holds its score. ``run_length_experiment``
trains ``attention="none"`` and ``attention="bahdanau"`` with the same sizes, data, steps and schedule and
scores both on the same held-out split per input-length bucket; the caller writes files and plots.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from attnkit.data import BUILTIN_TASKS
from attnkit.errors import InputError
from attnkit.models.seq2seq import Seq2Seq
from attnkit.recipes.common import Log, no_log
from attnkit.recipes.seq2seq import (
    RunSpec,
    build_model,
    build_tokenizers,
    load_split,
    predict,
    train_model,
)
from attnkit.training.metrics import by_length_bucket
from attnkit.training.trainer import TrainConfig

MODELS: tuple[str, ...] = ("none", "bahdanau")


@dataclass
class LengthSettings:
    """Sizes of the experiment (``quick()`` shrinks them to a smoke test).

    Example:
        >>> LengthSettings().quick().steps
        12
    """

    task: str = "reverse"  # built-in task with variable lengths: reverse, copy, sort or numbers
    min_len: int = 5  # shortest input (characters; digits for numbers)
    max_len: int = 60  # longest input (training and test)
    steps: int = 1500  # training steps of each model (the equal budget)
    batch_size: int = 128
    hidden_dim: int = 128  # decoder/annotation size of both models
    embed_dim: int = 32
    lr: float = 3e-3  # peak learning rate (warmup then cosine decay)
    train_size: int = 50_000
    test_size: int = 1_000
    valid_size: int = 200
    bucket_width: int = 10  # width of the input-length buckets
    seed: int = 0
    is_quick: bool = False

    def quick(self) -> LengthSettings:
        """The same settings shrunk to a run of seconds (no real gap)."""
        return LengthSettings(**{**asdict(self), "steps": 12, "batch_size": 32, "hidden_dim": 16, "embed_dim": 8,
                                 "train_size": 500, "test_size": 60, "valid_size": 20,
                                 "max_len": min(self.max_len, 20), "is_quick": True})

    def check(self) -> None:
        """``InputError`` naming the flag for a value out of range."""
        if self.task not in BUILTIN_TASKS or self.task == "dates":
            raise InputError(f"--task must be one of reverse, copy, sort, numbers. Received: {self.task!r}")
        for name, value in (("--steps", self.steps), ("--batch-size", self.batch_size),
                            ("--bucket-width", self.bucket_width), ("--min-len", self.min_len)):
            if value < 1:
                raise InputError(f"{name} must be >= 1. Received: {value}")
        if self.max_len < self.min_len:
            raise InputError(f"--max-len must be >= --min-len. Received: --min-len {self.min_len}, "
                             f"--max-len {self.max_len}")


@dataclass
class LengthResult:
    """The trained models, the per-bucket rows and the JSON document of the experiment."""

    models: dict[str, Seq2Seq]  # by attention kind
    rows: list[dict[str, Any]]  # length_table rows
    report: dict[str, Any]  # settings, overall exact match, buckets (length.json without total_seconds)


def length_table(sources: list[str], refs: list[str], preds: dict[str, list[str]], width: int) -> list[dict[str, Any]]:
    """Rows ``{"bucket", "low", "count", "<model>_exact_match", "<model>_token_accuracy"}`` per length bucket.

    Example:
        >>> rows = length_table(["ab", "abcd"], ["ba", "dcba"], {"none": ["ba", "xxxx"]}, width=2)
        >>> [(r["bucket"], r["none_exact_match"]) for r in rows]
        [('0-2', 1.0), ('3-4', 0.0)]
    """
    rows: dict[str, dict[str, Any]] = {}
    for name, p in preds.items():
        for metric in ("exact_match", "token_accuracy"):
            for b in by_length_bucket(sources, p, refs, width, metric=metric, length="chars"):
                row = rows.setdefault(b.label, {"bucket": b.label, "low": b.low, "count": b.count})
                row[f"{name}_{metric}"] = b.score
    return sorted(rows.values(), key=lambda r: r["low"])


def run_length_experiment(s: LengthSettings, device: str = "auto", log: Log = no_log,
                          section: Log = no_log) -> LengthResult:
    """Train both models with equal budgets and score them per input-length bucket.

    Args:
        s: the settings (checked here).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        log: progress lines; section: one title per model.

    Returns:
        A ``LengthResult``.
    """
    s.check()
    spec = RunSpec(data=s.task, seed=s.seed, min_len=s.min_len, max_len=s.max_len)
    train, valid = load_split(spec, "train", s.train_size), load_split(spec, "validation", s.valid_size)
    test = load_split(spec, "test", s.test_size)
    sources, refs = [p[0] for p in test], [p[1] for p in test]
    log(f"{s.task}: inputs of {s.min_len}-{s.max_len}, {len(train)} training pairs, {len(test)} test pairs; "
        f"{s.steps} steps per model")
    models, preds, seconds = {}, {}, {}
    for attention in MODELS:
        src_tok, tgt_tok = build_tokenizers(spec, train)
        model = build_model(src_tok, tgt_tok, train, attention=attention, embed_dim=s.embed_dim,
                            hidden_dim=s.hidden_dim, attention_dim=s.hidden_dim, seed=s.seed)
        section(f"attention={attention}: {model.num_parameters():,} parameters")
        config = TrainConfig(steps=s.steps, lr=s.lr, schedule="cosine", warmup_steps=min(100, s.steps // 10),
                             min_lr_ratio=0.05, weight_decay=0.0, eval_every=max(1, s.steps // 5), seed=s.seed,
                             metric="exact_match", mode="max", out_dir=None, device=device, log_every=10)
        result = train_model(model, train, valid, config, s.batch_size, s.seed, bucket_size=8)  # lengths vary
        models[attention], seconds[attention] = model, round(result.elapsed, 1)
        preds[attention] = predict(model, sources)
    rows = length_table(sources, refs, preds, s.bucket_width)
    settings = {"task": s.task, "min_len": s.min_len, "max_len": s.max_len, "steps": s.steps,
                "batch_size": s.batch_size, "hidden_dim": s.hidden_dim, "embed_dim": s.embed_dim, "lr": s.lr,
                "train_size": len(train), "test_size": len(test), "seed": s.seed, "train_seconds": seconds,
                "quick": s.is_quick}
    overall = {m: sum(p == r for p, r in zip(preds[m], refs, strict=True)) / len(refs) for m in MODELS}
    return LengthResult(models, rows, {"settings": settings, "exact_match": overall, "buckets": rows})


def length_markdown(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    """``length.md``: exact match and token accuracy of both models per input-length bucket."""
    head = " | ".join(f"{m} exact match | {m} token accuracy" for m in MODELS)
    lines = [f"# Score against input length: {settings['task']}, equal budgets", "",
             f"{settings['steps']} steps of batch {settings['batch_size']} each, hidden size "
             f"{settings['hidden_dim']}; test inputs of {settings['min_len']}-{settings['max_len']} characters.", "",
             f"| input length | pairs | {head} |", "|---|---:|" + "---:|" * (2 * len(MODELS))]
    for r in rows:
        cells = " | ".join(f"{r.get(f'{m}_exact_match', 0):.3f} | {r.get(f'{m}_token_accuracy', 0):.3f}"
                           for m in MODELS)
        lines.append(f"| {r['bucket']} | {r['count']} | {cells} |")
    return "\n".join(lines) + "\n"


__all__ = ["MODELS", "LengthResult", "LengthSettings", "length_markdown", "length_table", "run_length_experiment"]

