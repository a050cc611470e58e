"""Learning-rate schedules as multipliers of the base learning rate.

Every schedule is a pure function of the optimiser step ``t`` (1-based: ``t = 1`` is the first update)
returning the factor ``f(t)``; the learning rate used for update ``t`` is ``lr * f(t)``.

    constant      f(t) = 1
    warmup        f(t) = min(1, t / W)                                     linear warmup, then flat
    inverse_sqrt  f(t) = min(t / W, sqrt(W / t))                           warmup, then 1/sqrt decay
    cosine        f(t) = t / W  for t <= W, then
                  m + (1 - m) * 0.5 * (1 + cos(pi * (t - W) / (N - W)))   down to m at t = N
    noam          f(t) = d^-0.5 * min(t^-0.5, t * W^-1.5)                  Vaswani et al. 2017, eq. (3)

with ``W`` warmup steps, ``N`` total steps, ``d`` the model width and ``m`` the final ratio. For ``noam`` the
base ``lr`` is the paper's multiplier (use ``lr=1.0`` for the paper's exact rate; 2.0 is common).

Example:
    >>> f = make_schedule("noam", warmup_steps=4000, d_model=512)
    >>> round(f(4000), 7)     # the peak: 512**-0.5 * 4000**-0.5
    0.0006988
    >>> [round(make_schedule("cosine", warmup_steps=2, total_steps=6)(t), 3) for t in range(1, 7)]
    [0.5, 1.0, 0.854, 0.5, 0.146, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

SCHEDULES = ("constant", "warmup", "inverse_sqrt", "cosine", "noam")


def _check_step(t: int) -> None:
    if t < 1:
        raise ValueError(f"schedule step must be >= 1 (the first update is step 1). Received: {t}")


def constant(t: int) -> float:
    """``f(t) = 1``."""
    _check_step(t)
    return 1.0


def linear_warmup(t: int, warmup_steps: int) -> float:
    """``f(t) = min(1, t / W)``; ``W = 0`` means no warmup."""
    _check_step(t)
    return 1.0 if warmup_steps <= 0 else min(1.0, t / warmup_steps)


def inverse_sqrt(t: int, warmup_steps: int) -> float:
    """``f(t) = min(t / W, sqrt(W / t))``: linear warmup to 1 at ``t = W``, then ``sqrt(W / t)``.

    With ``W = 0``: ``f(t) = 1 / sqrt(t)``.
    """
    _check_step(t)
    if warmup_steps <= 0:
        return 1.0 / math.sqrt(t)
    return min(t / warmup_steps, math.sqrt(warmup_steps / t))


def cosine(t: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """Linear warmup to 1, then half a cosine from 1 down to ``min_ratio`` at ``t = total_steps`` (flat after)."""
    _check_step(t)
    if warmup_steps > 0 and t <= warmup_steps:
        return t / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (t - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def noam(t: int, warmup_steps: int, d_model: int) -> float:
    """``f(t) = d_model^-0.5 * min(t^-0.5, t * warmup^-1.5)`` (Vaswani et al. 2017, section 5.3)."""
    _check_step(t)
    if warmup_steps <= 0:
        raise ValueError(f"noam schedule needs warmup_steps > 0. Received: {warmup_steps}")
    if d_model <= 0:
        raise ValueError(f"noam schedule needs d_model > 0. Received: {d_model}")
    return d_model ** -0.5 * min(t ** -0.5, t * warmup_steps ** -1.5)


def make_schedule(name: str, *, warmup_steps: int = 0, total_steps: int = 1,
                  d_model: int | None = None, min_ratio: float = 0.0) -> Callable[[int], float]:
    """The schedule ``name`` as a function ``f(t)`` of the 1-based step.

    Args:
        name: one of ``SCHEDULES``.
        warmup_steps: ``W`` above.
        total_steps: ``N`` (cosine only).
        d_model: model width ``d`` (noam only; required there).
        min_ratio: final factor of the cosine schedule.

    Raises:
        ValueError: unknown name, or ``noam`` without ``d_model``.
    """
    if name == "constant":
        return constant
    if name == "warmup":
        return partial(linear_warmup, warmup_steps=warmup_steps)
    if name == "inverse_sqrt":
        return partial(inverse_sqrt, warmup_steps=warmup_steps)
    if name == "cosine":
        return partial(cosine, warmup_steps=warmup_steps, total_steps=total_steps, min_ratio=min_ratio)
    if name == "noam":
        if d_model is None:
            raise ValueError("noam schedule needs d_model (TrainConfig.d_model, or a model config with d_model). "
                             "Received: None")
        return partial(noam, warmup_steps=warmup_steps, d_model=d_model)
    raise ValueError(f"unknown schedule. Expected one of {SCHEDULES}. Received: {name!r}")
