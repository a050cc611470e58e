"""The one place where attention names (as written in JSON configs) become modules.

Code passes objects (``LuongAttention(score=GeneralScore(...), window=PredictiveWindow(...))``); a
saved config stores a string such as ``"luong-local-p"``. :func:`build_attention` turns that string
into the objects, through :func:`build_score` and :func:`build_window`.

| name            | module                                                                   |
|-----------------|--------------------------------------------------------------------------|
| ``none``        | ``None`` (no attention: a fixed context)                                 |
| ``bahdanau``    | ``BahdanauAttention(Dq, Dk, hidden_dim)``                                 |
| ``luong-dot``   | ``LuongAttention(score=DotScore())``                                     |
| ``luong-general`` | ``LuongAttention(score=GeneralScore(Dq, Dk))``                         |
| ``luong-concat``  | ``LuongAttention(score=ConcatScore(Dq, Dk, Dq))``                      |
| ``luong-local-m`` | ``LuongAttention(score=GeneralScore(Dq, Dk), window=MonotonicWindow(half_width))`` |
| ``luong-local-p`` | ``LuongAttention(score=GeneralScore(Dq, Dk), window=PredictiveWindow(Dq, half_width))`` |
"""

from __future__ import annotations

from torch import nn

from attnkit.layers.bahdanau import BahdanauAttention
from attnkit.layers.luong import LuongAttention
from attnkit.layers.scores import ConcatScore, DotScore, GeneralScore
from attnkit.layers.windows import LocalWindow, MonotonicWindow, PredictiveWindow

SCORE_NAMES: tuple[str, ...] = ("dot", "general", "concat")  # Luong's three scores
WINDOW_NAMES: tuple[str, ...] = ("global", "local-m", "local-p")  # Luong's global and local attention
ATTENTION_NAMES: tuple[str, ...] = ("none", "bahdanau", "luong-dot", "luong-general", "luong-concat", "luong-local-m",
                                    "luong-local-p")


def build_score(name: str, query_size: int, key_size: int | None = None) -> nn.Module:
    """One of Luong's scores by name: ``"dot"``, ``"general"`` or ``"concat"`` (hidden width ``Dq``).

    Args:
        name: the score's name.
        query_size: ``Dq``, the query width.
        key_size: ``Dk``, the key width (default ``query_size``); ``"dot"`` needs ``Dk == Dq``.

    Returns:
        ``DotScore()``, ``GeneralScore(Dq, Dk)`` or ``ConcatScore(Dq, Dk, hidden_dim=Dq)``.

    Example:
        >>> tuple(build_score("general", 4, 6).w_a.shape)
        (4, 6)
    """
    key_size = query_size if key_size is None else key_size
    if name not in SCORE_NAMES:
        raise ValueError(f"Expected `score` in {SCORE_NAMES}. Received: score={name!r}")
    if name == "dot":
        if key_size != query_size:
            raise ValueError(
                "Expected key_size == query_size for the dot score (h_t^T h_s needs equal widths; use 'general' "
                f"otherwise). Received: query_size={query_size}, key_size={key_size}"
            )
        return DotScore()
    if name == "general":
        return GeneralScore(query_size, key_size)
    return ConcatScore(query_size, key_size, query_size)


def build_window(name: str, query_size: int, half_width: int) -> LocalWindow | None:
    """Luong's global or local attention by name: ``"global"``, ``"local-m"`` or ``"local-p"``.

    Args:
        name: the mode's name.
        query_size: ``Dq``, the query width (local-p's position predictor reads it).
        half_width: ``W``, the window ``[p_t - W, p_t + W]`` (ignored for ``"global"``).

    Returns:
        ``None`` (global), ``MonotonicWindow(W)`` or ``PredictiveWindow(Dq, W)``.

    Example:
        >>> build_window("local-m", 8, half_width=3)
        MonotonicWindow(half_width=3)
        >>> build_window("global", 8, half_width=3) is None
        True
    """
    if name not in WINDOW_NAMES:
        raise ValueError(f"Expected `mode` in {WINDOW_NAMES}. Received: mode={name!r}")
    if name == "global":
        return None
    if name == "local-m":
        return MonotonicWindow(half_width)
    return PredictiveWindow(query_size, half_width)


def build_attention(
    name: str, query_size: int, key_size: int | None = None, *, hidden_dim: int = 128, half_width: int = 10
) -> nn.Module | None:
    """The decoder attention named in a config (see the table at the top of this module).

    Args:
        name: one of :data:`ATTENTION_NAMES`.
        query_size: ``Dq``, the decoder state width.
        key_size: ``Dk``, the source annotation width (default ``query_size``).
        hidden_dim: ``A``, the width of Bahdanau's alignment model.
        half_width: ``W`` of ``luong-local-m`` and ``luong-local-p``.

    Returns:
        A :class:`BahdanauAttention` or :class:`LuongAttention`, or ``None`` for ``"none"``.

    Example:
        >>> attn = build_attention("luong-local-p", 8, 6, half_width=2)
        >>> type(attn.score).__name__, type(attn.window).__name__, attn.window.half_width
        ('GeneralScore', 'PredictiveWindow', 2)
        >>> build_attention("bahdanau", 8, 6, hidden_dim=5).hidden_dim
        5
    """
    if name not in ATTENTION_NAMES:
        raise ValueError(f"Expected attention to be one of {ATTENTION_NAMES}. Received: attention={name!r}")
    key_size = query_size if key_size is None else key_size
    if name == "none":
        return None
    if name == "bahdanau":
        return BahdanauAttention(query_size, key_size, hidden_dim)
    variant = name.removeprefix("luong-")
    if variant in ("local-m", "local-p"):
        score, window = build_score("general", query_size, key_size), build_window(variant, query_size, half_width)
    else:
        score, window = build_score(variant, query_size, key_size), None
    return LuongAttention(query_size, key_size, score=score, window=window)


__all__ = ["ATTENTION_NAMES", "SCORE_NAMES", "WINDOW_NAMES", "build_attention", "build_score", "build_window"]
