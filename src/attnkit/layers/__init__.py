"""Trainable attention building blocks (``torch.nn.Module``s, batch-first) that call :mod:`attnkit.functional`.

- score modules (:mod:`~attnkit.layers.scores`): ``DotScore``, ``GeneralScore``, ``AdditiveScore``, ...
- ``AttentionEngine``: the multi-head attention the models' blocks run (packed projection, cache, the one
  dispatcher of :mod:`attnkit.functional.dispatch`)
- Keras-compatible layers: ``Attention``, ``AdditiveAttention``, ``MultiHeadAttention`` (the engine's Keras
  facade: lazy build, ``attention_axes``, ``output_shape``, Keras masks, porting)
- recurrent-decoder attention: ``BahdanauAttention``; ``LuongAttention`` composed of a score and a
  window (``MonotonicWindow``, ``PredictiveWindow``)
- self/cross-attention: ``DotSelfAttention``, ``DotCrossAttention`` (parameter-free), ``SelfAttention``,
  ``CrossAttention`` (projected)
- ``KVCache``, positional encodings, and ``build_attention`` (attention names of JSON configs -> modules)
"""

from attnkit.layers.additive import AdditiveAttention
from attnkit.layers.attention import Attention
from attnkit.layers.bahdanau import BahdanauAttention
from attnkit.layers.engine import AttentionEngine
from attnkit.layers.factory import build_attention
from attnkit.layers.kv_cache import KVCache
from attnkit.layers.luong import LuongAttention
from attnkit.layers.multi_head import MultiHeadAttention
from attnkit.layers.positional import (
    ALiBi,
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    alibi_slopes,
    sinusoidal_encoding,
)
from attnkit.layers.scores import (
    AdditiveScore,
    ConcatScore,
    CosineScore,
    DotScore,
    GeneralScore,
    LocationScore,
    ScaledDotScore,
)
from attnkit.layers.self_cross import CrossAttention, DotCrossAttention, DotSelfAttention, SelfAttention
from attnkit.layers.windows import LocalWindow, MonotonicWindow, PredictiveWindow

__all__ = [
    # score modules
    "AdditiveScore", "ConcatScore", "CosineScore", "DotScore", "GeneralScore", "LocationScore", "ScaledDotScore",
    # the models' attention engine and the Keras-compatible layers
    "AttentionEngine", "Attention", "AdditiveAttention", "MultiHeadAttention",
    # recurrent-decoder attention and Luong's windows
    "BahdanauAttention", "LuongAttention", "LocalWindow", "MonotonicWindow", "PredictiveWindow",
    # self- and cross-attention
    "SelfAttention", "CrossAttention", "DotSelfAttention", "DotCrossAttention",
    # cache, positions, the config-name factory
    "KVCache", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding", "RotaryEmbedding", "ALiBi",
    "alibi_slopes", "sinusoidal_encoding", "build_attention",
]
