"""Training checkpoints: one directory with the model and everything needed to resume bit for bit.

    OUT/checkpoint/
      config.json, model.safetensors, tokenizer_<name>.json    the model, as ``KitModel.save`` writes it
      optimizer.pt          optimiser state dict (tensors, numbers, lists; read with weights_only=True)
      rng_state.pt          torch CPU (and CUDA) RNG states as uint8 tensors (weights_only=True)
      trainer_state.json    step, scheduler state, early-stopping state, elapsed time, eval history,
                            python and numpy RNG states, and the data stream position

The data position is whatever ``train_data.state_dict()`` returns; it is stored in the JSON when it is
JSON-serialisable, otherwise in ``data_state.pt`` (it must then hold only tensors, numbers, strings,
lists, tuples and dicts, which ``torch.load(weights_only=True)`` accepts). Nothing is ever unpickled.

The whole directory is written through ``atomic_directory``: a run killed while saving leaves the previous
checkpoint intact.

Example (the trainer does this every ``eval_every`` steps)::

    save_checkpoint("run/checkpoint", model, optimizer, scheduler, {"step": 100}, data.state_dict())
    ckpt = load_checkpoint("run/checkpoint")
    ckpt.step, ckpt.optimizer["param_groups"][0]["lr"]      # 100, ...
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from attnkit.errors import CheckpointError
from attnkit.models.base import KitModel
from attnkit.storage import WEIGHTS_FILE, atomic_directory, config_to_dict, read_model_config
from attnkit.training.runtime import get_rng_state

TRAINER_STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng_state.pt"
DATA_STATE_FILE = "data_state.pt"
REQUIRED_FILES = ("config.json", WEIGHTS_FILE, TRAINER_STATE_FILE, OPTIMIZER_FILE, RNG_FILE)


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
        model_meta: the model's ``config.json`` object (kind, config, ...).
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
        if self.model_meta.get("kind") != model.kind or saved != current:
            diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            raise CheckpointError(
                f"checkpoint {self.directory} was written for a different model: kind "
                f"{self.model_meta.get('kind')!r} vs {model.kind!r}, differing config fields {diff} "
                f"(checkpoint {[saved.get(k) for k in diff]} vs model {[current.get(k) for k in diff]})")
        model.load_weights(self.directory / WEIGHTS_FILE, tied=self.model_meta.get("tied") or {})


def save_checkpoint(directory: str | os.PathLike[str], model: KitModel, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None, state: dict[str, Any],
                    data_state: Any) -> Path:
    """Write a resumable checkpoint atomically; ``state`` must be JSON-serialisable and hold ``"step"``.

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
    with atomic_directory(directory) as tmp:
        model.write_files(tmp)
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
        torch.save(rng_tensors, tmp / RNG_FILE)
        try:
            payload["data"] = json.loads(json.dumps(data_state))
            payload["data_in_file"] = False
        except (TypeError, ValueError):
            torch.save(data_state, tmp / DATA_STATE_FILE)
            payload["data"] = None
            payload["data_in_file"] = True
        (tmp / TRAINER_STATE_FILE).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return Path(directory)


def has_checkpoint(directory: str | os.PathLike[str]) -> bool:
    """True if ``directory`` holds a checkpoint (its trainer state file exists)."""
    return (Path(directory) / TRAINER_STATE_FILE).is_file()


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, or objects that weights_only refuses to unpickle
        raise CheckpointError(f"cannot read {path}: {err}") from err


def load_checkpoint(directory: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``; every file is checked before anything is used.

    Raises:
        CheckpointError: the directory or one of its files is missing or unreadable (files listed).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {str(directory)!r} does not exist")
    missing = [f for f in REQUIRED_FILES if not (directory / f).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {str(directory)!r} is incomplete: missing {missing}")
    meta = read_model_config(directory)
    try:
        state = json.loads((directory / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{directory / TRAINER_STATE_FILE} is not valid JSON: {err}") from err
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or "rng" not in state:
        raise CheckpointError(f"{directory / TRAINER_STATE_FILE} lacks 'step' or 'rng'")
    data_state = state.get("data")
    if state.get("data_in_file"):
        if not (directory / DATA_STATE_FILE).is_file():
            raise CheckpointError(f"checkpoint {str(directory)!r} is incomplete: missing ['{DATA_STATE_FILE}']")
        data_state = _torch_load(directory / DATA_STATE_FILE)
    return Checkpoint(directory=directory, step=state["step"], state=state,
                      optimizer=_torch_load(directory / OPTIMIZER_FILE), rng_json=state["rng"],
                      rng_tensors=_torch_load(directory / RNG_FILE), data_state=data_state, model_meta=meta)
