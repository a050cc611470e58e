"""Training checkpoints: one directory with the model and everything needed to resume bit for bit.

    OUT/checkpoint/
      config.json, model.safetensors, tokenizer_<name>.json    the model, as ``KitModel.save`` writes it
      optimizer.safetensors + optimizer.json    optimiser state: its tensors, and the rest as JSON
      rng_state.safetensors                     torch CPU (and CUDA) RNG states as uint8 tensors
      trainer_state.json    step, scheduler state, early-stopping state, elapsed time, eval history,
                            python and numpy RNG states, and the data stream position

Nothing is ever unpickled: tensors live in safetensors files and everything else in JSON (a nested
state is stored as JSON with each tensor replaced by the name it has in the safetensors file:
``encode_state`` / ``decode_state``). A data position that is not plain JSON goes to
``data_state.safetensors`` the same way. Checkpoints written by earlier versions (``optimizer.pt``,
``rng_state.pt``, ``data_state.pt``) are still read, with ``torch.load(weights_only=True)`` only, which
refuses any pickle that would build objects or run code.

The whole directory is written through ``atomic_directory`` (temporary directory, fsync, rename): a run
killed at any moment, even while saving, leaves the previous checkpoint intact. With ``keep > 1`` the
previous checkpoints stay beside it as ``checkpoint-<step>/`` (hard links, no copy), the oldest removed.

Example (the trainer does this every ``eval_every`` steps)::

    save_checkpoint("run/checkpoint", model, optimizer, scheduler, {"step": 100}, data.state_dict())
    ckpt = load_checkpoint("run/checkpoint")
    ckpt.step, ckpt.optimizer["param_groups"][0]["lr"]      # 100, ...
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from attnkit.errors import CheckpointError
from attnkit.models.base import KitModel
from attnkit.storage import (
    WEIGHTS_FILE,
    atomic_directory,
    atomic_write_text,
    config_to_dict,
    read_json,
    read_model_config,
)
from attnkit.storage.state import read_state, write_state
from attnkit.training.runtime import get_rng_state

TRAINER_STATE_FILE = "trainer_state.json"
OPTIMIZER_STATE, RNG_STATE, DATA_STATE = "optimizer", "rng_state", "data_state"  # NAME.safetensors + NAME.json
LEGACY_FILES = {OPTIMIZER_STATE: "optimizer.pt", RNG_STATE: "rng_state.pt", DATA_STATE: "data_state.pt"}
"""Files of checkpoints from earlier versions (read with ``torch.load(weights_only=True)``)."""
REQUIRED_FILES = ("config.json", WEIGHTS_FILE, TRAINER_STATE_FILE)


@dataclass
class Checkpoint:
    """A checkpoint read back by ``load_checkpoint``.

    Attributes:
        directory: where it was read from.
        step: number of optimiser steps done.
        state: the whole ``trainer_state.json`` object (step, scheduler, best, history, ...).
        optimizer: the optimiser state dict.
        rng_json: python and numpy RNG states; ``rng_tensors``: torch RNG states.
        data_state: the training stream position (``train_data.state_dict()`` at save time).
        model_meta: the model's ``config.json`` object (model_type, config, ...).
    """

    directory: Path
    step: int
    state: dict[str, Any]
    optimizer: dict[str, Any]
    rng_json: dict[str, Any]
    rng_tensors: dict[str, torch.Tensor]
    data_state: Any
    model_meta: dict[str, Any]

    def load_model_weights(self, model: KitModel) -> None:
        """Copy the checkpoint's weights into ``model`` after checking its config is the same."""
        saved = self.model_meta.get("config", {})
        current = json.loads(json.dumps(config_to_dict(model.config)))  # tuples -> lists, as in the file
        identity = model.identity()
        written = {k: self.model_meta.get(k) for k in identity}
        if written != identity or saved != current:
            diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            raise CheckpointError(
                f"checkpoint {self.directory} was written for a different model: "
                f"{written} vs {identity}, differing config fields {diff} "
                f"(checkpoint {[saved.get(k) for k in diff]} vs model {[current.get(k) for k in diff]})")
        model.load_weights(self.directory / WEIGHTS_FILE, tied=self.model_meta.get("tied") or {})


