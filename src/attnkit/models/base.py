"""The base class of every attnkit model: config, tokenizers, atomic save and checked load.

A saved model is one directory::

    DIR/
      config.json             {"model_type": "seq2seq", "config": {...asdict(config)...}, "attnkit_version": "0.1.0",
                               "tokenizers": ["source", "target"], "tied": {"alias": "kept_name", ...}}
      model.safetensors       the state dict; tensors that share storage are written once (see "tied")
      tokenizer_<name>.json   one per entry of ``model.tokenizers`` (``Tokenizer.save`` / ``Tokenizer.load``)

Writing is atomic: the files go into a temporary directory beside ``DIR`` which is renamed into place only
once complete; an existing ``DIR`` is replaced only after the new one is whole, so a killed process leaves
either the old directory or the new one, never a half-written one.

Reading checks everything and raises ``attnkit.errors.CheckpointError`` naming the problem: a missing
directory or file, an unknown model_type or config field, and weights that do not match the config (missing and
unexpected tensor names, shape mismatches, all listed).

A model subclass, saved and loaded back:

    >>> import tempfile
    >>> from attnkit.storage import register_model
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class TinyConfig:
    ...     width: int = 8            # hidden size
    >>> @register_model
    ... class Tiny(KitModel):
    ...     model_type = "doc-tiny"
    ...     config_class = TinyConfig
    ...     def __init__(self, config):
    ...         super().__init__(config)
    ...         self.proj = nn.Linear(config.width, config.width)
    >>> model = Tiny(TinyConfig(width=4))
    >>> with tempfile.TemporaryDirectory() as out:
    ...     path = model.save(f"{out}/tiny")          # config.json + model.safetensors (+ tokenizers)
    ...     again = Tiny.load(path)                   # or attnkit.load(path), for any model
    ...     print(sorted(p.name for p in path.iterdir()), again.config)
    ['config.json', 'model.safetensors'] TinyConfig(width=4)
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from attnkit.errors import CheckpointError
from attnkit.models._checks import check_config_sizes
from attnkit.storage import (
    CONFIG_FILE,
    TOKENIZER_PREFIX,
    WEIGHTS_FILE,
    atomic_directory,
    atomic_write_text,
    build_checked,
    check_state_dict,
    config_from_dict,
    config_to_dict,
    confined_file,
    model_class,
    read_model_config,
    read_safetensors,
    split_shared,
    write_safetensors,
)

M = TypeVar("M", bound="KitModel")


# ----------------------------------------------------------------------------------------------------------
# KitModel
# ----------------------------------------------------------------------------------------------------------


class KitModel(nn.Module):
    """Base of attnkit models: holds ``config`` (a @dataclass) and ``tokenizers``; saves and loads itself.

    Subclasses set the class attributes ``model_type`` (the name in ``config.json``, e.g. ``"seq2seq"``) and
    ``config_class`` (their config @dataclass), take the config as the only required ``__init__`` argument,
    and decorate themselves with ``@register_model``. Models trained by ``attnkit.training.Trainer`` also
    implement ``training_step(batch) -> (loss, stats)``.

    Attributes:
        config: the model's config dataclass instance.
        tokenizers: ``{"source": tok, "target": tok}`` or similar; each has ``save(path)`` and the class
            method ``attnkit.data.tokenize.Tokenizer.load(path)``. Saved as ``tokenizer_<name>.json``.
    """

    model_type: ClassVar[str] = ""
    config_class: ClassVar[type] = object

    def __init__(self, config: Any) -> None:
        super().__init__()
        if not dataclasses.is_dataclass(config) or isinstance(config, type):
            raise TypeError(f"{type(self).__name__} expects a @dataclass config instance. "
                            f"Received: {type(config).__name__}")
        self.config = config
        self.tokenizers: dict[str, Any] = {}

    # -- size and place --------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The device of the model's first parameter (of its first buffer without parameters; else the CPU),
        as ``transformers``' ``model.device``: where to put the inputs.

        Example:
            >>> from dataclasses import dataclass
            >>> @dataclass
            ... class Cfg:
            ...     width: int = 2
            >>> class Small(KitModel):
            ...     def __init__(self, config):
            ...         super().__init__(config)
            ...         self.proj = nn.Linear(config.width, config.width)
            >>> Small(Cfg()).device
            device(type='cpu')
        """
        for tensor in (*self.parameters(), *self.buffers()):
            return tensor.device
        return torch.device("cpu")

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
        write_safetensors(state, directory / WEIGHTS_FILE, metadata={"model_type": self.model_type})
        for name, tok in self.tokenizers.items():
            atomic_write_text(directory / f"{TOKENIZER_PREFIX}{name}.json", tok.to_str())
        meta = {**self.identity(), "config": config_to_dict(self.config), "attnkit_version": __version__,
                "tokenizers": sorted(self.tokenizers), "tied": tied}
        atomic_write_text(directory / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")

    def identity(self) -> dict[str, Any]:
        """The keys of ``config.json`` that say which model class reads it: ``{"model_type": ...}`` (Hugging
        Face models add ``architectures``). A checkpoint is resumed only into a model of the same identity.

        Example:
            >>> from attnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
            >>> Seq2Seq(Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=6)).identity()
            {'model_type': 'seq2seq'}
        """
        return {"model_type": self.model_type}

    # -- load ------------------------------------------------------------------------------------------
    @classmethod
    def load(cls: type[M], directory: str | os.PathLike[str],
             map_location: str | torch.device | None = None) -> M:
        """Rebuild a model saved with ``save``: config, weights (checked against the config) and tokenizers.

        Called on a subclass, the directory's model_type must be that subclass's; called on ``KitModel`` itself,
        the model_type picks the registered class (prefer ``attnkit.load``, which also imports the model module).
        The model is returned in eval mode on ``map_location`` (default: CPU).

        Raises:
            CheckpointError: missing directory/files, unknown model_type or config fields, weights that do not
                match the config (missing/unexpected tensors and shape mismatches are listed).
        """
        directory = Path(directory)
        meta = read_model_config(directory)
        model_type = meta["model_type"]
        if cls is KitModel:
            target: type[KitModel] = model_class(model_type)
        else:
            if model_type != cls.model_type:
                raise CheckpointError(f"{directory} holds a {model_type!r} model, not {cls.model_type!r} ({cls.__name__})")
            target = cls
        weights = directory / WEIGHTS_FILE
        if not weights.exists():  # a directory in its place is reported by read_safetensors
            raise CheckpointError(f"model directory {str(directory)!r} is incomplete: {WEIGHTS_FILE} is missing")
        try:
            config = config_from_dict(target.config_class, meta["config"])
        except CheckpointError as err:  # name the whole path: the user may hold many config.json files
            raise CheckpointError(f"{directory / CONFIG_FILE}: {err}") from None
        check_config_sizes(config, str(directory / CONFIG_FILE))  # before anything is built from it
        model = build_checked(target, config, weights)  # refuses a config far larger than its weights
        model.load_weights(weights, tied=meta.get("tied") or {})
        model.tokenizers = _load_tokenizers(directory, meta.get("tokenizers"))
        if map_location is not None:
            model.to(map_location)
        model.eval()
        return model  # type: ignore[return-value]

    def load_weights(self, path: str | os.PathLike[str], tied: dict[str, str] | None = None) -> None:
        """Load a ``model.safetensors`` into this model after checking names and shapes (strict)."""
        found = read_safetensors(path, tied)
        expected = self.state_dict()
        check_state_dict(expected, found, str(path))
        with torch.no_grad():
            for name, t in expected.items():
                t.copy_(found[name].to(dtype=t.dtype))


def _load_tokenizers(directory: Path, names: list[str] | None) -> dict[str, Any]:
    if names is None:  # directories written without the list: take whatever files are there
        names = sorted(p.stem[len(TOKENIZER_PREFIX):] for p in directory.glob(f"{TOKENIZER_PREFIX}*.json"))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{directory / CONFIG_FILE}: 'tokenizers' must be a list of names. "
                              f"Received: {type(names).__name__}")
    missing = [n for n in names if not (directory / f"{TOKENIZER_PREFIX}{n}.json").is_file()]
    if missing:
        raise CheckpointError(f"model directory {str(directory)!r} is incomplete: missing tokenizer files "
                              f"{[f'{TOKENIZER_PREFIX}{n}.json' for n in missing]}")
    if not names:
        return {}
    # names read from config.json: each file must stay inside the model directory (no '..', no link out)
    paths = {n: confined_file(directory, f"{TOKENIZER_PREFIX}{n}.json", directory / CONFIG_FILE) for n in names}
    from attnkit.data.tokenize import Tokenizer  # the data layer sits below models; imported lazily

    return {n: Tokenizer.load(str(p)) for n, p in paths.items()}
