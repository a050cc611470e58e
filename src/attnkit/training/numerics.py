"""Numerical safety of a training step: the loss weight of a rank, non-finite steps, bfloat16 autocast.

Three things the trainer's step needs, kept apart from its loop:

- ``rank_weight(loss, stats, rt)``: under DistributedDataParallel the gradients are **averaged** over
  ranks. A model's loss is a mean over the items of its batch (target tokens for the translation models,
  ``stats["total"]``); when ranks hold different numbers of items, the average of the per-rank means is
  not the mean over all items of the global batch (the 0.014 weight difference seen between 2 processes
  with batch b and 1 process with batch 2b came from here: target lengths differ per rank, and the ranks'
  row counts differ on the last batch of an epoch). Each rank's loss is therefore multiplied by
  ``W * n_r / sum(n)`` before ``backward`` (0 for a rank training on a stand-in row, see
  ``attnkit.training.rank_split``), so that the averaged gradient is the gradient of the global per-item
  mean: exactly what one process computes on the whole batch. The same all-reduce tells every rank
  whether any rank's loss is non-finite.
- ``grad_norm(params, clip_norm)``: the global gradient L2 norm, clipping when ``clip_norm`` is set.
- ``autocast(precision, device)``: ``torch.autocast`` for ``TrainConfig.autocast = "bfloat16"``, else nothing.

Example:
    >>> import torch
    >>> from attnkit.training.runtime import Runtime
    >>> one = Runtime(device=torch.device("cpu"))
    >>> rank_weight(torch.tensor(2.0), {"total": 7}, one)        # one process: weight 1, finite
    (True, 1.0)
    >>> rank_weight(torch.tensor(float("nan")), {}, one)
    (False, 1.0)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist

from attnkit.training.runtime import Runtime

AUTOCAST_PRECISIONS: tuple[str, ...] = ("bfloat16",)
"""Values of ``TrainConfig.autocast`` besides None (float32 everywhere)."""


def loss_items(stats: dict[str, Any] | None) -> float:
    """How many items the step's loss is a mean over: ``stats["loss_weight"]``, else ``stats["total"]``
    (target tokens), else 1.

    Example:
        >>> loss_items({"total": 12, "correct": 3}), loss_items({"loss_weight": 2.5, "total": 12}), loss_items({})
        (12.0, 2.5, 1.0)
    """
    if not stats:
        return 1.0
    value = stats.get("loss_weight", stats.get("total", 1.0))
    return float(value.detach() if isinstance(value, torch.Tensor) else value)


def rank_weight(loss: torch.Tensor, stats: dict[str, Any] | None, rt: Runtime,
                real: bool = True) -> tuple[bool, float]:
    """``(every rank's loss is finite, the factor for this rank's loss)``; one all-reduce when distributed.

    The factor is ``W * n_r / sum_r n_r`` (``n_r = loss_items(stats)`` of rank r, 0 for a stand-in), so
    that DDP's mean of the ranks' gradients is the gradient of the mean over all items; 1.0 in one process.

    Args:
        loss: this rank's scalar loss.
        stats: the model's stats of the step (``loss_weight`` or ``total``: items averaged in ``loss``).
        rt: the runtime (rank, world size).
        real: False when the rank trains on a stand-in row (it had no row of the batch): weight 0.

    Returns:
        ``(finite, weight)``.
    """
    finite = bool(torch.isfinite(loss.detach()).all())
    if not rt.distributed:
        return finite, 1.0
    n = loss_items(stats) if real else 0.0
    t = torch.tensor([n, 0.0 if finite else 1.0], dtype=torch.float64, device=rt.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    total, bad = t.tolist()
    weight = rt.world_size * n / total if total > 0 else 1.0
    return bad == 0.0, weight


def grad_norm(params: Iterable[torch.nn.Parameter], clip_norm: float | None) -> float:
    """The global L2 norm of the gradients (before clipping); clips them to ``clip_norm`` when set.

    Example:
        >>> w = torch.nn.Parameter(torch.zeros(2)); w.grad = torch.tensor([3.0, 4.0])
        >>> grad_norm([w], clip_norm=1.0), [round(g, 4) for g in w.grad.tolist()]
        (5.0, [0.6, 0.8])
    """
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    limit = math.inf if clip_norm is None else clip_norm
    return float(torch.nn.utils.clip_grad_norm_(params, limit))


@contextlib.contextmanager
def autocast(precision: str | None, device: torch.device) -> Iterator[None]:
    """``torch.autocast(device.type, dtype=torch.bfloat16)`` for ``precision="bfloat16"``; nothing for None.

    Example:
        >>> with autocast("bfloat16", torch.device("cpu")):
        ...     (torch.ones(2, 3) @ torch.ones(3, 4)).dtype
        torch.bfloat16
    """
    if precision is None:
        yield
        return
    if precision not in AUTOCAST_PRECISIONS:
        raise ValueError(f"autocast must be None or one of {AUTOCAST_PRECISIONS}. Received: {precision!r}")
    with torch.autocast(device.type, dtype=torch.bfloat16):
        yield
