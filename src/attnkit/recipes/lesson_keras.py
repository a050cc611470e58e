"""The course's Keras layers beside attnkit's (``attnkit lesson keras``): ``keras.layers.Attention`` and
``keras.layers.MultiHeadAttention`` (Keras 3, torch backend) and ``attnkit.layers.Attention`` /
``MultiHeadAttention`` built from them with ``from_keras`` (the same weights), called on the same words; their
attention maps and the largest absolute difference of weights and outputs.

Shape legend: T words, D word-vector width, H heads.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from attnkit.errors import InputError
from attnkit.layers.attention import Attention
from attnkit.layers.multi_head import MultiHeadAttention
from attnkit.viz.panels import MatrixPanel

HEADS, KEY_DIM = 2, 16
"""The multi-head layer of the lesson: ``MultiHeadAttention(num_heads=2, key_dim=16)``."""
SCALE = 4.0
"""``Attention``'s scale is ``SCALE / D`` on unit-variance words: a word's score with itself is 4, with another
``4 cos``: a map neither flat nor one-hot."""


def import_keras() -> Any:
    """Keras 3 on the torch backend, or an ``InputError`` saying how to get it."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        raise InputError("this lesson needs Keras 3 (the 'peers' extra: pip install -e '.[peers]')") from None
    if keras.backend.backend() != "torch":
        raise InputError(f"this lesson needs Keras on the torch backend (KERAS_BACKEND=torch). "
                         f"Received: {keras.backend.backend()!r}")
    return keras


def _np(keras: Any, x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(keras.ops.convert_to_numpy(x)))


@torch.no_grad()
def keras_pair(x: torch.Tensor, seed: int = 0) -> dict[str, Any]:
    """Both libraries' layers on the words ``x (T, D)`` as query, value and key (self-attention).

    Returns:
        ``attention``: Keras's and attnkit's ``(T, T)`` weights of ``Attention(use_scale=True)`` (its scale set
        to ``SCALE / D``); ``mha``: their ``(H, T, T)`` weights of ``MultiHeadAttention(2, 16)`` (Keras's
        seeded initialisation); each with the outputs' and weights' largest absolute difference.
    """
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    q = torch.nn.functional.layer_norm(x, x.shape[-1:])[None]  # (1, T, D): each word mean 0, variance 1
    k_att = keras.layers.Attention(use_scale=True)
    k_att([q, q, q])  # build
    k_att.scale.assign(SCALE / x.shape[-1])
    k_out, k_w = k_att([q, q, q], return_attention_scores=True)
    a_out, a_w = Attention.from_keras(k_att)(q, q, q, return_attention_scores=True)
    k_mha = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM)
    k_mha(q, q)  # build
    km_out, km_w = k_mha(q, q, return_attention_scores=True)
    am_out, am_w = MultiHeadAttention.from_keras(k_mha)(q, q, return_attention_scores=True)
    pairs = {"attention": (k_out, k_w, a_out, a_w), "mha": (km_out, km_w, am_out, am_w)}
    result = {}
    for name, (ko, kw, ao, aw) in pairs.items():
        ko, kw = _np(keras, ko), _np(keras, kw)
        result[name] = {"keras": kw[0], "attnkit": aw[0], "weights_diff": float((kw - aw).abs().max()),
                        "output_diff": float((ko - ao).abs().max())}
    return result


def keras_panels(r: dict[str, Any], words: list[str]) -> list[MatrixPanel]:
    """Keras's map, attnkit's and their difference, for ``Attention`` and for the first head of the MHA."""
    panels = []
    for name, label in (("attention", "Attention(use_scale=True)"), ("mha", f"MultiHeadAttention({HEADS}, "
                                                                            f"{KEY_DIM}), head 1")):
        p = r[name]
        keras_w, ours = p["keras"], p["attnkit"]
        if name == "mha":
            keras_w, ours = keras_w[0], ours[0]
        common = {"rows": words, "cols": words, "xlabel": "key word", "ylabel": "query word"}
        panels += [MatrixPanel(f"keras.layers.{label}", keras_w.numpy(), scale="weight", vmin=0.0, **common),
                   MatrixPanel(f"attnkit.layers.{label}, from_keras", ours.numpy(), scale="weight", vmin=0.0,
                               **common),
                   MatrixPanel(f"|Keras - attnkit| of the weights (largest {p['weights_diff']:.1e}; of the "
                               f"outputs {p['output_diff']:.1e})", (keras_w - ours).abs().numpy(),
                               scale="absolute difference", vmin=0.0, scale_format="%.1e", cells=[[""] * len(words)] * len(words),
                               **common)]
    return panels


__all__ = ["HEADS", "KEY_DIM", "SCALE", "import_keras", "keras_pair", "keras_panels"]
