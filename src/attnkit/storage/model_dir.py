"""A saved model's directory: config JSON (``config.json``) and checked safetensors weights."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from attnkit.errors import CheckpointError
from attnkit.storage.files import PathLike, read_json, write_json  # noqa: F401  (write_json: doctest)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_PREFIX = "tokenizer_"

def config_to_dict(config: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` of a model config (nested dataclasses become dicts, tuples become lists in JSON).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Cfg:
        ...     sizes: tuple = (2, 3)
        >>> config_to_dict(Cfg())
        {'sizes': (2, 3)}
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"Expected a @dataclass config instance. Received: {type(config).__name__}")
    return dataclasses.asdict(config)


def config_from_dict(config_class: type, data: dict[str, Any]) -> Any:
    """Rebuild ``config_class`` from a JSON dict; unknown fields raise ``CheckpointError``.

    Missing fields take their defaults; nested dataclass fields are rebuilt recursively; JSON lists go back to
    tuples where the field's type or default is a tuple. A field the class has renamed (its ``renamed_fields``
    dict, old name -> new name) raises ``CheckpointError`` naming both, so an old config.json says what to do.

    Args:
        config_class: the ``@dataclass`` to build.
        data: the ``"config"`` object of a ``config.json``.

    Returns:
        A ``config_class`` instance.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Cfg:
        ...     sizes: tuple = (2, 3)
        ...     width: int = 8
        >>> config_from_dict(Cfg, {"sizes": [4, 5]})
        Cfg(sizes=(4, 5), width=8)
        >>> Cfg.renamed_fields = {"height": "width"}
        >>> config_from_dict(Cfg, {"height": 4})
        Traceback (most recent call last):
        ...
        attnkit.errors.CheckpointError: config field 'height' of Cfg is now 'width': rename the key in config.json
    """
    if not isinstance(data, dict):
        raise CheckpointError(f"config of {config_class.__name__} must be a JSON object. Received: {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(config_class) if f.init}
    for old, new in getattr(config_class, "renamed_fields", {}).items():
        if old in data and new not in data:
            raise CheckpointError(f"config field {old!r} of {config_class.__name__} is now {new!r}: "
                                  f"rename the key in config.json")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CheckpointError(f"config has fields {config_class.__name__} does not know: {unknown}. "
                              f"Expected a subset of: {sorted(fields)}")
    try:
        hints = typing.get_type_hints(config_class)
    except Exception:  # unresolved forward references: fall back to defaults only
        hints = {}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints.get(name)
        sub = _dataclass_in(hint)
        if sub is not None and isinstance(value, dict):
            value = config_from_dict(sub, value)
        elif isinstance(value, list) and _wants_tuple(hint, fields[name]):
            value = tuple(value)
        kwargs[name] = value
    try:
        return config_class(**kwargs)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"invalid {config_class.__name__} in config.json: {err}") from err


def _dataclass_in(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return hint
    for arg in typing.get_args(hint):  # Optional[Sub] / Sub | None
        if dataclasses.is_dataclass(arg) and isinstance(arg, type):
            return arg
    return None


def _wants_tuple(hint: Any, field: dataclasses.Field) -> bool:
    if hint is tuple or typing.get_origin(hint) is tuple:
        return True
    if any(a is tuple or typing.get_origin(a) is tuple for a in typing.get_args(hint)):
        return True
    return isinstance(field.default, tuple)


def read_model_config(directory: PathLike) -> dict[str, Any]:
    """Read and check ``DIR/config.json``; returns the whole JSON object (with ``model_type`` and ``config``).

    Args:
        directory: a saved model's directory.

    Returns:
        The JSON object of ``config.json``.

    Raises:
        CheckpointError: missing directory or file, invalid JSON, no string ``model_type`` / object ``config``,
            or the ``kind`` key of attnkit versions before the rename (one line saying what to do).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> write_json(root / CONFIG_FILE, {"model_type": "seq2seq", "config": {}})
        >>> read_model_config(root)["model_type"]
        'seq2seq'
    """
    directory = Path(directory)
    if not directory.exists():
        raise CheckpointError(f"model directory {str(directory)!r} does not exist")
    if not directory.is_dir():
        raise CheckpointError(f"model path {str(directory)!r} is not a directory")
    path = directory / CONFIG_FILE
    if not path.exists():  # a directory in its place is reported by read_json
        raise CheckpointError(f"model directory {str(directory)!r} is incomplete: {CONFIG_FILE} is missing")
    meta = read_json(path)
    if isinstance(meta, dict) and "kind" in meta and "model_type" not in meta:
        raise CheckpointError(f"{path} was written by an earlier attnkit, which called the model's type 'kind': "
                              f"rename the key 'kind' to 'model_type' in it, or train the model again")
    if not isinstance(meta, dict) or not isinstance(meta.get("model_type"), str) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path} must hold an object with a string 'model_type' and an object 'config'. "
                              f"Received keys: {sorted(meta) if isinstance(meta, dict) else type(meta).__name__}: the file is damaged "
                              f"or not an attnkit model's; restore it or save the model again")
    return meta


# ----------------------------------------------------------------------------------------------------------
# Weights: shared tensors and checked loading
# ----------------------------------------------------------------------------------------------------------


def split_shared(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Drop tensors that alias an earlier one (tied weights); return ``(unique_state, {alias: kept_name})``.

    safetensors refuses to write two names over the same memory; tied weights (e.g. a decoder's output
    projection sharing the embedding matrix) are written once and recorded as aliases.

    Example:
        >>> w = torch.zeros(3, 2)
        >>> unique, aliases = split_shared({"embed": w, "head": w, "bias": torch.zeros(3)})
        >>> sorted(unique), aliases
        (['bias', 'embed'], {'head': 'embed'})
    """
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[Any, int, tuple[int, ...], tuple[int, ...], torch.dtype], str] = {}
    for name, t in state.items():
        if t.numel() == 0:
            unique[name] = t.detach().contiguous()
            continue
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        unique[name] = t.detach().contiguous()
    # A tensor that only partly overlaps another is copied (contiguous() above); that is safe for safetensors.
    return unique, aliases


