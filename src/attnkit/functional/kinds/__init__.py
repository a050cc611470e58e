"""Sub-quadratic attention kinds, picked with ``attention(..., kind=...)`` or ``MultiHeadAttention(kind=...)``.

============== ==================================== ============================ ===========================
kind           what each query attends               time                         memory
============== ==================================== ============================ ===========================
full           every key (SDPA, the default)          O(Tq * Tk * D)               O(Tq * Tk) or O(Tq) fused
sliding_window keys within ``window``, + global       O(Tq * (b + 2w + G) * D)     O(Tq * (b + 2w + G))
block_sparse   local + global + random blocks         O(Tq * m * b * D)            O(Tq * m * b)
linear         all keys, kernel elu(q)+1 . elu(k)+1   O((Tq + Tk) * Dk * Dv)       O(Dk * Dv + T * Dk)
performer      all keys, softmax via m random feats   O((Tq + Tk) * m * (Dk + Dv)) O(T * m + m * Dv)
============== ==================================== ============================ ===========================

``sliding_window`` and ``block_sparse`` are exact (full attention under their mask); ``linear`` is its own
attention; ``performer`` approximates softmax attention. All accept a key padding mask and ``causal``.
A kind is a string (``"sliding_window"`` needs ``window=``) or an :class:`AttentionKind` object carrying
its options (``SlidingWindowAttention(window, global_tokens)``, ``BlockSparseAttention(...)``,
``PerformerAttention(num_features, seed)``).

Shape legend: Tq/Tk query/key length, T both, D width, w window, b block, G global tokens, m blocks per
row (block sparse) or random features (performer).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from attnkit.functional._checks import batch_shape
from attnkit.functional.kinds._common import compute_dtype, expand_leading, key_padding
from attnkit.functional.kinds.base import AttentionKind
from attnkit.functional.kinds.block_sparse import BlockSparseAttention
from attnkit.functional.kinds.linear import LinearAttention, elu_feature
from attnkit.functional.kinds.performer import PerformerAttention, orthogonal_features
from attnkit.functional.kinds.sliding_window import SlidingWindowAttention

#: The names ``kind=`` accepts.
KINDS: tuple[str, ...] = ("full", "sliding_window", "block_sparse", "linear", "performer")


_CLASSES = {"sliding_window": SlidingWindowAttention, "block_sparse": BlockSparseAttention,
            "linear": LinearAttention, "performer": PerformerAttention}


def resolve_kind(kind: str | dict | AttentionKind, window: int | None = None) -> str | AttentionKind:
    """``"full"`` or the :class:`AttentionKind` object for ``kind``: a name, an options dict
    ``{"name": ..., **options}`` (what a model config stores, so a saved model rebuilds its kind), or an object.

    Example:
        >>> resolve_kind("sliding_window", window=4)
        SlidingWindowAttention(window=4, global_tokens=(), block_size=None)
        >>> resolve_kind({"name": "block_sparse", "block_size": 8, "seed": 3})
        BlockSparseAttention(block_size=8, num_local=1, num_global=1, num_random=2, seed=3)
        >>> resolve_kind("full")
        'full'
    """
    if isinstance(kind, AttentionKind):
        if window is not None:
            raise ValueError(f"Expected window=None with a kind object (set it on the object). Received: window={window}")
        return kind
    if isinstance(kind, dict):
        return _kind_from_options(kind, window)
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"Expected kind one of {', '.join(KINDS)}, an options dict or an AttentionKind. "
                         f"Received: {kind!r}")
    if kind == "sliding_window":
        if window is None:
            raise ValueError("Expected window= (keys on each side) with kind='sliding_window'. Received: window=None")
        return SlidingWindowAttention(window)
    if window is not None:
        raise ValueError(f"Expected window=None unless kind='sliding_window'. Received: kind={kind!r}, window={window}")
    return "full" if kind == "full" else _CLASSES[kind]()


def _kind_from_options(options: dict, window: int | None) -> str | AttentionKind:
    """The kind an options dict ``{"name": ..., **constructor arguments}`` names."""
    name, rest = options.get("name"), {k: v for k, v in options.items() if k != "name"}
    if name not in KINDS:
        raise ValueError(f"Expected an options dict whose 'name' is one of {', '.join(KINDS)}. Received: {options!r}")
    if window is not None and name == "sliding_window" and "window" not in rest:
        rest["window"] = window  # a config's separate attention_window
    elif window is not None:
        raise ValueError(f"Expected window=None with an options dict (put it in the dict). Received: window={window}")
    if name == "full":
        if rest:
            raise ValueError(f"Expected no options with kind 'full'. Received: {options!r}")
        return "full"
    try:
        return _CLASSES[name](**rest)
    except TypeError as err:
        raise ValueError(f"Expected options of {_CLASSES[name].__name__}. Received: {options!r} ({err})") from None


def kind_options(kind: str | AttentionKind) -> str | dict:
    """What a model config stores for ``kind``: ``"full"``, or ``{"name": ..., **options}`` that
    :func:`resolve_kind` turns back into an equal kind.

    Example:
        >>> kind_options(BlockSparseAttention(block_size=8))
        {'name': 'block_sparse', 'block_size': 8, 'num_local': 1, 'num_global': 1, 'num_random': 2, 'seed': 0}
    """
    if isinstance(kind, str):
        return kind
    options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kind.options().items() if k != "draws"}
    return {"name": kind.name, **options}


def kind_path(name: str) -> Callable[..., tuple[Tensor, Tensor | None]]:
    """The path of :mod:`attnkit.functional.dispatch` for the kind ``name`` (its one signature): runs the call's
    ``kind`` object (with its options), or a default one of that name."""

    def path(query: Tensor, key: Tensor, value: Tensor, *, score: object, scale: float, mask: Tensor | None,
             causal: bool, dropout_p: float, return_weights: bool, chunk_size: int | None, bias: Tensor | None,
             kind: AttentionKind | None) -> tuple[Tensor, Tensor | None]:
        obj = resolve_kind(name) if kind is None else kind
        if obj.name != name:
            raise ValueError(f"Expected kind={name!r} on the {name} path. Received: kind={obj.name!r}")
        out = run_kind(obj, query, key, value, score=score, mask=mask, causal=causal, scale=scale, dropout_p=dropout_p,
                       return_weights=return_weights, chunk_size=chunk_size, bias=bias,
                       batch=batch_shape(query, key, value, mask, bias))
        return out if return_weights else (out, None)

    path.__name__ = f"{name}_path"
    return path


def run_kind(kind: AttentionKind, query: Tensor, key: Tensor, value: Tensor, *, score: object,
             mask: Tensor | None, causal: bool, scale: float, dropout_p: float, return_weights: bool,
             chunk_size: int | None, bias: Tensor | None, batch: torch.Size) -> Tensor | tuple[Tensor, Tensor]:
    """:func:`attnkit.functional.attention` for a kind other than ``"full"`` (arguments checked there).

    Returns ``output (..., Tq, Dv)`` or ``(output, weights (..., Tq, Tk))``.
    """
    name = kind.name
    if not isinstance(score, str) or score not in ("dot", "scaled_dot"):
        got = score if isinstance(score, str) else type(score).__name__
        raise ValueError(f"Expected score 'scaled_dot' or 'dot' with kind={name!r}. Received: score={got!r}")
    if bias is not None:
        raise ValueError(f"Expected bias=None with kind={name!r} (an additive bias needs every score). "
                         f"Received: bias of shape {tuple(bias.shape)}")
    if dropout_p > 0 and not kind.supports_dropout:
        raise ValueError(f"Expected dropout_p=0 with kind={name!r} (it has no attention weights to drop). "
                         f"Received: dropout_p={dropout_p}")
    key_mask = key_padding(mask, batch, key.shape[-2], name)  # (..., Tk)
    dtype = compute_dtype(query, key, value)
    q, k, v = (expand_leading(t, batch).to(dtype) for t in (query, key, value))
    out, weights = kind(q, k, v, key_mask=key_mask, causal=causal, scale=scale, dropout_p=dropout_p,
                        return_weights=return_weights, chunk_size=chunk_size)
    out = out.to(torch.promote_types(query.dtype, value.dtype))
    return (out, weights.to(torch.promote_types(query.dtype, key.dtype))) if return_weights else out


__all__ = ["KINDS", "AttentionKind", "BlockSparseAttention", "LinearAttention", "PerformerAttention",
           "SlidingWindowAttention", "elu_feature", "kind_options", "kind_path", "orthogonal_features", "resolve_kind", "run_kind"]
