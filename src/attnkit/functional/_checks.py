"""Argument checks and small helpers shared by ``attention()`` and ``hard_attention()``.

Shape legend: ``...`` leading dims (batch, heads), broadcast between query, key, value and mask;
Tq query length, Tk key length, Dk query/key width, Dv value width.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from attnkit.functional.masks import misaligned_batch_mask
from attnkit.functional.scores import PARAMETER_FREE, SCORES

ScoreFn = Callable[[Tensor, Tensor], Tensor]
#: A path of :mod:`attnkit.functional.dispatch`: ``(query, key, value, *, score, scale, mask, causal, dropout_p,
#: return_weights, chunk_size, bias, kind) -> (output, weights or None)``.
Path = Callable[..., tuple[Tensor, Tensor | None]]


def check_qkv(query: Tensor, key: Tensor, value: Tensor) -> None:
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor. Received: {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., T, D). Received: shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor. Received: dtype {t.dtype}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"key and value lengths differ: key (..., {key.shape[-2]}, {key.shape[-1]}) "
            f"vs value (..., {value.shape[-2]}, {value.shape[-1]})"
        )


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """numpy broadcasting of shapes, or None when they do not broadcast (plain Python: cheaper per call
    than ``torch.broadcast_shapes``, which matters for small attention calls)."""
    if all(sh == shapes[0] for sh in shapes):
        return tuple(shapes[0])
    out: list[int] = []
    for dims in zip(*(((1,) * (max(map(len, shapes)) - len(sh))) + tuple(sh) for sh in shapes), strict=True):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def batch_shape(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, bias: Tensor | None = None) -> torch.Size:
    """The broadcast leading dims ``...`` of query, key, value, mask and bias."""
    batch = _broadcast(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    if batch is None:
        raise ValueError(
            "leading dims of query, key and value do not broadcast. Received: "
            f"query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}"
        )
    for name, extra in (("mask", mask), ("bias", bias)):
        if extra is None:
            continue
        target = (*batch, query.shape[-2], key.shape[-2])
        full = _broadcast(tuple(extra.shape), target)
        if full is None or full[-2:] != target[-2:]:
            raise ValueError(
                f"{name} of shape {tuple(extra.shape)} does not broadcast to (..., Tq, Tk) = {tuple(target)}"
            )
        batch = full[:-2]
    return torch.Size(batch)


def check_bias(bias: Tensor | None) -> None:
    if bias is not None and (not isinstance(bias, Tensor) or not bias.is_floating_point()):
        got = f"dtype {bias.dtype}" if isinstance(bias, Tensor) else type(bias).__name__
        raise TypeError(f"bias must be a floating-point tensor added to the scores. Received: {got}; "
                        "boolean masks go in mask=")


def check_mask(mask: Tensor | None) -> None:
    if mask is None:
        return
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a bool torch.Tensor (True = may attend). Received: {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"mask must be boolean (True = may attend). Received: dtype {mask.dtype}; "
            "for an additive float mask add it to the scores in a score callable instead"
        )


def check_mask_axes(mask: Tensor | None, query: Tensor, key: Tensor, value: Tensor) -> None:
    """Refuse a mask of :func:`misaligned_batch_mask` with the spelling that says what it means."""
    if mask is None or mask.dim() < 2:
        return
    batch = _broadcast(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    if batch is None or not misaligned_batch_mask(tuple(mask.shape), batch):
        return
    shape, missing = tuple(mask.shape), len(batch) + 2 - mask.dim()
    what, name = ("a (B, Tk) key padding mask", "pad") if mask.dim() == 2 else ("a mask per batch row", "m")
    raise ValueError(
        f"Expected a mask whose first axis sits on the batch axis. Received: mask of shape {shape} for "
        f"(..., Tq, Tk) = {(*batch, query.shape[-2], key.shape[-2])}; leading dims align from the right, so its "
        f"first axis (size {shape[0]} = B) would be read as another axis. For {what} pass "
        f"mask={name}[:{', None' * missing}, :] (shape {(shape[0], *(1,) * missing, *shape[1:])}); for a mask "
        f"shared by the batch pass mask={name}[None]"
    )


def resolve_score(score: str | ScoreFn, query: Tensor, key: Tensor) -> str | ScoreFn:
    """``score`` itself when it is a callable or a parameter-free name; a clear error otherwise."""
    if callable(score):
        return score
    if not isinstance(score, str):
        raise TypeError(f"score must be a name or a callable (query, key) -> scores. Received: {type(score).__name__}")
    if score not in PARAMETER_FREE:
        if score in SCORES:
            raise ValueError(
                f"score '{score}' needs weights: pass a module such as attnkit.layers.{score.title().replace('_', '')}Score "
                f"or functools.partial(attnkit.functional.scores.{score}, ...) as score="
            )
        raise ValueError(f"unknown score {score!r}. Valid names: {', '.join(PARAMETER_FREE)}, or any callable (query, key) -> scores")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"score '{score}' needs query and key of the same last dim. "
            f"Received: query (..., {query.shape[-2]}, {query.shape[-1]}) vs key (..., {key.shape[-2]}, {key.shape[-1]})"
        )
    return score


def with_causal(mask: Tensor | None, causal: bool, tq: int, tk: int, device) -> Tensor | None:
    """``mask`` and, when ``causal``, the top-left aligned causal mask ``(Tq, Tk)``."""
    if not causal:
        return mask
    allowed = torch.ones(tq, tk, dtype=torch.bool, device=device).tril()
    return allowed if mask is None else mask & allowed


def named_scale(name: str, width: int, scale: float | None) -> float:
    """The factor of a named score: ``scale``, else ``1/sqrt(Dk)`` for scaled_dot and 1 for dot and cosine."""
    if scale is not None:
        return float(scale)
    if name == "scaled_dot":
        return 1.0 / math.sqrt(width) if width else 1.0
    return 1.0