def save_checkpoint(directory: str | os.PathLike[str], model: KitModel, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None, state: dict[str, Any],
                    data_state: Any, keep: int = 1) -> Path:
    """Write a resumable checkpoint atomically; ``state`` must be JSON-serialisable and hold ``"step"``.

    With ``keep > 1`` the checkpoint being replaced stays as ``<directory>-<step>/`` (``keep - 1`` of those).

    The RNG states saved are the ones current at the call: call it at the point the run should resume from.
    """
    if "step" not in state:
        raise ValueError(f"checkpoint state needs a 'step'. Received keys: {sorted(state)}")
    rng_json, rng_tensors = get_rng_state()
    sched = None
    if scheduler is not None:
        sched = scheduler.state_dict()
        if "lr_lambdas" in sched:  # the schedule functions are rebuilt from TrainConfig, never stored
            sched["lr_lambdas"] = [None] * len(sched["lr_lambdas"])
    payload = dict(state, scheduler=sched, rng=rng_json)
    directory = Path(directory)
    if keep > 1 and has_checkpoint(directory):
        _keep_previous(directory, keep)
    with atomic_directory(directory) as tmp:
        model.write_files(tmp)
        write_state(tmp, OPTIMIZER_STATE, optimizer.state_dict())
        write_state(tmp, RNG_STATE, rng_tensors)
        try:
            payload["data"] = json.loads(json.dumps(data_state))
            payload["data_in_file"] = False
        except (TypeError, ValueError):
            write_state(tmp, DATA_STATE, data_state)
            payload["data"] = None
            payload["data_in_file"] = True
        atomic_write_text(tmp / TRAINER_STATE_FILE, json.dumps(payload, indent=1) + "\n")
    return directory


def _keep_previous(directory: Path, keep: int) -> None:
    """Keep the current checkpoint as ``<name>-<step>/`` (hard links: the files are never rewritten in
    place), then delete all but the newest ``keep - 1`` of those."""
    step = read_json(directory / TRAINER_STATE_FILE, dict).get("step", 0)
    kept = directory.parent / f"{directory.name}-{int(step):08d}"
    if not kept.exists():
        with atomic_directory(kept) as tmp:
            for f in directory.iterdir():
                if f.is_file():
                    os.link(f, tmp / f.name)
    for old in previous_checkpoints(directory)[: -(keep - 1)]:
        shutil.rmtree(old, ignore_errors=True)


def previous_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """The earlier checkpoints kept beside ``directory`` (``<name>-<step>/``), oldest first.

    Example:
        >>> previous_checkpoints("/no/such/run/checkpoint")
        []
    """
    directory = Path(directory)
    if not directory.parent.is_dir():
        return []
    found = [p for p in directory.parent.glob(f"{directory.name}-*")
             if p.is_dir() and p.name[len(directory.name) + 1:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(directory.name) + 1:]))


def has_checkpoint(directory: str | os.PathLike[str]) -> bool:
    """True if ``directory`` holds a checkpoint (its trainer state file exists)."""
    return (Path(directory) / TRAINER_STATE_FILE).is_file()


def _torch_load(path: Path) -> Any:
    """A file of an earlier version's checkpoint: ``torch.load`` with ``weights_only=True`` only."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # corrupt file, or objects that weights_only refuses (torch's advice to unpickle anyway is
        # never shown: it would run the file's code)
        raise CheckpointError(f"cannot read {path}: not a file of tensors attnkit can read safely (torch.load with "
                              f"weights_only=True refused it): delete the checkpoint and train again") from None


def _read(directory: Path, name: str) -> Any:
    """State ``name`` (safetensors + JSON), or an earlier version's ``.pt`` file; CheckpointError if neither."""
    if (directory / f"{name}.safetensors").is_file() or not (directory / LEGACY_FILES[name]).is_file():
        return read_state(directory, name)
    return _torch_load(directory / LEGACY_FILES[name])


def load_checkpoint(directory: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``; every file is checked before anything is used.

    Raises:
        CheckpointError: the directory or one of its files is missing or unreadable (files listed).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {str(directory)!r} does not exist")
    missing = [f for f in REQUIRED_FILES if not (directory / f).is_file()]
    missing += [f"{n}{x}" for n in (OPTIMIZER_STATE, RNG_STATE) for x in (".safetensors", ".json")
                if not (directory / f"{n}{x}").is_file() and not (directory / LEGACY_FILES[n]).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {str(directory)!r} is incomplete: missing {missing}")
    meta = read_model_config(directory)
    try:
        state = read_json(directory / TRAINER_STATE_FILE, dict)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{directory / TRAINER_STATE_FILE} is not valid JSON: {err}") from err
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or "rng" not in state:
        raise CheckpointError(f"{directory / TRAINER_STATE_FILE} lacks 'step' or 'rng'")
    data_state = _read(directory, DATA_STATE) if state.get("data_in_file") else state.get("data")
    return Checkpoint(directory=directory, step=state["step"], state=state,
                      optimizer=_read(directory, OPTIMIZER_STATE), rng_json=state["rng"],
                      rng_tensors=_read(directory, RNG_STATE), data_state=data_state, model_meta=meta)
