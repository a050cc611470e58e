"""Name tables between ``transformers`` checkpoints and attnkit's one block family
(:mod:`attnkit.models.blocks`): rows ``(attnkit name, transformers name, transpose)`` where ``{i}`` stands
for a layer index. GPT-2 stores its ``Conv1D`` weights as ``(in, out)``, transposed with respect to
``nn.Linear``; BERT keeps query, key and value apart where attnkit packs them.
"""

from __future__ import annotations

import torch
from torch import Tensor

NameTable = list[tuple[str, str, bool]]

#: attnkit name <-> transformers name (GPT2LMHeadModel), transpose (GPT-2's Conv1D stores (in, out)).
GPT_NAMES: NameTable = [
    ("wte.weight", "transformer.wte.weight", False),
    ("wpe.weight", "transformer.wpe.weight", False),
    ("blocks.{i}.self_attn_norm.weight", "transformer.h.{i}.ln_1.weight", False),
    ("blocks.{i}.self_attn_norm.bias", "transformer.h.{i}.ln_1.bias", False),
    ("blocks.{i}.self_attn.in_proj_weight", "transformer.h.{i}.attn.c_attn.weight", True),
    ("blocks.{i}.self_attn.in_proj_bias", "transformer.h.{i}.attn.c_attn.bias", False),
    ("blocks.{i}.self_attn.output_dense.weight", "transformer.h.{i}.attn.c_proj.weight", True),
    ("blocks.{i}.self_attn.output_dense.bias", "transformer.h.{i}.attn.c_proj.bias", False),
    ("blocks.{i}.ff_norm.weight", "transformer.h.{i}.ln_2.weight", False),
    ("blocks.{i}.ff_norm.bias", "transformer.h.{i}.ln_2.bias", False),
    ("blocks.{i}.ff.fc_in.weight", "transformer.h.{i}.mlp.c_fc.weight", True),
    ("blocks.{i}.ff.fc_in.bias", "transformer.h.{i}.mlp.c_fc.bias", False),
    ("blocks.{i}.ff.fc_out.weight", "transformer.h.{i}.mlp.c_proj.weight", True),
    ("blocks.{i}.ff.fc_out.bias", "transformer.h.{i}.mlp.c_proj.bias", False),
    ("ln_f.weight", "transformer.ln_f.weight", False),
    ("ln_f.bias", "transformer.ln_f.bias", False),
    ("lm_head.weight", "lm_head.weight", False),
]


#: BERT: attnkit name <-> transformers name inside the encoder. attnkit's attention packs query/key/value
# into one matrix (``in_proj_weight``); the "q"/"k"/"v" rows name its three row blocks (see split_qkv /
# fuse_qkv).
BERT_ENCODER_NAMES: NameTable = [
    ("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight", False),
    ("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight", False),
    ("embeddings.token_type_embeddings.weight", "embeddings.token_type_embeddings.weight", False),
    ("embeddings.norm.weight", "embeddings.LayerNorm.weight", False),
    ("embeddings.norm.bias", "embeddings.LayerNorm.bias", False),
    *[
        (f"layers.{{i}}.self_attn.{a}.{p}", f"encoder.layer.{{i}}.attention.self.{b}.{p}", False)
        for a, b in (("q", "query"), ("k", "key"), ("v", "value"))
        for p in ("weight", "bias")
    ],
    *[
        (f"layers.{{i}}.{a}.{p}", f"encoder.layer.{{i}}.{b}.{p}", False)
        for a, b in (
            ("self_attn.output_dense", "attention.output.dense"),
            ("self_attn_norm", "attention.output.LayerNorm"),
            ("ff.fc_in", "intermediate.dense"),
            ("ff.fc_out", "output.dense"),
            ("ff_norm", "output.LayerNorm"),
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


_PACKED = {"weight": ".self_attn.in_proj_weight", "bias": ".self_attn.in_proj_bias"}


def split_qkv(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Cut every packed ``.self_attn.in_proj_weight`` / ``in_proj_bias`` (rows ``[W_q; W_k; W_v]``) into
    ``.self_attn.q.weight``, ``.self_attn.k.weight``, ... pieces, the names :data:`BERT_NAMES` maps to
    ``query``/``key``/``value``.

    Example:
        >>> out = split_qkv({"layers.0.self_attn.in_proj_bias": torch.arange(6.0)})
        >>> {k: v.tolist() for k, v in out.items()}["layers.0.self_attn.k.bias"]
        [2.0, 3.0]
    """
    out = {}
    for k, v in state.items():
        kind = next((p for p, suffix in _PACKED.items() if k.endswith(suffix)), None)
        if kind is None:
            out[k] = v
            continue
        stem = k[: -len(_PACKED[kind])]
        for part, chunk in zip("qkv", v.chunk(3, dim=0), strict=True):
            out[f"{stem}.self_attn.{part}.{kind}"] = chunk
    return out


def fuse_qkv(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of :func:`split_qkv`: concatenate ``q``, ``k``, ``v`` pieces along rows.

    Example:
        >>> pieces = {f"l.self_attn.{p}.bias": torch.full((2,), float(i)) for i, p in enumerate("qkv")}
        >>> fuse_qkv(pieces)["l.self_attn.in_proj_bias"].tolist()
        [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    """
    pieces = (".self_attn.q.", ".self_attn.k.", ".self_attn.v.")
    out = {k: v for k, v in state.items() if not any(p in k for p in pieces)}
    for k, v in state.items():
        if ".self_attn.q." in k:
            stem, kind = k.split(".self_attn.q.")
            parts = [v, state[f"{stem}.self_attn.k.{kind}"], state[f"{stem}.self_attn.v.{kind}"]]
            out[stem + _PACKED[kind]] = torch.cat(parts, dim=0)
    return out
