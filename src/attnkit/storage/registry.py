"""The model registry: ``kind`` (the name in a saved ``config.json``) -> model class."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from attnkit.errors import CheckpointError

MODEL_REGISTRY: dict[str, type] = {}
"""Model classes by ``kind``; filled by ``@register_model`` when a model module is imported."""

C = TypeVar("C", bound=type)


def register_model(cls: C) -> C:
    """Class decorator: record ``cls`` in ``MODEL_REGISTRY`` under ``cls.kind``.

    Args:
        cls: a class with a non-empty ``str`` attribute ``kind`` and a ``@dataclass`` ``config_class``.

    Returns:
        ``cls`` itself.

    Raises:
        TypeError: ``kind`` or ``config_class`` missing; ValueError: ``kind`` taken by another class.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class DocConfig:
        ...     width: int = 8
        >>> @register_model
        ... class DocModel:
        ...     kind = "doc-storage-model"
        ...     config_class = DocConfig
        >>> model_class("doc-storage-model") is DocModel
        True
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


def model_class(kind: str) -> type:
    """The registered class for ``kind`` (its module must have been imported; ``attnkit.load`` does that).

    Args:
        kind: the ``kind`` written in a model's ``config.json``.

    Returns:
        The class registered under ``kind``.

    Raises:
        CheckpointError: no class is registered under ``kind``.

    Example:
        >>> model_class("no-such-kind")
        Traceback (most recent call last):
        ...
        attnkit.errors.CheckpointError: unknown model kind 'no-such-kind'. Expected one of: [...]
    """
    try:
        return MODEL_REGISTRY[kind]
    except KeyError:
        raise CheckpointError(f"unknown model kind {kind!r}. Expected one of: {sorted(MODEL_REGISTRY)}") from None
