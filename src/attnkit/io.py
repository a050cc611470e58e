"""``attnkit.load(path)``: read back any saved attnkit model, whatever its type.

A directory's ``config.json`` names the model's type in ``model_type``, as Hugging Face spells it:
- attnkit's own layout (``model.save``): ``{"model_type": "seq2seq", "config": {...}, ...}``; the module that
  defines that type is imported only then (so loading a Seq2Seq never imports BERT), and the registered class
  rebuilds config, weights and tokenizers (see ``attnkit.models.base``);
- Hugging Face's layout (``Bert``, ``GPT`` and the BERT heads, written by attnkit or by ``transformers``):
  ``model_type`` ``"bert"`` or ``"gpt2"`` with ``architectures``, which picks the class.

Example::

    model = attnkit.load("attnkit-demo/model")
    model.translate(["3 de marzo de 2021"])      # ['2021-03-03']
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import torch

from attnkit.errors import CheckpointError
from attnkit.models.base import KitModel
from attnkit.storage import CONFIG_FILE, MODEL_REGISTRY, read_model_config

#: The module that defines each model_type of attnkit's own layout; imported lazily by ``load``.
MODEL_MODULES: dict[str, str] = {
    "seq2seq": "attnkit.models.seq2seq",
    "transformer": "attnkit.models.transformer",
    "captioner": "attnkit.models.captioner",
    "classifier": "attnkit.models.classifier",
}


def load(path: str | os.PathLike[str], map_location: str | torch.device | None = None) -> KitModel:
    """Load the model saved in directory ``path`` (by ``model.save`` or the trainer) in eval mode.

    Args:
        path: a directory with ``config.json``, ``model.safetensors`` and ``tokenizer_<name>.json`` files
            (``model.save``), a Hugging Face GPT-2 / BERT directory (``save_pretrained``'s layout), or a run
            directory written by ``attnkit train`` or the trainer (its best model is in ``model/``).
        map_location: device to put the model on (default: CPU).

    Returns:
        The model (a ``KitModel`` subclass chosen by the config's ``model_type``) with ``model.tokenizers`` set.

    Raises:
        CheckpointError: missing or incomplete directory, unknown model_type, config/weights mismatch.

    Example::

        model = attnkit.load("runs/dates")          # the run directory, or runs/dates/model
        print(model.summary())
    """
    path = Path(path)
    if not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
        path = path / "model"  # a run directory written by `attnkit train` or the trainer: its model is in model/
    hf = _hugging_face_class(path)
    if hf is not None:  # a directory written by save_pretrained (or by transformers)
        model = hf.from_pretrained(path)
        return (model.to(map_location) if map_location is not None else model).eval()
    model_type = read_model_config(path)["model_type"]
    if model_type not in MODEL_REGISTRY:
        module = MODEL_MODULES.get(model_type)
        if module is None:
            raise CheckpointError(f"{path}/config.json has unknown model_type {model_type!r}. "
                                  f"Expected one of: {sorted(set(MODEL_MODULES) | set(MODEL_REGISTRY) | {'bert', 'gpt2'})}")
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            raise CheckpointError(f"model_type {model_type!r} needs module {module}, which is not available: {err}") from err
        if model_type not in MODEL_REGISTRY:
            raise CheckpointError(f"module {module} did not register a model of model_type {model_type!r}")
    return MODEL_REGISTRY[model_type].load(path, map_location=map_location)


#: Hugging Face ``architectures`` / ``model_type`` names that ``load`` reads with ``from_pretrained``.
_HF_CLASSES = {
    "GPT2LMHeadModel": ("attnkit.models.gpt", "GPT"),
    "gpt2": ("attnkit.models.gpt", "GPT"),
    "BertForMaskedLM": ("attnkit.models.bert_heads", "BertForMaskedLM"),
    "BertForPreTraining": ("attnkit.models.bert_heads", "BertForPreTraining"),
    "BertForSequenceClassification": ("attnkit.models.bert_heads", "BertForSequenceClassification"),
    "bert": ("attnkit.models.bert", "Bert"),
}


def _hugging_face_class(path: Path):
    """The attnkit class for a Hugging Face directory (a ``model_type`` and either ``architectures`` or no
    attnkit ``config`` object), else None (attnkit's own layout)."""
    try:
        meta = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # read_model_config reports the problem
    if not isinstance(meta, dict) or "model_type" not in meta:
        return None  # read_model_config reports what is wrong with it
    if isinstance(meta.get("config"), dict) and "architectures" not in meta:
        return None  # attnkit's own layout
    names = [*(meta.get("architectures") or []), meta["model_type"]]
    for name in names:
        if name in _HF_CLASSES:
            module, cls = _HF_CLASSES[name]
            return getattr(importlib.import_module(module), cls)
    raise CheckpointError(f"{path}/config.json is a Hugging Face config of model_type {meta['model_type']!r}, "
                          f"which attnkit does not read. Expected one of: gpt2, bert")
