"""``attnkit.load(path)``: read back any saved attnkit model, whatever its kind.

The directory's ``config.json`` names the kind; the module that defines that kind is imported only then
(so loading a Seq2Seq never imports BERT), and the registered class rebuilds config, weights and tokenizers
(see ``attnkit.models.base``).

Example::

    model = attnkit.load("attnkit-demo/model")
    model.translate(["3 de marzo de 2021"])      # ['2021-03-03']
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch

from attnkit.errors import CheckpointError
from attnkit.models.base import MODEL_REGISTRY, KitModel, read_model_config

KIND_MODULES: dict[str, str] = {
    "seq2seq": "attnkit.models.seq2seq",
    "transformer": "attnkit.models.transformer",
    "bert": "attnkit.models.bert",
    "bert-mlm": "attnkit.models.bert",
    "bert-pretraining": "attnkit.models.bert",
    "bert-classifier": "attnkit.models.bert",
    "gpt": "attnkit.models.gpt",
    "captioner": "attnkit.models.captioner",
    "classifier": "attnkit.models.classifier",
    "gpt_lm": "attnkit.models.lm_adapters",
    "bert_pretraining": "attnkit.models.lm_adapters",
}
"""Which module defines each model kind; imported lazily by ``load``."""


def load(path: str | os.PathLike[str], map_location: str | torch.device | None = None) -> KitModel:
    """Load the model saved in directory ``path`` (by ``model.save`` or the trainer) in eval mode.

    Args:
        path: a directory with ``config.json``, ``model.safetensors`` and ``tokenizer_<name>.json`` files.
        map_location: device to put the model on (default: CPU).

    Returns:
        The model (a ``KitModel`` subclass chosen by the config's ``kind``) with ``model.tokenizers`` set.

    Raises:
        CheckpointError: missing or incomplete directory, unknown kind, config/weights mismatch.

    Example::

        model = attnkit.load("runs/dates/model")
        print(model.summary())
    """
    path = Path(path)
    kind = read_model_config(path)["kind"]
    if kind not in MODEL_REGISTRY:
        module = KIND_MODULES.get(kind)
        if module is None:
            raise CheckpointError(f"{path}/config.json has unknown model kind {kind!r}. "
                                  f"Expected one of: {sorted(set(KIND_MODULES) | set(MODEL_REGISTRY))}")
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            raise CheckpointError(f"model kind {kind!r} needs module {module}, which is not available: {err}") from err
        if kind not in MODEL_REGISTRY:
            raise CheckpointError(f"module {module} did not register a model of kind {kind!r}")
    return MODEL_REGISTRY[kind].load(path, map_location=map_location)
