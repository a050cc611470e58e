"""The CLI's run handling, shared by every training command: one place for the run directory's life.

A training run writes into ``--out DIR``::

    DIR/run.json            how the data was made (the recipe's spec dataclass), read by --resume and evaluate
    DIR/model/              the best model so far
    DIR/checkpoint/         everything --resume needs
    DIR/train_log.jsonl     one JSON record per log / evaluation

Order of a run (``run_training``): check the directory (``check_run_dir``: not a file, writable, empty
unless ``--overwrite``, a checkpoint to continue with ``--resume``, recovered first if a save was cut
between its renames), build the ``TrainConfig`` from the common options (``train_config``: every value
checked, the device too), take the saved spec on ``--resume`` (``resume_spec``) and refuse typed model
options that differ from the run's (``check_resume_model``), let the recipe check the inputs and build the
model (nothing written yet), print its summary, write ``run.json`` (``write_spec``), train, print the
closing line (``closing_line``). Under ``torchrun`` every rank runs this; rank 0 alone prints and writes.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, TypeVar

from rich.console import Console
from rich.markup import escape

from attnkit.cli._options import flag
from attnkit.errors import CheckpointError, InputError
from attnkit.recipes.common import PreparedRun
from attnkit.storage import (
    BOOKKEEPING,
    lock_directory,
    own_files,
    read_json,
    recover_directory,
    updating,
    write_json,
)
from attnkit.training import TrainConfig, TrainResult
from attnkit.training.checkpoint import has_checkpoint
from attnkit.training.runtime import is_main_process, main_only, resolve_device

RUN_FILE = "run.json"
console = Console(stderr=True)
"""Progress and summaries go to stderr; a command's answer (translations, tables) to stdout."""

S = TypeVar("S")


@main_only
def say(message: str, target: Console | None = None) -> None:
    """Print a recipe's plain line (rank 0 only under ``torchrun``); a leading ``warning:`` / ``note:`` is
    shown in yellow."""
    head, sep, rest = message.partition(":")
    c = target or console
    if sep and head in ("warning", "note"):
        c.print(f"[yellow]{head}:[/]{escape(rest)}", soft_wrap=True, highlight=False)
    else:
        c.print(escape(message), soft_wrap=True)


OverwriteOut = Annotated[bool, flag("--overwrite", help="Write into an --out that is not empty: replace this "
                                    "command's own files there (other files stay).")]
"""The ``--overwrite`` of every command with ``--out`` that does not train (``train`` has its own help)."""

RUN_NAMES = (RUN_FILE, "train_log.jsonl", "model", "checkpoint", "report.json")
"""What a training run writes in ``--out`` (``--overwrite`` replaces these and nothing else)."""


def check_out_dir(out: Path, own: tuple[str, ...], overwrite: bool, option: str = "--out") -> bool:
    """The one ``--out`` guard of every command: ``InputError`` (exit 2, nothing written) unless ``out`` fits.

    - ``out`` must not be a file, and must be writable (or creatable);
    - it must be new or empty, or hold only this command's own output: entries named by ``own`` (the
      command's file names, shell patterns such as ``alignment_*.png``) whose every file attnkit recorded
      as written there (``own_files``); a re-run then replaces that output;
    - anything else is refused unless ``overwrite``; then only the entries named by ``own`` are replaced,
      and an ``own`` directory that holds a file attnkit did not write there is refused rather than lost.

    ``out`` is locked here for the rest of the command (``lock_directory``), so a second run on it stops at
    once; a command that ends having written nothing leaves ``out`` as it found it (the lock file, and the
    directory if it was created for it, are removed). ``start_writing`` clears the command's own files
    just before its first write. Under ``torchrun`` only rank 0 checks and locks: it may already be
    writing while another rank starts.

    Returns:
        True when the command's earlier files in ``out`` are to be replaced.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> _ = (out / "summary.md").write_text("mine")
        >>> check_out_dir(out, ("summary.md",), overwrite=False)
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --out '...' is not empty (it holds summary.md). Expected a new or empty directory; pass --overwrite to replace this command's files in it (summary.md)
    """
    if out.exists() and not out.is_dir():
        raise InputError(f"{option} {str(out)!r} is a file. Expected a directory")
    if not is_main_process():  # only rank 0 writes in out: the others neither probe nor lock it
        return False
    check_writable(out, option)
    lock_directory(out)
    held = sorted(p.name + ("/" if p.is_dir() and not p.is_symlink() else "") for p in out.iterdir()
                  if p.name not in BOOKKEEPING)
    mine, theirs = _own_files_in(out, own)
    foreign = [h for h in held if not any(fnmatch.fnmatchcase(h.rstrip("/"), pat) for pat in own)]
    if held and not overwrite and (foreign or theirs):
        shown = ", ".join(held[:5]) + (", ..." if len(held) > 5 else "")
        raise InputError(f"{option} {str(out)!r} is not empty (it holds {shown}). Expected a new or empty directory; "
                         f"pass --overwrite to replace this command's files in it ({', '.join(own)})")
    inside = [f for f in theirs if f.parent != out]
    if inside:
        raise InputError(f"--overwrite would replace {str(inside[0])!r}, which attnkit did not write (or a run "
                         f"killed with SIGKILL wrote without recording it); move it away or choose another {option}")
    return bool(mine or theirs)


