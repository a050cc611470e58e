"""The model registry: ``model_type`` (the name in a saved attnkit ``config.json``) -> model class.

Only models saved in attnkit's own layout register; Bert and GPT are saved in Hugging Face's layout and are
found from its ``architectures`` (see ``attnkit.io``)."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from attnkit.errors import CheckpointError

MODEL_REGISTRY: dict[str, type] = {}
"""Model classes by ``model_type``; filled by ``@register_model`` when a model module is imported."""

C = TypeVar("C", bound=type)


def register_model(cls: C) -> C:
    """Class decorator: record ``cls`` in ``MODEL_REGISTRY`` under ``cls.model_type``.

    Args:
        cls: a class with a non-empty ``str`` attribute ``model_type`` and a ``@dataclass`` ``config_class``.

    Returns:
        ``cls`` itself.

    Raises:
        TypeError: ``model_type`` or ``config_class`` missing; ValueError: ``model_type`` taken by another class.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class DocConfig:
        ...     width: int = 8
        >>> @register_model
        ... class DocModel:
        ...     model_type = "doc-storage-model"
        ...     config_class = DocConfig
        >>> model_class("doc-storage-model") is DocModel
        True
    """
    model_type = getattr(cls, "model_type", None)
    if not isinstance(model_type, str) or not model_type:
        raise TypeError(f"@register_model needs a class with a non-empty str `model_type`. "
                        f"Received: {model_type!r} on {cls.__name__}")
    if not dataclasses.is_dataclass(getattr(cls, "config_class", None)):
        raise TypeError(f"@register_model needs `config_class` to be a @dataclass on {cls.__name__}. "
                        f"Received: {getattr(cls, 'config_class', None)!r}")
    known = MODEL_REGISTRY.get(model_type)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"model_type {model_type!r} is already registered by {known.__module__}.{known.__qualname__}")
    MODEL_REGISTRY[model_type] = cls
    return cls


def model_class(model_type: str) -> type:
    """The registered class for ``model_type`` (its module must have been imported; ``attnkit.load`` does that).

    Args:
        model_type: the ``model_type`` written in a model's ``config.json``.

    Returns:
        The class registered under ``model_type``.

    Raises:
        CheckpointError: no class is registered under ``model_type``.

    Example:
        >>> model_class("no-such-type")
        Traceback (most recent call last):
        ...
        attnkit.errors.CheckpointError: unknown model_type 'no-such-type'. Expected one of: [...]
    """
    try:
        return MODEL_REGISTRY[model_type]
    except KeyError:
        raise CheckpointError(f"unknown model_type {model_type!r}. Expected one of: {sorted(MODEL_REGISTRY)}") from None
