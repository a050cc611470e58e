"""Hugging Face model directories: read and write ``config.json`` + ``model.safetensors``
(+ ``tokenizer.json``), and translate tensor names between ``transformers`` and attnkit
(:data:`GPT_NAMES`, :data:`BERT_NAMES`).

A directory written by ``transformers``' ``save_pretrained`` loads into attnkit and the other way
round. Names differ (attnkit fuses BERT's query/key/value projections into one ``qkv`` matrix; GPT-2
stores its ``Conv1D`` weights as ``(in, out)``, transposed with respect to ``nn.Linear``), so each
model describes its names with a table of rows ``(attnkit name, transformers name, transpose)``
where ``{i}`` stands for a layer index.

Everything is local: no network, never pickle (``pytorch_model.bin`` is refused).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from attnkit.errors import CheckpointError

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

NameTable = list[tuple[str, str, bool]]


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
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{file}: not valid JSON ({e})") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{file}: expected a JSON object. Received: {type(config).__name__}")
    return config


def read_weights(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read every tensor of ``model.safetensors`` (or of the shards listed by
    ``model.safetensors.index.json``) in the directory ``path``."""
    path = _check_dir(path)
    if (path / WEIGHTS_NAME).is_file():
        return load_file(path / WEIGHTS_NAME)
    if (path / WEIGHTS_INDEX_NAME).is_file():
        index = json.loads((path / WEIGHTS_INDEX_NAME).read_text(encoding="utf-8"))
        tensors: dict[str, Tensor] = {}
        for shard in sorted(set(index["weight_map"].values())):
            tensors.update(load_file(path / shard))
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


def load_tokenizer(files: dict[str, bytes]):
    """A ``tokenizers.Tokenizer`` from the bytes of ``tokenizer.json``, or None if absent."""
    if TOKENIZER_NAME not in files:
        return None
    from tokenizers import Tokenizer

    return Tokenizer.from_str(files[TOKENIZER_NAME].decode("utf-8"))


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


# ----------------------------------------------------------------------------- model tables

#: attnkit name <-> transformers name (GPT2LMHeadModel), transpose (GPT-2's Conv1D stores (in, out)).
GPT_NAMES: NameTable = [
    ("wte.weight", "transformer.wte.weight", False),
    ("wpe.weight", "transformer.wpe.weight", False),
    ("blocks.{i}.ln_1.weight", "transformer.h.{i}.ln_1.weight", False),
    ("blocks.{i}.ln_1.bias", "transformer.h.{i}.ln_1.bias", False),
    ("blocks.{i}.attn.qkv.weight", "transformer.h.{i}.attn.c_attn.weight", True),
    ("blocks.{i}.attn.qkv.bias", "transformer.h.{i}.attn.c_attn.bias", False),
    ("blocks.{i}.attn.proj.weight", "transformer.h.{i}.attn.c_proj.weight", True),
    ("blocks.{i}.attn.proj.bias", "transformer.h.{i}.attn.c_proj.bias", False),
    ("blocks.{i}.ln_2.weight", "transformer.h.{i}.ln_2.weight", False),
    ("blocks.{i}.ln_2.bias", "transformer.h.{i}.ln_2.bias", False),
    ("blocks.{i}.mlp.fc_in.weight", "transformer.h.{i}.mlp.c_fc.weight", True),
    ("blocks.{i}.mlp.fc_in.bias", "transformer.h.{i}.mlp.c_fc.bias", False),
    ("blocks.{i}.mlp.fc_out.weight", "transformer.h.{i}.mlp.c_proj.weight", True),
    ("blocks.{i}.mlp.fc_out.bias", "transformer.h.{i}.mlp.c_proj.bias", False),
    ("ln_f.weight", "transformer.ln_f.weight", False),
    ("ln_f.bias", "transformer.ln_f.bias", False),
    ("lm_head.weight", "lm_head.weight", False),
]


