"""The attention paths the scaling run compares, each as ``call(q, k, v, mask, causal) -> output``.

Shapes: ``q, k, v`` are ``(B, H, T, Dh)``; ``mask`` is None or a key padding mask ``(B, 1, 1, T)``
(True = may attend); the output is ``(B, H, T, Dh)``.

Paths: ``sdpa`` (torch's ``scaled_dot_product_attention``, the peer), ``attnkit`` (``attention()``, full),
``naive`` (the textbook softmax(q k^T / sqrt(Dh)) v that materialises ``(B, H, T, T)``), and one path per
attention kind of ``attention(kind=...)`` (sliding_window, block_sparse, linear, performer) when that
argument exists: :func:`available_paths` reports every kind that cannot run with the reason.

Example:
    >>> import torch
    >>> paths, skipped = available_paths(["sdpa", "attnkit"])
    >>> q = torch.randn(1, 1, 8, 4)
    >>> paths["attnkit"](q, q, q, None, False).shape
    torch.Size([1, 1, 8, 4])
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.functional import attention

PathFn = Callable[[Tensor, Tensor, Tensor, "Tensor | None", bool], Tensor]

DENSE = ("sdpa", "attnkit", "naive")
KINDS = ("sliding_window", "block_sparse", "linear", "performer")
ALL_PATHS = DENSE + KINDS
WINDOW = 128  # sliding window: keys within WINDOW positions on each side


def naive(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
    """softmax(q k^T / sqrt(Dh)) v, building the whole ``(B, H, T, T)`` score matrix."""
    s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, H, Tq, Tk)
    if causal:
        s = s.masked_fill(~torch.ones(s.shape[-2:], dtype=torch.bool).tril(), float("-inf"))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def _sdpa(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
    if mask is not None and causal:  # SDPA takes one or the other: fold the causal part into the mask
        mask = mask & torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        causal = False
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)


def _kind_path(kind: str) -> PathFn:
    extra = {"window": WINDOW} if kind == "sliding_window" else {}

    def call(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
        return attention(q, k, v, mask=mask, causal=causal, kind=kind, **extra)

    return call


def _try(fn: PathFn) -> str | None:
    """None if ``fn`` runs on a tiny input, else the first line of its error."""
    q = torch.randn(1, 1, 16, 8)
    try:
        fn(q, q, q, None, False)
    except Exception as exc:  # noqa: BLE001 -- any failure means the path cannot be benchmarked
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    return None


def available_paths(names: tuple[str, ...] | list[str] = ALL_PATHS) -> tuple[dict[str, PathFn], list[tuple[str, str]]]:
    """The paths among ``names`` that run here, and ``(name, reason)`` for those that cannot.

    Args:
        names: path names (see the module docstring).

    Returns:
        ``({name: call}, [(name, reason), ...])``.

    Example:
        >>> sorted(available_paths(["naive", "sdpa"])[0])
        ['naive', 'sdpa']
    """
    has_kind = "kind" in inspect.signature(attention).parameters
    paths: dict[str, PathFn] = {}
    skipped: list[tuple[str, str]] = []
    for name in names:
        if name in KINDS and not has_kind:
            skipped.append((name, "attnkit.functional.attention has no kind= argument in this version"))
            continue
        fn = {"sdpa": _sdpa, "attnkit": _full, "naive": naive}.get(name) or _kind_path(name)
        error = _try(fn)
        if error:
            skipped.append((name, f"attention(kind={name!r}) failed: {error}"))
        else:
            paths[name] = fn
    return paths, skipped


def _full(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
    return attention(q, k, v, mask=mask, causal=causal)


def run_path(fn: PathFn, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool,
             backward: bool) -> None:
    """One timed unit of work: ``fn``'s forward under ``no_grad``, or forward and backward of its sum (the
    gradients are dropped afterwards, so repeated calls do not accumulate them).

    Example:
        >>> q = torch.randn(1, 1, 8, 4, requires_grad=True)
        >>> run_path(naive, q, q, q, None, True, backward=True)
        >>> q.grad is None
        True
    """
    if backward:
        fn(q, k, v, mask, causal).sum().backward()
        q.grad = k.grad = v.grad = None
    else:
        with torch.no_grad():
            fn(q, k, v, mask, causal)


def inputs(length: int, *, batch: int = 1, heads: int = 1, dim: int = 64, grad: bool = False,
           mask: str = "none", seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor | None, bool]:
    """Random ``q, k, v`` of shape ``(B, H, T, Dh)`` and the mask for ``mask`` in none / causal / padding
    (padding: the first sequence keeps 3/4 of its keys), as ``(q, k, v, key_mask, causal)``.

    Example:
        >>> q, k, v, m, causal = inputs(8, batch=2, mask="padding")
        >>> tuple(q.shape), tuple(m.shape), int(m[0].sum()), causal
        ((2, 1, 8, 64), (2, 1, 1, 8), 6, False)
    """
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, length, dim, generator=gen).requires_grad_(grad) for _ in range(3))
    key_mask = None
    if mask == "padding":
        lengths = torch.full((batch,), length)
        lengths[0] = length * 3 // 4
        key_mask = (torch.arange(length)[None, :] < lengths[:, None])[:, None, None, :]  # (B, 1, 1, Tk)
    return q, k, v, key_mask, mask == "causal"


def predicted_speedup(name: str, length: int, dim: int = 64) -> float | None:
    """The speed-up over full attention that a kind's cost formula predicts at ``length`` (no mask), or
    None for a kind whose cost depends on settings not fixed here.

    Full attention costs ``~ 4 T^2 Dh`` multiply-adds; the sliding window ``~ 4 T (2w + 1) Dh``, so
    ``T / (2w + 1)``; linear attention ``~ 4 T Dh Dv`` (``phi(K)^T V`` then ``phi(Q)`` times it), so ``T / Dv``.

    Example:
        >>> predicted_speedup("sliding_window", 2570), predicted_speedup("linear", 4096)
        (10.0, 64.0)
    """
    if name == "sliding_window":
        return length / (2 * WINDOW + 1)
    if name == "linear":
        return length / dim
    return None
