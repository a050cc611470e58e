"""The base class of every attnkit model: config, tokenizers, atomic save and checked load.

A saved model is one directory::

    DIR/
      config.json             {"kind": "seq2seq", "config": {...asdict(config)...}, "attnkit_version": "0.1.0",
                               "tokenizers": ["source", "target"], "tied": {"alias": "kept_name", ...}}
      model.safetensors       the state dict; tensors that share storage are written once (see "tied")
      tokenizer_<name>.json   one per entry of ``model.tokenizers`` (``Tokenizer.save`` / ``Tokenizer.load``)

Writing is atomic: the files go into a temporary directory beside ``DIR`` which is renamed into place only
once complete; an existing ``DIR`` is replaced only after the new one is whole, so a killed process leaves
either the old directory or the new one, never a half-written one.

Reading checks everything and raises ``attnkit.errors.CheckpointError`` naming the problem: a missing
directory or file, an unknown kind or config field, and weights that do not match the config (missing and
unexpected tensor names, shape mismatches, all listed).

A model subclass, saved and loaded back:

    >>> import tempfile
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class TinyConfig:
    ...     width: int = 8            # hidden size
    >>> @register_model
    ... class Tiny(KitModel):
    ...     kind = "doc-tiny"
    ...     config_class = TinyConfig
    ...     def __init__(self, config):
    ...         super().__init__(config)
    ...         self.proj = nn.Linear(config.width, config.width)
    >>> model = Tiny(TinyConfig(width=4))
    >>> with tempfile.TemporaryDirectory() as out:
    ...     path = model.save(f"{out}/tiny")          # config.json + model.safetensors (+ tokenizers)
    ...     again = Tiny.load(path)                   # or attnkit.load(path), for any kind
    ...     print(sorted(p.name for p in path.iterdir()), again.config)
    ['config.json', 'model.safetensors'] TinyConfig(width=4)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import typing
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from attnkit.errors import CheckpointError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_PREFIX = "tokenizer_"

MODEL_REGISTRY: dict[str, type[KitModel]] = {}
"""Model classes by ``kind``; filled by ``@register_model`` when a model module is imported."""

M = TypeVar("M", bound="KitModel")


def register_model(cls: type[M]) -> type[M]:
    """Class decorator: record ``cls`` in ``MODEL_REGISTRY`` under ``cls.kind``.

    Example (see the module docstring for a whole model)::

        @register_model
        class Seq2Seq(KitModel):
            kind = "seq2seq"
            config_class = Seq2SeqConfig
    """
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"@register_model needs a class with a non-empty str `kind`. Received: {kind!r} on {cls.__name__}")
    if not dataclasses.is_dataclass(getattr(cls, "config_class", None)):
        raise TypeError(f"@register_model needs `config_class` to be a @dataclass on {cls.__name__}. "
                        f"Received: {getattr(cls, 'config_class', None)!r}")
    known = MODEL_REGISTRY.get(kind)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"model kind {kind!r} is already registered by {known.__module__}.{known.__qualname__}")
    MODEL_REGISTRY[kind] = cls
    return cls


def model_class(kind: str) -> type[KitModel]:
    """The registered class for ``kind`` (its module must have been imported; ``attnkit.load`` does that)."""
    try:
        return MODEL_REGISTRY[kind]
    except KeyError:
        raise CheckpointError(f"unknown model kind {kind!r}. Expected one of: {sorted(MODEL_REGISTRY)}") from None


# ----------------------------------------------------------------------------------------------------------
# Atomic directories
# ----------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_directory(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``directory``; on success rename it to ``directory``.

    The temporary directory lives in the same parent (so the rename is atomic on one file system). If the
    body raises, the temporary directory is removed and ``directory`` is untouched. If ``directory`` exists
    it is first renamed aside, the new one renamed in, and only then the old one deleted: at every instant
    either the complete old or the complete new directory exists under one of the two names
    (``recover_directory`` puts the old one back after a kill between the renames). Temporary directories
    left by killed writers are removed after the next successful write.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> with atomic_directory(root / "checkpoint") as tmp:
        ...     _ = (tmp / "state.json").write_text("{}")
        ...     (root / "checkpoint").exists()       # nothing visible until the body succeeds
        False
        >>> sorted(p.name for p in root.iterdir()), (root / "checkpoint" / "state.json").read_text()
        (['checkpoint'], '{}')
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old: Path | None = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    for stale in _siblings(target):  # left by a process killed while writing: never complete, never needed
        shutil.rmtree(stale, ignore_errors=True)


def _siblings(target: Path) -> list[Path]:
    return [p for p in target.parent.glob(f".{target.name}.*-*")
            if p.name.startswith((f".{target.name}.tmp-", f".{target.name}.old-"))]


def recover_directory(directory: str | os.PathLike[str]) -> bool:
    """Put back the previous complete directory if a process was killed between the two renames.

    ``atomic_directory`` moves the old directory aside (``.NAME.old-*``) just before renaming the new one
    in; a kill at that instant leaves no ``NAME``. Then the newest ``.NAME.old-*`` (complete by
    construction) is renamed back. Returns True if it did so. Single writer assumed (rank 0).
    """
    target = Path(directory)
    if target.exists():
        return False
    olds = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if not olds:
        return False
    os.replace(olds[-1], target)
    return True


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


# ----------------------------------------------------------------------------------------------------------
# Config <-> JSON
# ----------------------------------------------------------------------------------------------------------


def config_to_dict(config: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` of a model config (nested dataclasses become dicts, tuples become lists in JSON)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"Expected a @dataclass config instance. Received: {type(config).__name__}")
    return dataclasses.asdict(config)


def config_from_dict(config_class: type, data: dict[str, Any]) -> Any:
    """Rebuild ``config_class`` from a JSON dict; unknown fields raise ``CheckpointError``.

    Missing fields take their defaults (configs written by older versions still load); nested dataclass
    fields are rebuilt recursively; JSON lists go back to tuples where the field's type or default is a tuple.
    """
    if not isinstance(data, dict):
        raise CheckpointError(f"config of {config_class.__name__} must be a JSON object. Received: {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(config_class) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CheckpointError(f"config has fields {config_class.__name__} does not know: {unknown}. "
                              f"Expected a subset of: {sorted(fields)}")
    try:
        hints = typing.get_type_hints(config_class)
    except Exception:  # unresolved forward references: fall back to defaults only
        hints = {}
    kwargs = {}
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


# ----------------------------------------------------------------------------------------------------------
# Weights: shared tensors and checked loading
# ----------------------------------------------------------------------------------------------------------


def split_shared(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Drop tensors that alias an earlier one (tied weights); return ``(unique_state, {alias: kept_name})``.

    safetensors refuses to write two names over the same memory; tied weights (e.g. a decoder's output
    projection sharing the embedding matrix) are written once and recorded as aliases.
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
    """Raise ``CheckpointError`` listing missing and unexpected names and shape mismatches, if any."""
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


def read_model_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``DIR/config.json``; returns the whole JSON object (with ``kind`` and ``config``)."""
    directory = Path(directory)
    if not directory.exists():
        raise CheckpointError(f"model directory {str(directory)!r} does not exist")
    if not directory.is_dir():
        raise CheckpointError(f"model path {str(directory)!r} is not a directory")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"model directory {str(directory)!r} is incomplete: {CONFIG_FILE} is missing")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("kind"), str) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path} must hold an object with a string 'kind' and an object 'config'. "
                              f"Received keys: {sorted(meta) if isinstance(meta, dict) else type(meta).__name__}")
    return meta


