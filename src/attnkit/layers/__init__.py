"""Trainable attention building blocks (``torch.nn.Module``s, batch-first) that call :mod:`attnkit.functional`."""

from attnkit.layers.scores import (
    AdditiveScore,
    ConcatScore,
    CosineScore,
    DotScore,
    GeneralScore,
    LocationScore,
    ScaledDotScore,
)

__all__ = [
    "AdditiveScore", "ConcatScore", "CosineScore", "DotScore", "GeneralScore", "LocationScore", "ScaledDotScore",
]

# Attention layers, kv cache and positional encodings (issue 3).
from attnkit.layers.additive import AdditiveAttention  # noqa: E402
from attnkit.layers.attention import Attention  # noqa: E402
from attnkit.layers.bahdanau import BahdanauAttention  # noqa: E402
from attnkit.layers.kv_cache import KVCache  # noqa: E402
from attnkit.layers.luong import LuongAttention  # noqa: E402
from attnkit.layers.multi_head import MultiHeadAttention  # noqa: E402
from attnkit.layers.positional import (  # noqa: E402
    ALiBi,
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    alibi_slopes,
    sinusoidal_encoding,
)
from attnkit.layers.self_cross import CrossAttention, SelfAttention  # noqa: E402

__all__ += [
    "Attention", "AdditiveAttention", "MultiHeadAttention", "KVCache", "BahdanauAttention", "LuongAttention",
    "SelfAttention", "CrossAttention", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding",
    "RotaryEmbedding", "ALiBi", "alibi_slopes", "sinusoidal_encoding",
]
