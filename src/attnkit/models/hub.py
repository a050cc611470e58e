"""Hugging Face model directories: read and write ``config.json`` + ``model.safetensors``
(+ ``tokenizer.json``), translate tensor names between ``transformers`` and attnkit
(:data:`GPT_NAMES`, :data:`BERT_NAMES`), and :class:`PretrainedModel`, the base of the models that read and
write them (``Bert``, ``GPT`` and their heads).

One directory format serves both libraries: ``save`` (= ``save_pretrained``) writes ``config.json``
(``transformers``' keys, with their ``model_type`` and ``architectures``, plus attnkit's ``config``), ``model.safetensors`` under
``transformers``' tensor names, and the tokenizer files; ``from_pretrained`` (= ``load``) reads a directory
written by attnkit or by ``transformers``. A subclass only says how its tensor names map (``hf_tensors`` /
``load_hf_tensors``), which ``model_type`` it reads and which special tokens its tokenizer has.

A directory written by ``transformers``' ``save_pretrained`` loads into attnkit and the other way
round. Names differ (attnkit fuses BERT's query/key/value projections into one ``qkv`` matrix; GPT-2
stores its ``Conv1D`` weights as ``(in, out)``, transposed with respect to ``nn.Linear``), so each
model describes its names with a table of rows ``(attnkit name, transformers name, transpose)``
where ``{i}`` stands for a layer index.

Everything is local: no network, never pickle (``pytorch_model.bin`` is refused).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor

from attnkit.errors import CheckpointError
from attnkit.models._checks import check_config_sizes
from attnkit.models.base import KitModel
from attnkit.models.hub_names import GPT_NAMES, NameTable
from attnkit.storage import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_text,
    build_checked,
    config_to_dict,
    confined_file,
    read_json,
    read_safetensors,
    write_safetensors,
)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
TOKENIZER_NAME = "tokenizer.json"
#: Tokenizer-side files copied unchanged from a loaded directory to a saved one.
TOKENIZER_FILES = (
    TOKENIZER_NAME,
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)
#: Listed names are cut after this many entries in error messages.
_MAX_LISTED = 12



# ----------------------------------------------------------------------------- reading


def _check_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"Expected a model directory. Received: {str(path)!r} is not a directory")
    return path


def read_config(path: str | os.PathLike) -> dict:
    """Read ``config.json`` of the model directory ``path`` into a dict."""
    path = _check_dir(path)
    file = path / CONFIG_NAME
    if not file.is_file():
        raise CheckpointError(f"{path}: no {CONFIG_NAME} (expected a Hugging Face model directory)")
    return read_json(file, dict)


def read_weights(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read every tensor of ``model.safetensors`` (or of the shards listed by
    ``model.safetensors.index.json``) in the directory ``path``."""
    path = _check_dir(path)
    if (path / WEIGHTS_NAME).is_file():
        return read_safetensors(path / WEIGHTS_NAME)
    if (path / WEIGHTS_INDEX_NAME).is_file():
        index = read_json(path / WEIGHTS_INDEX_NAME, dict)
        if not isinstance(index.get("weight_map"), dict):
            raise CheckpointError(f"{path / WEIGHTS_INDEX_NAME}: expected an object with a 'weight_map' object")
        tensors: dict[str, Tensor] = {}
        for shard in sorted(set(map(str, index["weight_map"].values()))):  # names read from the index: confined
            tensors.update(read_safetensors(confined_file(path, shard, path / WEIGHTS_INDEX_NAME)))
        return tensors
    if (path / "pytorch_model.bin").exists():
        raise CheckpointError(
            f"{path}: found only pytorch_model.bin; attnkit reads safetensors, never pickle. Convert it "
            "with transformers (model.save_pretrained(dir, safe_serialization=True))"
        )
    raise CheckpointError(f"{path}: no {WEIGHTS_NAME}")


def read_tokenizer_files(path: str | os.PathLike) -> dict[str, bytes]:
    """The tokenizer files present in ``path`` (see :data:`TOKENIZER_FILES`), name -> bytes."""
    path = Path(path)
    return {name: (path / name).read_bytes() for name in TOKENIZER_FILES if (path / name).is_file()}