#: BERT: attnkit name <-> transformers name inside the encoder. attnkit fuses query/key/value into one
# matrix; the "q"/"k"/"v" rows name its three row blocks (see split_qkv / fuse_qkv).
BERT_ENCODER_NAMES: NameTable = [
    ("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight", False),
    ("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight", False),
    ("embeddings.token_type_embeddings.weight", "embeddings.token_type_embeddings.weight", False),
    ("embeddings.norm.weight", "embeddings.LayerNorm.weight", False),
    ("embeddings.norm.bias", "embeddings.LayerNorm.bias", False),
    *[
        (f"layers.{{i}}.attn.{a}.{p}", f"encoder.layer.{{i}}.attention.self.{b}.{p}", False)
        for a, b in (("q", "query"), ("k", "key"), ("v", "value"))
        for p in ("weight", "bias")
    ],
    *[
        (f"layers.{{i}}.{a}.{p}", f"encoder.layer.{{i}}.{b}.{p}", False)
        for a, b in (
            ("attn.proj", "attention.output.dense"),
            ("ln_1", "attention.output.LayerNorm"),
            ("mlp.fc_in", "intermediate.dense"),
            ("mlp.fc_out", "output.dense"),
            ("ln_2", "output.LayerNorm"),
        )
        for p in ("weight", "bias")
    ],
    ("pooler.dense.weight", "pooler.dense.weight", False),
    ("pooler.dense.bias", "pooler.dense.bias", False),
]
BERT_HEAD_NAMES: NameTable = [
    ("mlm.transform.weight", "cls.predictions.transform.dense.weight", False),
    ("mlm.transform.bias", "cls.predictions.transform.dense.bias", False),
    ("mlm.norm.weight", "cls.predictions.transform.LayerNorm.weight", False),
    ("mlm.norm.bias", "cls.predictions.transform.LayerNorm.bias", False),
    ("mlm.decoder.bias", "cls.predictions.bias", False),
    ("nsp.weight", "cls.seq_relationship.weight", False),
    ("nsp.bias", "cls.seq_relationship.bias", False),
    ("classifier.weight", "classifier.weight", False),
    ("classifier.bias", "classifier.bias", False),
]
BERT_NAMES = BERT_ENCODER_NAMES + [(f"bert.{a}", f"bert.{b}", t) for a, b, t in BERT_ENCODER_NAMES] + BERT_HEAD_NAMES


def split_qkv(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Cut every fused ``.attn.qkv.`` tensor (rows ``[W_q; W_k; W_v]``) into ``.attn.q.``, ``.attn.k.``,
    ``.attn.v.`` pieces, the names :data:`BERT_NAMES` maps to ``query``/``key``/``value``."""
    out = {}
    for k, v in state.items():
        if ".attn.qkv." in k:
            for part, chunk in zip("qkv", v.chunk(3, dim=0), strict=True):
                out[k.replace(".attn.qkv.", f".attn.{part}.")] = chunk
        else:
            out[k] = v
    return out


def fuse_qkv(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of :func:`split_qkv`: concatenate ``q``, ``k``, ``v`` pieces along rows."""
    out = {k: v for k, v in state.items() if ".attn.q." not in k and ".attn.k." not in k and ".attn.v." not in k}
    for k, v in state.items():
        if ".attn.q." in k:
            parts = [v, state[k.replace(".attn.q.", ".attn.k.")], state[k.replace(".attn.q.", ".attn.v.")]]
            out[k.replace(".attn.q.", ".attn.qkv.")] = torch.cat(parts, dim=0)
    return out



# ----------------------------------------------------------------------------- writing


def write_dir(
    path: str | os.PathLike,
    config: dict,
    tensors: dict[str, Tensor],
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write ``config.json``, ``model.safetensors`` and ``extra_files`` into the directory ``path``.

    Atomic: everything is written into a temporary directory beside ``path`` first; a new directory
    is then renamed into place, and into an existing one each file is moved with ``os.replace``
    (other files there are left alone). A failure never leaves half-written files at ``path``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"Expected a directory path for save_pretrained. Received: {str(path)!r} is a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        # Own, contiguous copies: safetensors refuses views and tensors that share memory.
        data = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
        save_file(data, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        for name, content in (extra_files or {}).items():
            (tmp / name).write_bytes(content)
        if not path.exists():
            os.replace(tmp, path)
            return path
        for f in tmp.iterdir():
            os.replace(f, path / f.name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def hf_state(module: torch.nn.Module, table: NameTable, skip: Callable[[str], bool] = lambda k: False):
    """The module's parameters under ``transformers`` names (tensors ``skip`` selects are left out)."""
    state = {k: v for k, v in module.state_dict().items() if not skip(k)}
    out, unmatched = convert(state, table, to_hf=True)
    if unmatched:  # a programming error: every attnkit tensor must have a row
        raise RuntimeError(f"no transformers name for {unmatched}")
    return out
