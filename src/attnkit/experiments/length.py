"""The ``attnkit experiment length`` experiment: score against input length, with and without attention.

Bahdanau et al. 2015 (Fig. 2) show that an encoder-decoder that squeezes the source into one fixed
vector degrades as sentences grow, while the attention model holds its score. For one seed,
``length_seed`` trains ``attention="none"`` and ``attention="bahdanau"`` with the same sizes, data, steps
and schedule and scores both on the same held-out split, overall and per input-length bucket;
``length_experiment`` hands it to the experiment harness (``attnkit.experiments.harness``), which runs the
seeds and writes ``length.json``, ``length.md`` and ``length.png`` (mean ± sd over the seeds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from attnkit.data import BUILTIN_TASKS
from attnkit.errors import InputError
from attnkit.experiments.harness import Experiment, Panel, Rows, Table
from attnkit.metrics import by_length_bucket, exact_match, token_accuracy
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
    is_quick: bool = False

    def quick(self) -> LengthSettings:
        """The same settings shrunk to a run of seconds (no real gap)."""
        return LengthSettings(**{**asdict(self), "steps": 12, "batch_size": 32, "hidden_dim": 16, "embed_dim": 8,
                                 "train_size": 500, "test_size": 60, "valid_size": 20,
                                 "max_len": min(self.max_len, 20), "is_quick": True})

    def check(self) -> None:
        """``InputError`` naming the flag for a value out of range."""
        if self.task not in BUILTIN_TASKS or self.task in ("dates", "phrases"):
            raise InputError(f"--task must be one of reverse, copy, sort, numbers. Received: {self.task!r}")
        for name, value in (("--steps", self.steps), ("--batch-size", self.batch_size),
                            ("--bucket-width", self.bucket_width), ("--min-len", self.min_len)):
            if value < 1:
                raise InputError(f"{name} must be >= 1. Received: {value}")
        if self.max_len < self.min_len:
            raise InputError(f"--max-len must be >= --min-len. Received: --min-len {self.min_len}, "
                             f"--max-len {self.max_len}")


def bucket_rows(sources: list[str], refs: list[str], preds: dict[str, list[str]], width: int,
                max_len: int) -> Rows:
    """Rows ``{"model", "bucket", "centre", "pairs", "exact_match", "token_accuracy"}`` per model and
    input-length bucket (buckets of ``width`` characters up to ``max_len``, the same for every seed).

    Example:
        >>> rows = bucket_rows(["ab", "abcd"], ["ba", "dcba"], {"none": ["ba", "xxxx"]}, width=2, max_len=4)
        >>> [(r["bucket"], r["centre"], r["exact_match"]) for r in rows]
        [('0-2', 1.0, 1.0), ('3-4', 3.5, 0.0)]
    """
    edges = list(range(width, max_len + width, width))
    rows = []
    for name, p in preds.items():
        scores = {m: by_length_bucket(sources, p, refs, edges, metric=m, length="chars")
                  for m in ("exact_match", "token_accuracy")}
        for em, acc in zip(scores["exact_match"], scores["token_accuracy"], strict=True):
            rows.append({"model": name, "bucket": em.label, "centre": (em.low + (em.high or em.low + width)) / 2,
                         "pairs": em.count, "exact_match": em.score, "token_accuracy": acc.score})
    return rows


def length_seed(s: LengthSettings, seed: int, device: str = "auto", log: Log = no_log,
                section: Log = no_log) -> tuple[dict[str, Seq2Seq], dict[str, Rows]]:
    """Train both models with equal budgets from ``seed`` and score them overall and per length bucket.

    Args:
        s: the settings (checked by the caller: ``s.check()``).
        seed: data, initialisation and batches.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        log: progress lines; section: one title per model.

    Returns:
        ``(models by attention, {"overall": rows, "buckets": rows})``.
    """
    spec = RunSpec(data=s.task, seed=seed, min_len=s.min_len, max_len=s.max_len)
    train, valid = load_split(spec, "train", s.train_size), load_split(spec, "validation", s.valid_size)
    test = load_split(spec, "test", s.test_size)
    sources, refs = [p[0] for p in test], [p[1] for p in test]
    log(f"{s.task}: inputs of {s.min_len}-{s.max_len}, {len(train)} training pairs, {len(test)} test pairs; "
        f"{s.steps} steps per model")
    models, preds, overall = {}, {}, []
    for attention in MODELS:
        src_tok, tgt_tok = build_tokenizers(spec, train)
        model = build_model(src_tok, tgt_tok, train, attention=attention, embed_dim=s.embed_dim,
                            hidden_dim=s.hidden_dim, attention_dim=s.hidden_dim, seed=seed)
        section(f"seed {seed}, attention={attention}: {model.num_parameters():,} parameters")
        config = TrainConfig(steps=s.steps, lr=s.lr, schedule="cosine", warmup_steps=min(100, s.steps // 10),
                             min_lr_ratio=0.05, weight_decay=0.0, eval_every=max(1, s.steps // 5), seed=seed,
                             metric="exact_match", mode="max", out_dir=None, device=device, log_every=10)
        result = train_model(model, train, valid, config, s.batch_size, seed, bucket_size=8)  # lengths vary
        models[attention], preds[attention] = model, predict(model, sources)
        overall.append({"model": attention, "exact_match": exact_match(preds[attention], refs),
                        "token_accuracy": token_accuracy(preds[attention], refs),
                        "train_seconds": round(result.elapsed, 1)})
    return models, {"overall": overall, "buckets": bucket_rows(sources, refs, preds, s.bucket_width, s.max_len)}


TABLES = (
    Table("overall", "Held-out exact match and token accuracy", ("model",),
          ("exact_match", "token_accuracy", "train_seconds")),
    Table("buckets", "By input length (characters)", ("model", "bucket", "centre"),
          ("pairs", "exact_match", "token_accuracy")),
)
DISPLAY_NAMES = (("none", "no attention (one context vector)"), ("bahdanau", "Bahdanau attention"))
"""What the legend calls each model (the report's tables keep the short names)."""
PANELS = (
    Panel("buckets", "centre", "exact_match", ("model",), "input length (characters, bucket centre)",
          "exact match", ylim=(0.0, 1.02), names=DISPLAY_NAMES),
    Panel("buckets", "centre", "token_accuracy", ("model",), "input length (characters, bucket centre)",
          "token accuracy", ylim=(0.0, 1.02), names=DISPLAY_NAMES),
)


def length_experiment(s: LengthSettings, run: Callable[[int], dict[str, Rows]]) -> Experiment:
    """The harness's view of the experiment: its tables, panels and settings, and ``run`` (one seed)."""
    return Experiment("length", f"Score against input length: {s.task}, equal budgets, with and without "
                      "attention", TABLES, PANELS, run, settings=asdict(s))


__all__ = ["MODELS", "PANELS", "TABLES", "LengthSettings", "bucket_rows", "length_experiment", "length_seed"]