# ----------------------------------------------------------------------------------------------------------
# KitModel
# ----------------------------------------------------------------------------------------------------------


class KitModel(nn.Module):
    """Base of attnkit models: holds ``config`` (a @dataclass) and ``tokenizers``; saves and loads itself.

    Subclasses set the class attributes ``kind`` (the name in ``config.json``, e.g. ``"seq2seq"``) and
    ``config_class`` (their config @dataclass), take the config as the only required ``__init__`` argument,
    and decorate themselves with ``@register_model``. Models trained by ``attnkit.training.Trainer`` also
    implement ``training_step(batch) -> (loss, stats)``.

    Attributes:
        config: the model's config dataclass instance.
        tokenizers: ``{"source": tok, "target": tok}`` or similar; each has ``save(path)`` and the class
            method ``attnkit.data.tokenize.Tokenizer.load(path)``. Saved as ``tokenizer_<name>.json``.
    """

    kind: ClassVar[str] = ""
    config_class: ClassVar[type] = object

    def __init__(self, config: Any) -> None:
        super().__init__()
        if not dataclasses.is_dataclass(config) or isinstance(config, type):
            raise TypeError(f"{type(self).__name__} expects a @dataclass config instance. "
                            f"Received: {type(config).__name__}")
        self.config = config
        self.tokenizers: dict[str, Any] = {}

    # -- size ------------------------------------------------------------------------------------------
    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of distinct parameters (tied weights counted once)."""
        seen: set[int] = set()
        total = 0
        for p in self.parameters():
            if id(p) in seen or (trainable_only and not p.requires_grad):
                continue
            seen.add(id(p))
            total += p.numel()
        return total

    def summary(self, *inputs: Any, print_fn: Callable[[str], None] | None = print, **kwargs: Any) -> str:
        """Print (with ``print_fn``) and return a Keras-like table: layers, output shapes when example
        ``inputs`` are given, parameter counts and totals (see :func:`attnkit.models.summary.summary`).
        Models override it to supply an example input of their own."""
        from attnkit.models.summary import summary  # same level: models

        return summary(self, *inputs, print_fn=print_fn, **kwargs)

    # -- save ------------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write config, weights and tokenizers to ``directory`` atomically; returns the path.

        Example (see the module docstring)::

            model.save("runs/dates/model")
            same = attnkit.load("runs/dates/model")
        """
        with atomic_directory(directory) as tmp:
            self.write_files(tmp)
        return Path(directory)

    def write_files(self, directory: Path) -> None:
        """Write ``config.json``, ``model.safetensors`` and ``tokenizer_<name>.json`` into an existing
        directory, non-atomically (``save`` and the trainer's checkpoints wrap this in ``atomic_directory``)."""
        from attnkit import __version__

        state, tied = split_shared(self.state_dict())
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"kind": self.kind})
        for name, tok in self.tokenizers.items():
            tok.save(str(directory / f"{TOKENIZER_PREFIX}{name}.json"))
        meta = {"kind": self.kind, "config": config_to_dict(self.config), "attnkit_version": __version__,
                "tokenizers": sorted(self.tokenizers), "tied": tied}
        (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    # -- load ------------------------------------------------------------------------------------------
    @classmethod
    def load(cls: type[M], directory: str | os.PathLike[str],
             map_location: str | torch.device | None = None) -> M:
        """Rebuild a model saved with ``save``: config, weights (checked against the config) and tokenizers.

        Called on a subclass, the directory's kind must be that subclass's; called on ``KitModel`` itself,
        the kind picks the registered class (prefer ``attnkit.load``, which also imports the model module).
        The model is returned in eval mode on ``map_location`` (default: CPU).

        Raises:
            CheckpointError: missing directory/files, unknown kind or config fields, weights that do not
                match the config (missing/unexpected tensors and shape mismatches are listed).
        """
        directory = Path(directory)
        meta = read_model_config(directory)
        kind = meta["kind"]
        if cls is KitModel:
            target: type[KitModel] = model_class(kind)
        else:
            if kind != cls.kind:
                raise CheckpointError(f"{directory} holds a {kind!r} model, not {cls.kind!r} ({cls.__name__})")
            target = cls
        weights = directory / WEIGHTS_FILE
        if not weights.is_file():
            raise CheckpointError(f"model directory {str(directory)!r} is incomplete: {WEIGHTS_FILE} is missing")
        config = config_from_dict(target.config_class, meta["config"])
        model = target(config)
        model.load_weights(weights, tied=meta.get("tied") or {})
        model.tokenizers = _load_tokenizers(directory, meta.get("tokenizers"))
        if map_location is not None:
            model.to(map_location)
        model.eval()
        return model  # type: ignore[return-value]

    def load_weights(self, path: str | os.PathLike[str], tied: dict[str, str] | None = None) -> None:
        """Load a ``model.safetensors`` into this model after checking names and shapes (strict)."""
        try:
            found = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"cannot read weights {path}: {err}") from err
        for alias, kept in (tied or {}).items():
            if kept in found and alias not in found:
                found[alias] = found[kept]
        expected = self.state_dict()
        check_state_dict(expected, found, str(path))
        with torch.no_grad():
            for name, t in expected.items():
                t.copy_(found[name].to(dtype=t.dtype))


def _load_tokenizers(directory: Path, names: list[str] | None) -> dict[str, Any]:
    if names is None:  # directories written without the list: take whatever files are there
        names = sorted(p.stem[len(TOKENIZER_PREFIX):] for p in directory.glob(f"{TOKENIZER_PREFIX}*.json"))
    missing = [n for n in names if not (directory / f"{TOKENIZER_PREFIX}{n}.json").is_file()]
    if missing:
        raise CheckpointError(f"model directory {str(directory)!r} is incomplete: missing tokenizer files "
                              f"{[f'{TOKENIZER_PREFIX}{n}.json' for n in missing]}")
    if not names:
        return {}
    from attnkit.data.tokenize import Tokenizer  # the data layer sits below models; imported lazily

    return {n: Tokenizer.load(str(directory / f"{TOKENIZER_PREFIX}{n}.json")) for n in names}