def check_model_type(config: dict, supported: Iterable[str], model: str, path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` unless ``config["model_type"]`` is one of ``supported``."""
    supported = tuple(supported)
    got = config.get("model_type")
    if got not in supported:
        raise CheckpointError(
            f"{path}: unsupported model_type for {model}. Expected one of {list(supported)}. Received: {got!r}"
        )


# ----------------------------------------------------------------------------- names


def _pattern(template: str) -> re.Pattern:
    return re.compile("^" + re.escape(template).replace(r"\{i\}", r"(\d+)") + "$")


def rename(name: str, table: NameTable, to_hf: bool) -> tuple[str, bool] | None:
    """Translate one tensor name with ``table``; returns ``(new name, transpose)`` or None if no
    row matches.

    Example:
        >>> rename("blocks.3.attn.qkv.weight", [("blocks.{i}.attn.qkv.weight", "h.{i}.attn.c_attn.weight", True)], True)
        ('h.3.attn.c_attn.weight', True)
    """
    src, dst = (0, 1) if to_hf else (1, 0)
    for row in table:
        m = _pattern(row[src]).match(name)
        if m:
            out = row[dst]
            for group in m.groups():
                out = out.replace("{i}", group, 1)
            return out, row[2]
    return None


def convert(tensors: dict[str, Tensor], table: NameTable, to_hf: bool) -> tuple[dict[str, Tensor], list[str]]:
    """Rename (and transpose where the table says so) every tensor; returns the converted dict and
    the names no row matched."""
    out: dict[str, Tensor] = {}
    unmatched: list[str] = []
    for name, t in tensors.items():
        r = rename(name, table, to_hf)
        if r is None:
            unmatched.append(name)
        else:
            out[r[0]] = t.t() if r[1] else t
    return out, unmatched


def adapt_prefix(found: dict[str, Tensor], expected: Iterable[str], prefix: str) -> dict[str, Tensor]:
    """Make a checkpoint's names agree with a model on the backbone prefix (``"bert."``,
    ``"transformer."``): a bare backbone checkpoint (``BertModel``) loads into a model with heads and
    a checkpoint with heads loads into a bare backbone."""
    expected = list(expected)
    model_has = any(k.startswith(prefix) for k in expected)
    ckpt_has = any(k.startswith(prefix) for k in found)
    if model_has and not ckpt_has:
        roots = {k[len(prefix) :].split(".")[0] for k in expected if k.startswith(prefix)}
        return {(prefix + k if k.split(".")[0] in roots else k): t for k, t in found.items()}
    if ckpt_has and not model_has:
        return {(k[len(prefix) :] if k.startswith(prefix) else k): t for k, t in found.items()}
    return found


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return f"[{shown}{more}]"


def match_checkpoint(
    expected: dict[str, tuple[int, ...]],
    found: dict[str, Tensor],
    *,
    optional: Callable[[str], bool],
    ignorable: Callable[[str], bool],
    where: str,
    hint: str = "",
) -> list[str]:
    """Compare a checkpoint's tensors with what a model expects (both with ``transformers`` names).

    Args:
        expected: name -> shape the model's config implies.
        found: the checkpoint's tensors.
        optional: names that may be missing (a new head, a tied output matrix); they keep their
            fresh initialisation.
        ignorable: names that may be present without being used (another head of the same family,
            buffers older checkpoints stored).
        where: the directory, for the message. hint: appended to the message (e.g. the config).

    Returns:
        The optional names that were missing.

    Raises:
        CheckpointError: listing every missing, unexpected and wrongly shaped tensor.
    """
    missing = sorted(k for k in expected if k not in found)
    unexpected = sorted(k for k in found if k not in expected and not ignorable(k))
    mismatched = [
        f"{k}: checkpoint {tuple(found[k].shape)}, config implies {tuple(expected[k])}"
        for k in sorted(expected)
        if k in found and tuple(found[k].shape) != tuple(expected[k])
    ]
    required_missing = [k for k in missing if not optional(k)]
    problems = []
    if required_missing:
        problems.append(f"missing tensors {_listing(required_missing)}")
    if unexpected:
        problems.append(f"unexpected tensors {_listing(unexpected)}")
    if mismatched:
        problems.append(f"shapes that do not match config.json {_listing(mismatched)}")
    if problems:
        raise CheckpointError(f"{where}: checkpoint does not match the model: " + "; ".join(problems) + hint)
    return [k for k in missing if optional(k)]


# ----------------------------------------------------------------------------- writing


def write_hf_files(model, directory: Path) -> None:
    """Write ``model`` (a :class:`PretrainedModel`) into the existing ``directory``:
    ``config.json`` (``transformers``' keys, ``model_type`` and ``architectures`` among them, plus attnkit's
    ``config``), ``model.safetensors``
    under ``transformers`` names, the tokenizer files (the current tokenizer as ``tokenizer.json``, other
    files of a loaded directory copied, ``tokenizer_config.json`` made from the special tokens when absent).
    Not atomic by itself: ``KitModel.save`` writes into a temporary directory renamed into place."""
    from attnkit import __version__

    config = {**model.hf_config(), "config": config_to_dict(model.config),
              "attnkit_version": __version__}
    atomic_write_text(directory / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True) + "\n")
    # own, contiguous copies: safetensors refuses views and tensors that share memory
    data = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.hf_tensors().items()}
    write_safetensors(data, directory / WEIGHTS_NAME, metadata={"format": "pt"})
    files = dict(model._tokenizer_files)
    tok = model.tokenizer
    if tok is not None:
        text = tok.to_str()
        if TOKENIZER_NAME not in files or json.loads(files[TOKENIZER_NAME]) != json.loads(text):
            files[TOKENIZER_NAME] = text.encode("utf-8")  # a loaded tokenizer.json is kept byte for byte
        if "tokenizer_config.json" not in files:
            present = {k: v for k, v in model.special_tokens.items() if tok.token_to_id(v) is not None}
            tok_config = {"tokenizer_class": "PreTrainedTokenizerFast", **present, **model.tokenizer_config}
            files["tokenizer_config.json"] = (json.dumps(tok_config, indent=2) + "\n").encode("utf-8")
    for name, content in files.items():
        atomic_write_bytes(directory / name, content)


def load_pretrained(cls, path: str | os.PathLike, config_overrides: dict | None = None, *,
                    ignore_mismatched_sizes: bool = False):
    """Build ``cls`` from the Hugging Face directory ``path`` (see ``PretrainedModel.from_pretrained``)."""
    overrides = dict(config_overrides or {})
    known = {f.name for f in dataclasses.fields(cls.config_class)}
    if set(overrides) - known:
        raise TypeError(f"Expected config fields of {cls.config_class.__name__} as keyword arguments. Received: "
                        f"{sorted(set(overrides) - known)} (fields: {sorted(known)})")
    config_dict = read_config(path)
    check_model_type(config_dict, cls.hf_model_types, cls.__name__, path)
    config = cls.config_class.from_hf_dict({**config_dict, **overrides})
    check_config_sizes(config, str(Path(path) / CONFIG_NAME))  # before anything is built from it
    single = Path(path) / WEIGHTS_NAME
    # a config.json claiming a huge vocabulary is refused before anything is allocated
    model = build_checked(cls, config, single) if single.is_file() else cls(config)
    tensors = read_weights(path)
    resizable = getattr(model, "is_head_tensor", lambda name: False)
    if not ignore_mismatched_sizes:  # only the classifier num_labels= resizes
        resizable = (lambda name: name.startswith("classifier.")) if "num_labels" in overrides else (lambda name: False)
    expected = {k: tuple(v.shape) for k, v in model.hf_tensors().items()}
    for name in [k for k, t in tensors.items() if resizable(k) and k in expected and tuple(t.shape) != expected[k]]:
        del tensors[name]  # a new head of the requested size, initialised afresh (listed by load_hf_tensors)
    model.load_hf_tensors(tensors, where=str(path))
    model._tokenizer_files = read_tokenizer_files(path)
    if TOKENIZER_NAME in model._tokenizer_files:
        from attnkit.data.tokenize import Tokenizer  # the data layer sits below models; imported lazily

        model.tokenizer = Tokenizer.from_bytes(model._tokenizer_files[TOKENIZER_NAME])
        model.tokenizer.model_max_length = _model_max_length(model._tokenizer_files, config_dict)
    return model.eval()


def _model_max_length(files: dict[str, bytes], config: dict) -> int | None:
    """The longest input, as ``transformers`` reads it: ``tokenizer_config.json``'s ``model_max_length``
    (values of 1e9 or more mean "none"), else the position table of ``config.json``."""
    try:
        value = json.loads(files.get("tokenizer_config.json", b"{}")).get("model_max_length")
    except (json.JSONDecodeError, AttributeError):
        value = None
    if isinstance(value, int) and 0 < value < 10**9:
        return value
    value = config.get("max_position_embeddings", config.get("n_positions"))
    return value if isinstance(value, int) and value > 0 else None


def hf_state(module: torch.nn.Module, table: NameTable, skip: Callable[[str], bool] = lambda k: False):
    """The module's parameters under ``transformers`` names (tensors ``skip`` selects are left out)."""
    state = {k: v for k, v in module.state_dict().items() if not skip(k)}
    out, unmatched = convert(state, table, to_hf=True)
    if unmatched:  # a programming error: every attnkit tensor must have a row
        raise RuntimeError(f"no transformers name for {unmatched}")
    return out


# ----------------------------------------------------------------------------- GPT-2 (attnkit.models.gpt)

#: ``config.json`` settings of GPT-2 that attnkit does not implement: (key, the unsupported value).
GPT_UNSUPPORTED = (("add_cross_attention", True), ("scale_attn_by_inverse_layer_idx", True), ("scale_attn_weights", False))


def gpt_config_from_hf(cls: type, config: dict):
    """``GPTConfig.from_hf_dict``: ``cls`` from a ``transformers`` GPT-2 ``config.json`` dict (unknown keys are
    ignored; :data:`GPT_UNSUPPORTED` settings and invalid values raise ``CheckpointError``)."""
    for key, unsupported in GPT_UNSUPPORTED:
        if config.get(key) == unsupported:
            raise CheckpointError(f"config.json: unsupported GPT-2 option {key}={unsupported}")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in config.items() if k in names})
    except ValueError as e:
        raise CheckpointError(f"config.json: {e}") from e


def gpt_hf_tensors(model: torch.nn.Module) -> dict[str, Tensor]:
    """``GPT.hf_tensors``: the weights under ``transformers`` GPT-2 names (the tied output matrix left out)."""
    tied = model.config.tie_word_embeddings
    return hf_state(model, GPT_NAMES, skip=lambda k: tied and k == "lm_head.weight")


def load_gpt_hf_tensors(model: torch.nn.Module, tensors: dict[str, Tensor], where: str = "checkpoint") -> None:
    """``GPT.load_hf_tensors``: copy tensors with ``transformers`` GPT-2 names (``GPT2LMHeadModel`` or
    ``GPT2Model``) into ``model``."""
    expected = {k: tuple(v.shape) for k, v in gpt_hf_tensors(model).items()}
    found = adapt_prefix(tensors, expected, "transformer.")
    c = model.config
    match_checkpoint(
        expected, found, optional=lambda k: False,
        ignorable=lambda k: k.endswith((".attn.bias", ".attn.masked_bias")) or (c.tie_word_embeddings
                                                                                and k == "lm_head.weight"),
        where=where,
        hint=f" (config: n_layer={c.n_layer}, n_embd={c.n_embd}, vocab_size={c.vocab_size}, "
        f"n_positions={c.n_positions})",
    )
    ours, _ = convert({k: found[k] for k in expected}, GPT_NAMES, to_hf=False)
    missing, _ = model.load_state_dict(ours, strict=False)
    assert set(missing) <= {"lm_head.weight"}, missing


# ----------------------------------------------------------------------------- the base of Bert and GPT

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

    def summary(self, seq_len: int = 8, batch_size: int = 1, **kwargs) -> str:
        """Print and return the layer table for an example input of ``(batch_size, seq_len)`` token ids."""
        device = next(self.parameters()).device
        ids = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)  # (B, T)
        # attnkit's own example input comes with its mask: the once-per-process padding warning stays the user's
        kwargs.setdefault("attention_mask", torch.ones_like(ids))
        return super().summary(ids, **kwargs)

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
        write_hf_files(self, Path(directory))

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
        return load_pretrained(cls, path, config_overrides, ignore_mismatched_sizes=ignore_mismatched_sizes)

    @classmethod
    def load(cls: type[P], directory: str | os.PathLike[str], map_location: str | torch.device | None = None) -> P:
        """:meth:`from_pretrained`, then moved to ``map_location`` (what ``attnkit.load`` calls)."""
        model = cls.from_pretrained(directory)
        return model.to(map_location) if map_location is not None else model
