"""The base of the models that read and write Hugging Face directories (``Bert``, ``GPT`` and their heads).

One directory format serves both libraries: ``save`` (= ``save_pretrained``) writes ``config.json``
(``transformers``' keys, with their ``model_type`` and ``architectures``, plus attnkit's ``config``), ``model.safetensors`` under
``transformers``' tensor names, and the tokenizer files; ``from_pretrained`` (= ``load``) reads a directory
written by attnkit or by ``transformers``. A subclass only says how its tensor names map (``hf_tensors`` /
``load_hf_tensors``), which ``model_type`` it reads and which special tokens its tokenizer has.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor

from attnkit.models import hub
from attnkit.models.base import KitModel
from attnkit.storage import atomic_directory, read_safetensors

P = TypeVar("P", bound="PretrainedModel")
_WARNED: set[str] = set()  # warnings given once per process, as transformers' logger.warning_once
PADDING_WITHOUT_MASK = (
    "input_ids hold the pad token (id {pad}) but no attention_mask was given: the padding is attended to and "
    "changes every real token's output. Pass attention_mask, e.g. model(**tok(texts, padding=True, "
    "return_tensors='pt')). (Shown once.)"
)


class PretrainedModel(KitModel):
    """A :class:`KitModel` with Hugging Face checkpoint I/O.

    Subclasses set ``hf_model_types`` (the ``model_type`` values they read), ``special_tokens`` (for
    ``tokenizer_config.json``) and implement :meth:`hf_tensors`, :meth:`load_hf_tensors` and
    ``config_class.from_hf_dict`` / ``config.to_hf_dict``.

    Attributes:
        tokenizer: the model's tokenizer (``model.tokenizers["text"]``, the Hugging Face name for it),
            or None.
    """

    hf_model_types: ClassVar[tuple[str, ...]] = ()
    special_tokens: ClassVar[dict[str, str]] = {}
    tokenizer_config: ClassVar[dict[str, Any]] = {}  # more keys for a written tokenizer_config.json

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._tokenizer_files: dict[str, bytes] = {}  # files of a loaded directory, copied on save

    @property
    def tokenizer(self) -> Any:
        return self.tokenizers.get("text")

    @tokenizer.setter
    def tokenizer(self, tok: Any) -> None:
        if tok is None:
            self.tokenizers.pop("text", None)
        else:
            self.tokenizers["text"] = tok

    def warn_if_padding_and_no_attention_mask(self, input_ids: Tensor, attention_mask: Tensor | None) -> None:
        """Warn once per process, as ``transformers`` does, when ``input_ids`` ``(B, T)`` start or end with
        ``config.pad_token_id`` and no ``attention_mask`` was given (padding would be attended to)."""
        pad = getattr(self.config, "pad_token_id", None)
        if attention_mask is not None or pad is None or "padding" in _WARNED or input_ids.shape[-1] == 0:
            return
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return
        if bool((input_ids[:, [-1, 0]] == pad).any()):
            _WARNED.add("padding")
            warnings.warn(PADDING_WITHOUT_MASK.format(pad=pad), UserWarning, stacklevel=5)  # the model call

    # -- what a subclass provides ------------------------------------------------------------------------
    def hf_config(self) -> dict:
        """The ``config.json`` dict ``transformers`` reads."""
        return self.config.to_hf_dict()

    def identity(self) -> dict[str, Any]:
        """``model_type`` and ``architectures`` as ``transformers`` writes them (``{"model_type": "gpt2", ...}``)."""
        hf = self.hf_config()
        return {"model_type": hf["model_type"], "architectures": hf.get("architectures")}

    def hf_tensors(self) -> dict[str, Tensor]:
        """The weights under ``transformers`` names."""
        raise NotImplementedError

    def load_hf_tensors(self, tensors: dict[str, Tensor], where: str = "checkpoint") -> None:
        """Copy tensors with ``transformers`` names into this model (raises ``CheckpointError`` listing
        missing, unexpected and misshaped tensors)."""
        raise NotImplementedError

    # -- files -------------------------------------------------------------------------------------------
    def write_files(self, directory: Path) -> None:
        """Write the Hugging Face files into an existing directory (``save`` makes it atomic)."""
        hub.write_hf_files(self, Path(directory))

    def load_weights(self, path: str | os.PathLike[str], tied: dict[str, str] | None = None) -> None:
        """Load a ``model.safetensors`` written by :meth:`write_files` (``transformers`` names; the trainer's
        checkpoints and best model use it)."""
        self.load_hf_tensors(read_safetensors(path), where=str(path))

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """:meth:`save` into ``path`` leaving the directory's other files alone (as ``transformers`` does):
        each file is written whole before it replaces the old one, and a failure writes nothing."""
        with atomic_directory(path, keep_others=True) as tmp:
            self.write_files(tmp)
        return Path(path)

    @classmethod
    def from_pretrained(cls: type[P], path: str | os.PathLike, *, ignore_mismatched_sizes: bool = False,
                        **config_overrides: Any) -> P:
        """Load a Hugging Face directory (``config.json``, ``model.safetensors``, ``tokenizer.json`` when
        present) written by attnkit or ``transformers``. Returns the model in eval mode.

        ``config_overrides`` replace config fields (unknown names raise ``TypeError``). A head the checkpoint
        lacks, or a classifier whose size ``num_labels=`` changes, is newly initialised with a warning, as in
        ``transformers`` (train it before use); ``ignore_mismatched_sizes=True`` does the same for any head
        whose shape differs from the checkpoint's.

        Example:
            >>> model = GPT.from_pretrained("path/to/gpt2")  # doctest: +SKIP
        """
        return hub.load_pretrained(cls, path, config_overrides, ignore_mismatched_sizes=ignore_mismatched_sizes)

    @classmethod
    def load(cls: type[P], directory: str | os.PathLike[str], map_location: str | torch.device | None = None) -> P:
        """:meth:`from_pretrained`, then moved to ``map_location`` (what ``attnkit.load`` calls)."""
        model = cls.from_pretrained(directory)
        return model.to(map_location) if map_location is not None else model