def check_state_dict(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], where: str) -> None:
    """Raise ``CheckpointError`` listing missing and unexpected names and shape mismatches, if any.

    Example:
        >>> check_state_dict({"w": torch.zeros(2, 3)}, {"w": torch.zeros(3, 2), "b": torch.zeros(1)}, "x")
        Traceback (most recent call last):
        ...
        attnkit.errors.CheckpointError: weights in x do not match the config: unexpected tensors ['b'], shape mismatches [w: checkpoint (3, 2) vs model (2, 3)]
    """
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = [f"{k}: checkpoint {tuple(found[k].shape)} vs model {tuple(expected[k].shape)}"
                  for k in sorted(set(expected) & set(found)) if found[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected}")
        if mismatched:
            parts.append(f"shape mismatches [{'; '.join(mismatched)}]")
        raise CheckpointError(f"weights in {where} do not match the config: " + ", ".join(parts))


def read_safetensors(path: PathLike, tied: dict[str, str] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file on the CPU; ``CheckpointError`` when it cannot be read.

    Args:
        path: the file.
        tied: ``{alias: kept_name}`` from ``split_shared``; each alias is added back, sharing its tensor.

    Returns:
        ``{name: tensor}``.

    Example:
        >>> import tempfile
        >>> from safetensors.torch import save_file
        >>> path = Path(tempfile.mkdtemp()) / WEIGHTS_FILE
        >>> save_file({"embed": torch.ones(2)}, str(path))
        >>> sorted(read_safetensors(path, tied={"head": "embed"}))
        ['embed', 'head']
    """
    if Path(path).is_dir():
        raise CheckpointError(f"cannot read weights {path}: it is a directory. Expected a safetensors file: "
                              f"move the directory away and restore the file, or save the model again")
    try:
        found = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read weights {path}: {_why_not_safetensors(path, err)}") from None
    for alias, kept in (tied or {}).items():
        if kept in found and alias not in found:
            found[alias] = found[kept]
    return found


def _why_not_safetensors(path: PathLike, err: Exception) -> str:
    """What a file that safetensors refused is, and what to do (never an unpickler's advice)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80" or head == b"PK\x03\x04":  # pickle protocol 2+ / torch.save's zip archive
        return ("it is a pickle (torch.save) file, not safetensors. attnkit never unpickles (a pickle can run code): "
                "convert it with safetensors.torch.save_file where you trust its origin, or save the model again")
    return f"not a safetensors file ({err}): the file is damaged; restore it or save the model again"


def build_checked(model_class: type, config: Any, weights: PathLike, *, slack: int = 2 << 20) -> Any:
    """``model_class(config)``, once a meta-device build shows its parameters fit the weights file.

    A ``config.json`` may claim any size (a vocabulary of 1e10 would ask for hundreds of GB before any
    check of the weights could fail). The model is first built on the ``meta`` device (no memory), its
    parameter bytes counted and compared with the size of ``weights``, which must hold all of them.

    Args:
        model_class: the class to build.
        config: its config instance.
        weights: the ``model.safetensors`` that will be loaded into it.
        slack: bytes allowed beyond the file (headers, dtype changes of small tensors).

    Returns:
        The model, built for real.

    Raises:
        CheckpointError: the config describes more parameters than the file can hold.

    Example:
        >>> import tempfile
        >>> from safetensors.torch import save_file
        >>> path = Path(tempfile.mkdtemp()) / WEIGHTS_FILE
        >>> save_file({"weight": torch.zeros(4, 3)}, str(path))
        >>> try:
        ...     _ = build_checked(lambda n: torch.nn.Embedding(n, 3), 10**10, path)
        ... except CheckpointError as err:
        ...     print(str(err)[:58])
        config.json describes 30,000,000,000 parameters (120.0 GB)
    """
    with torch.device("meta"):
        probe = model_class(config)
    need = sum(p.numel() * p.element_size() for p in {id(p): p for p in probe.parameters()}.values())
    count = sum(p.numel() for p in {id(p): p for p in probe.parameters()}.values())
    have = Path(weights).stat().st_size
    if need > 2 * have + slack:
        raise CheckpointError(f"config.json describes {count:,} parameters ({need / 1e9:.1f} GB) but {weights} holds "
                              f"only {have:,} bytes: the config does not match the weights")
    return model_class(config)
