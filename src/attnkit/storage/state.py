"""Nested states (an optimiser's, RNG states, a data position) as safetensors + JSON: never a pickle.

``encode_state(state)`` walks dicts, lists and tuples and returns ``(tensors, skeleton)``: every tensor
moved into ``tensors`` under a generated name, and a JSON-serialisable ``skeleton`` where each tensor is
``{"tensor": name}``, each dict ``{"dict": [[key, value], ...]}`` (keys may be ints, as in an optimiser's
state) and each tuple ``{"tuple": [...]}``. ``decode_state(skeleton, tensors)`` rebuilds the state.
``write_state`` / ``read_state`` store the pair as ``NAME.safetensors`` and ``NAME.json``.

Example:
    >>> import torch
    >>> state = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2)}},
    ...          "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0]}]}
    >>> tensors, skeleton = encode_state(state)
    >>> sorted(tensors)
    ['t0', 't1']
    >>> back = decode_state(skeleton, tensors)
    >>> back["param_groups"][0]["betas"], back["state"][0]["exp_avg"].tolist()
    ((0.9, 0.99), [1.0, 1.0])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from attnkit.errors import CheckpointError
from attnkit.storage.files import PathLike, atomic_write_text, read_json, write_safetensors
from attnkit.storage.model_dir import read_safetensors

_SCALARS = (str, int, float, bool, type(None))


def encode_state(state: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """``(tensors, skeleton)`` of a nested state of dicts, lists, tuples, tensors and JSON scalars.

    Raises:
        TypeError: a value of any other type (it could not be stored without pickle).
    """
    tensors: dict[str, torch.Tensor] = {}

    def enc(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            name = f"t{len(tensors)}"
            tensors[name] = x.detach().cpu().contiguous().clone()
            return {"tensor": name}
        if isinstance(x, dict):
            for k in x:
                if not isinstance(k, _SCALARS):
                    raise TypeError(f"state keys must be str, int, float, bool or None. Received: {type(k).__name__}")
            return {"dict": [[k, enc(v)] for k, v in x.items()]}
        if isinstance(x, tuple):
            return {"tuple": [enc(v) for v in x]}
        if isinstance(x, list):
            return [enc(v) for v in x]
        if isinstance(x, _SCALARS):
            return x
        raise TypeError(f"a state may hold dicts, lists, tuples, tensors, str, numbers, bool and None. "
                        f"Received: {type(x).__name__}")

    return tensors, enc(state)


def decode_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The state ``encode_state`` took apart; ``CheckpointError`` for a skeleton naming a missing tensor."""
    if isinstance(skeleton, list):
        return [decode_state(v, tensors) for v in skeleton]
    if isinstance(skeleton, dict):
        if set(skeleton) == {"tensor"}:
            name = skeleton["tensor"]
            if name not in tensors:
                raise CheckpointError(f"state refers to tensor {name!r}, which its safetensors file lacks")
            return tensors[name]
        if set(skeleton) == {"tuple"}:
            return tuple(decode_state(v, tensors) for v in skeleton["tuple"])
        if set(skeleton) == {"dict"}:
            return {k: decode_state(v, tensors) for k, v in skeleton["dict"]}
        raise CheckpointError(f"malformed state skeleton: an object with keys {sorted(skeleton)}")
    return skeleton


def write_state(directory: PathLike, name: str, state: Any) -> None:
    """Store ``state`` as ``directory/NAME.safetensors`` (its tensors) and ``directory/NAME.json``.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> write_state(d, "rng", {"torch": torch.zeros(3, dtype=torch.uint8)})
        >>> sorted(p.name for p in d.iterdir()), read_state(d, "rng")["torch"].dtype
        (['rng.json', 'rng.safetensors'], torch.uint8)
    """
    directory = Path(directory)
    tensors, skeleton = encode_state(state)
    write_safetensors(tensors, directory / f"{name}.safetensors")
    atomic_write_text(directory / f"{name}.json", json.dumps(skeleton) + "\n")


def read_state(directory: PathLike, name: str) -> Any:
    """The state ``write_state`` stored under ``name``; ``CheckpointError`` when a file is missing or bad."""
    directory = Path(directory)
    for suffix in (".safetensors", ".json"):
        if not (directory / f"{name}{suffix}").is_file():
            raise CheckpointError(f"{directory} is incomplete: missing {name}{suffix}")
    skeleton = read_json(directory / f"{name}.json")
    return decode_state(skeleton, read_safetensors(directory / f"{name}.safetensors"))