def _own_files_in(out: Path, own: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """The files under ``out``'s entries named by ``own``: those attnkit recorded writing, and the others."""
    recorded = own_files(out)
    mine, theirs = [], []
    for entry in out_entries(out, own):
        files = sorted(entry.rglob("*")) if entry.is_dir() and not entry.is_symlink() else [entry]
        for f in files:
            if f.is_file() or f.is_symlink():
                (mine if f.relative_to(out).as_posix() in recorded and not f.is_symlink() else theirs).append(f)
    return mine, theirs


def out_entries(out: Path, own: tuple[str, ...]) -> list[Path]:
    """The entries of ``out`` whose names match one of the patterns ``own``."""
    return sorted(p for p in out.iterdir() if any(fnmatch.fnmatchcase(p.name, pat) for pat in own))


def clear_out(out: Path, own: tuple[str, ...]) -> None:
    """Remove the entries of ``out`` named by ``own`` (links themselves, never their targets) and the
    unfinished temporary copies attnkit's writer leaves when killed."""
    for path in out_entries(out, own):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    for stale in out.glob(".*.*-*"):
        if ".tmp-" in stale.name or ".old-" in stale.name or stale.name.startswith(".checkpoint."):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()
    for stale in out.glob("checkpoint-*"):
        shutil.rmtree(stale, ignore_errors=True)


def check_run_dir(out: Path, resume: bool, overwrite: bool = False) -> Path:
    """``out/checkpoint`` once ``out`` fits the run; ``InputError`` (exit 2, nothing written) otherwise.

    - ``out`` must not be a file.
    - ``--resume``: ``out`` must hold a checkpoint; one left between the two renames of a save killed at
      that instant is put back first (rank 0), so it is resumed, never lost.
    - otherwise ``check_out_dir`` with the run's own names, ``RUN_NAMES``: new or empty, unless
      ``--overwrite`` (then the run files in it are replaced when training starts; other files stay).
    An existing ``out`` is locked at once (``lock_directory``), before it is read.
    """
    ckpt = out / "checkpoint"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file. Expected a directory (new, empty, or a run to --resume)")
    if resume and overwrite:
        raise InputError("--resume continues the run in --out and --overwrite replaces it. Expected one of them")
    if is_main_process():  # the only writer: the other ranks never touch --out
        check_writable(out)
        if out.is_dir():
            lock_directory(out)  # before anything is read or checked: a second run on ``out`` stops here
    if resume:
        if is_main_process():
            recover_directory(ckpt)  # a save killed between its two renames: put the previous one back
        if not has_checkpoint(ckpt):
            raise InputError(f"--resume: {str(out)!r} has no checkpoint/ to resume from")
        return ckpt
    if is_main_process() and out.is_dir() and not overwrite and (ckpt.exists() or any(out.glob(".checkpoint.old-*"))):
        raise InputError(f"{str(out)!r} already holds a run; pass --resume to continue it, --overwrite to "
                         f"start it again, or choose another --out")
    check_out_dir(out, RUN_NAMES, overwrite)
    return ckpt


def check_writable(out: Path, option: str = "--out") -> None:
    """``InputError`` unless files can be created in ``out`` (or in its nearest existing parent): a probe
    file is created and removed at once, so a read-only or foreign directory fails before any work."""
    where = out
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise InputError(f"{option} {str(out)!r}: {str(where)!r} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".attnkit-probe-", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise InputError(f"{option} {str(out)!r}: cannot write in {str(where)!r} ({err.strerror or err})") from None


def start_writing(out: Path, own: tuple[str, ...], overwrite: bool) -> None:
    """Just before a command's first write in ``out``: check it again under its lock (taken by the first
    check) and remove the command's own earlier files (its earlier output, or its names with
    ``overwrite``). Rank 0 only."""
    if not is_main_process():
        return
    if check_out_dir(out, own, overwrite):
        clear_out(out, own)


def train_config(out: Path, *, steps: int, lr: float, schedule: str, warmup: int, eval_every: int,
                 patience: int | None, seed: int, quiet: bool, device: str, time_budget: float | None,
                 resume: bool) -> TrainConfig:
    """The ``TrainConfig`` of the common options (``metric``/``mode`` are the recipe's to set).

    Every value is checked here, before anything is read or written: ``--device`` must exist on this
    machine, numbers must be finite.
    """
    if steps < 1:
        raise InputError(f"--steps must be >= 1. Received: {steps}")
    if not math.isfinite(lr) or lr <= 0:
        raise InputError(f"--lr must be a finite number > 0. Received: {lr}")
    if warmup < 0:
        raise InputError(f"--warmup must be >= 0. Received: {warmup}")
    if eval_every < 1:
        raise InputError(f"--eval-every must be >= 1. Received: {eval_every}")
    if patience is not None and patience < 1:
        raise InputError(f"--patience must be >= 1. Received: {patience}")
    if time_budget is not None and not (math.isfinite(time_budget) and time_budget > 0):
        raise InputError(f"--time-budget must be a finite number of seconds > 0. Received: {time_budget}")
    try:
        resolve_device(device)
    except ValueError as err:
        raise InputError(str(err)) from None
    return TrainConfig(steps=steps, lr=lr, schedule=schedule, warmup_steps=warmup, eval_every=eval_every,
                       patience=patience, seed=seed, out_dir=str(out), progress=not quiet, device=device,
                       time_budget=time_budget, resume=resume)


def given_options() -> set[str]:
    """Names of the parameters the user typed on the command line (not defaults) of the running command."""
    ctx = None
    for module in ("typer._click.globals", "click.globals"):
        try:
            ctx = importlib.import_module(module).get_current_context(silent=True)
        except ImportError:
            continue
        if ctx is not None:
            break
    if ctx is None:
        return set()
    return {name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"}


def check_resume_model(out: Path, resume: bool, model: dict[str, Any], flags: dict[str, str] | None = None) -> None:
    """With ``--resume``, refuse model options typed on the command line that differ from the run's model.

    Args:
        out: the run directory (its ``checkpoint/config.json`` holds the model's config).
        resume: ``--resume`` was given.
        model: the model config fields the options describe (``{"hidden_dim": 64, ...}``).
        flags: config field -> parameter name where they differ (``{"encoder_layers": "layers"}``).
    """
    if not resume:
        return
    meta = read_json(out / "checkpoint" / "config.json") if (out / "checkpoint" / "config.json").is_file() else {}
    saved = meta["config"] if isinstance(meta.get("config"), dict) else meta  # attnkit's layout, or a Hugging Face config
    typed = given_options()
    flags = flags or {}
    differ = [f"--{flags.get(k, k).replace('_', '-')} {v!r} (the run has {saved[k]!r})" for k, v in model.items()
              if (flags.get(k, k) in typed or k in typed) and k in saved and saved[k] != v]
    if differ:
        raise InputError(f"--resume: the model of the run in {str(out)!r} is fixed; it differs from "
                         f"{'; '.join(differ)}. Drop these options, or start a new run in another --out")


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


@main_only
def write_spec(out: Path, spec: Any) -> None:
    """Create the run directory ``out`` and save ``spec`` (a dataclass) in it as ``run.json`` (rank 0 only)."""
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


def run_training(out: Path, spec: Any, run: PreparedRun, hint: str = "", notes: tuple[str, ...] = (),
                 overwrite: bool = False) -> TrainResult:
    """Print the run's summary (and ``notes``), write ``run.json``, train, print the closing line.

    Under ``torchrun`` every rank trains; rank 0 alone prints and writes. With ``overwrite`` the files of
    an earlier run in ``out`` are removed first (every input has been checked by now).

    Raises:
        FloatingPointError: training stopped after too many non-finite losses or gradients (exit 1).
    """
    for line in (run.summary, *notes):
        say(line)
    if is_main_process():
        if run.config.resume:
            lock_directory(out)
        else:
            start_writing(out, RUN_NAMES, overwrite)
    write_spec(out, spec)
    with updating():  # the checkpoint, model/ and the log are kept current as training goes
        result = run.fit()
    if result.stop_reason == "non_finite":
        raise FloatingPointError(f"training stopped at step {result.steps}: {result.skipped_steps} steps had a "
                                 f"non-finite loss or gradient (skipped); try a lower --lr. The last good "
                                 f"weights are in {out / 'checkpoint'}")
    best = run.best_line(result) if run.best_line is not None else None
    if result.skipped_steps:
        say(f"warning: {result.skipped_steps} step(s) skipped for a non-finite loss or gradient")
    say(closing_line(result, out, best, hint))
    return result


def resolve_model_dir(path: str | Path) -> Path:
    """``DIR`` itself when it holds a model, else ``DIR/model`` (a training run's directory)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{str(path)!r} is a file. Expected a model directory (the folder that holds "
                              f"config.json): give the folder, e.g. {str(path.parent)!r}")
    if (path / "config.json").exists():  # a damaged config.json (even a directory) is reported when read
        return path
    if (path / "model" / "config.json").exists():
        return path / "model"
    raise CheckpointError(f"{str(path)!r} holds no model: expected config.json in it or in {str(path / 'model')!r}; "
                          f"give a directory written by `attnkit train` or `model.save`")
