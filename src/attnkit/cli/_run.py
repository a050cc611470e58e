"""The CLI's run handling, shared by every training command: one place for the run directory's life.

A training run writes into ``--out DIR``::

    DIR/run.json            how the data was made (the recipe's spec dataclass), read by --resume and evaluate
    DIR/model/              the best model so far
    DIR/checkpoint/         everything --resume needs
    DIR/train_log.jsonl     one JSON record per log / evaluation

Order of a run (``run_training``): check the directory (``check_run_dir``), build the ``TrainConfig`` from
the common options (``train_config``), take the saved spec on ``--resume`` (``resume_spec``), let the recipe
check the inputs and build the model (nothing written yet), print its summary, write ``run.json``
(``write_spec``), train, print the closing line (``closing_line``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import torch
from rich.console import Console
from rich.markup import escape

from attnkit.errors import CheckpointError, InputError
from attnkit.storage import write_json
from attnkit.training import TrainConfig, TrainResult
from attnkit.training.recipes.common import PreparedRun

RUN_FILE = "run.json"
console = Console(stderr=True)
"""Progress and summaries go to stderr; a command's answer (translations, tables) to stdout."""

S = TypeVar("S")


def say(message: str, target: Console | None = None) -> None:
    """Print a recipe's plain line; a leading ``warning:`` / ``note:`` is shown in yellow."""
    head, sep, rest = message.partition(":")
    c = target or console
    if sep and head in ("warning", "note"):
        c.print(f"[yellow]{head}:[/]{escape(rest)}", soft_wrap=True, highlight=False)
    else:
        c.print(escape(message), soft_wrap=True)


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads`` for ``--threads`` (None: torch's choice)."""
    if threads is None:
        return
    if threads < 1:
        raise InputError(f"--threads must be >= 1. Received: {threads}")
    torch.set_num_threads(threads)


def check_run_dir(out: Path, resume: bool) -> Path:
    """``out/checkpoint`` once ``out`` fits: with ``resume`` it must hold a run, without it it must not."""
    ckpt = out / "checkpoint"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file. Expected a directory")
    if resume and not ckpt.is_dir():
        raise InputError(f"--resume: {str(out)!r} has no checkpoint/ to resume from")
    if not resume and ckpt.exists():
        raise InputError(f"{str(out)!r} already holds a run; pass --resume to continue it or choose another --out")
    return ckpt


def train_config(out: Path, *, steps: int, lr: float, schedule: str, warmup: int, eval_every: int,
                 patience: int | None, seed: int, quiet: bool, device: str, time_budget: float | None,
                 resume: bool) -> TrainConfig:
    """The ``TrainConfig`` of the common options (``metric``/``mode`` are the recipe's to set)."""
    if steps < 1:
        raise InputError(f"--steps must be >= 1. Received: {steps}")
    if lr <= 0:
        raise InputError(f"--lr must be > 0. Received: {lr}")
    if warmup < 0:
        raise InputError(f"--warmup must be >= 0. Received: {warmup}")
    return TrainConfig(steps=steps, lr=lr, schedule=schedule, warmup_steps=warmup, eval_every=eval_every,
                       patience=patience, seed=seed, out_dir=str(out), progress=not quiet, device=device,
                       time_budget=time_budget, resume=resume)


def read_spec(cls: type[S], out: Path) -> S | None:
    """The spec saved in ``out/run.json``, or None."""
    return cls.read(out / RUN_FILE)  # type: ignore[attr-defined]


def resume_spec(out: Path, resume: bool, fresh: S, same: str, *, refresh: tuple[str, ...] = (),
                required: bool = False) -> S:
    """``fresh`` for a new run; with ``resume`` the run's saved spec.

    Args:
        out: the run directory.
        resume: ``--resume`` was given.
        fresh: the spec the options describe.
        same: the field that must agree between the saved and the fresh spec (the data, or the model).
        refresh: fields taken from ``fresh`` anyway (e.g. a text file that may have moved).
        required: a missing ``run.json`` is an error (else the fresh spec's ``same`` and ``seed`` are kept).
    """
    if not resume:
        return fresh
    spec = read_spec(type(fresh), out)
    if spec is None:
        if required:
            raise InputError(f"--resume: {str(out)!r} has no {RUN_FILE}")
        spec = type(fresh)(**{same: getattr(fresh, same), "seed": fresh.seed})
    if getattr(spec, same) != getattr(fresh, same):
        raise InputError(f"--resume: the run in {str(out)!r} has {same} {getattr(spec, same)!r}, "
                         f"not {getattr(fresh, same)!r}")
    return dataclasses.replace(spec, **{k: getattr(fresh, k) for k in refresh})  # type: ignore[type-var]


def write_spec(out: Path, spec: Any) -> None:
    """Create the run directory ``out`` and save ``spec`` (a dataclass) in it as ``run.json``."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RUN_FILE, dataclasses.asdict(spec))


def closing_line(result: TrainResult, out: Path, best: str | None, hint: str = "") -> str:
    """``done: N steps in T s (reason); <best or final loss>; model in OUT/model<hint>``."""
    done = f"done: {result.steps} steps in {result.elapsed:.1f} s ({result.stop_reason}); "
    if best is not None:
        done += best
    elif result.final_loss is not None:
        done += f"final training loss {result.final_loss:.4f}; "
    return done + f"model in {out / 'model'}{hint}"


def run_training(out: Path, spec: Any, run: PreparedRun, hint: str = "", notes: tuple[str, ...] = ()) -> TrainResult:
    """Print the run's summary (and ``notes``), write ``run.json``, train, print the closing line."""
    for line in (run.summary, *notes):
        say(line)
    write_spec(out, spec)
    result = run.fit()
    best = run.best_line(result) if run.best_line is not None else None
    say(closing_line(result, out, best, hint))
    return result


def resolve_model_dir(path: str | Path) -> Path:
    """``DIR`` itself when it holds a model, else ``DIR/model`` (a training run's directory)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model directory {str(path)!r} does not exist")
    if (path / "config.json").is_file():
        return path
    if (path / "model" / "config.json").is_file():
        return path / "model"
    raise CheckpointError(f"{str(path)!r} holds no model: expected config.json in it or in {str(path / 'model')!r}")
