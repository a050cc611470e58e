"""Score functions of the course: how well a query matches each key.

Every function here is pure: it takes its weights as arguments and returns raw scores
``(..., Tq, Tk)`` (before the softmax). Trainable modules that own these weights live in
:mod:`attnkit.layers.scores`; any of them, or any callable ``(query, key) -> (..., Tq, Tk)``,
plugs into :func:`attnkit.functional.attention` as ``score=``.

Shape legend: Tq query length, Tk key length, Dq / Dk query / key width, A hidden width of the
alignment model (the additive score's), ``...`` any leading (batch, head) dims, broadcast between query and key.

| name       | formula (q = query row, k = key row)        | weights                                |
|------------|---------------------------------------------|----------------------------------------|
| dot        | q . k                                       | -                                      |
| scaled_dot | q . k / sqrt(d)                             | -                                      |
| general    | q^T W_a k                                   | w_a (Dq, Dk)                           |
| concat     | v_a^T tanh(W_a [q; k])                      | w_a (A, Dq + Dk), v_a (A,)             |
| additive   | w_v^T tanh(W_q q + W_k k)                   | w_q (A, Dq), w_k (A, Dk), w_v (A,)     |
| location   | (W_a q)_j, softmax over positions j         | w_a (Lmax, Dq)                         |
| cosine     | q . k / (|q| |k|)                           | -                                      |
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def _check_same_width(query: Tensor, key: Tensor, name: str) -> None:
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"score '{name}' needs query and key of the same last dim. "
            f"Received: query (..., {query.shape[-2]}, {query.shape[-1]}) vs key (..., {key.shape[-2]}, {key.shape[-1]})"
        )


def dot(query: Tensor, key: Tensor) -> Tensor:
    """Dot-product score ``q . k`` (Luong et al. 2015).

    Shapes: query ``(..., Tq, D)``, key ``(..., Tk, D)`` -> ``(..., Tq, Tk)``.

    Example:
        >>> import torch
        >>> from attnkit.functional import dot
        >>> dot(torch.tensor([[1., 2.]]), torch.tensor([[3., 4.], [1., 0.]]))
        tensor([[11.,  1.]])
    """
    _check_same_width(query, key, "dot")
    return query @ key.transpose(-2, -1)


def scaled_dot(query: Tensor, key: Tensor, scale: float | None = None) -> Tensor:
    """Scaled dot-product score ``q . k / sqrt(d)`` (Vaswani et al. 2017); ``scale`` overrides ``1/sqrt(d)``.

    Shapes: query ``(..., Tq, D)``, key ``(..., Tk, D)`` -> ``(..., Tq, Tk)``.

    Example:
        >>> import torch
        >>> from attnkit.functional import scaled_dot
        >>> scaled_dot(torch.tensor([[1., 2., 0., 0.]]), torch.tensor([[3., 4., 0., 0.]]))
        tensor([[5.5000]])
    """
    _check_same_width(query, key, "scaled_dot")
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1]) if query.shape[-1] else 1.0
    return (query @ key.transpose(-2, -1)) * scale


def general(query: Tensor, key: Tensor, w_a: Tensor) -> Tensor:
    """General (bilinear) score ``q^T W_a k`` (Luong et al. 2015).

    Shapes: query ``(..., Tq, Dq)``, key ``(..., Tk, Dk)``, w_a ``(Dq, Dk)`` -> ``(..., Tq, Tk)``.

    Example:
        >>> import torch
        >>> from attnkit.functional import general
        >>> general(torch.ones(1, 2), torch.ones(3, 2), torch.eye(2)).shape
        torch.Size([1, 3])
    """
    if w_a.shape != (query.shape[-1], key.shape[-1]):
        raise ValueError(
            f"general: w_a must be (Dq, Dk) = ({query.shape[-1]}, {key.shape[-1]}). Received: {tuple(w_a.shape)}"
        )
    return (query @ w_a) @ key.transpose(-2, -1)


def additive_from_projected(q_proj: Tensor, k_proj: Tensor, w_v: Tensor) -> Tensor:
    """The second half of additive scoring: ``w_v^T tanh(q_proj + k_proj)``.

    Splitting the projections out lets callers project once and score many key chunks.
    Shapes: q_proj ``(..., Tq, A)``, k_proj ``(..., Tk, A)``, w_v ``(A,)`` -> ``(..., Tq, Tk)``.
    Works in ``O(Tq * Tk * A)`` memory (one buffer of that size, updated in place).

    Computed through the identity ``tanh(x) = 2 sigmoid(2x) - 1``:
    ``w_v^T tanh(x) = (2 w_v)^T sigmoid(2x) - sum(w_v)``, the same number, because torch's CPU sigmoid
    kernel is several times faster than its tanh; the factor 2 is folded into the small ``(T, A)``
    projections and the constant ``sum(w_v)`` is subtracted once per score.

    Example:
        >>> import torch
        >>> from attnkit.functional import additive_from_projected
        >>> q_proj, k_proj, w_v = torch.randn(3, 6), torch.randn(5, 6), torch.randn(6)
        >>> expected = torch.tanh(q_proj[:, None, :] + k_proj[None, :, :]) @ w_v  # (Tq, Tk, A) @ (A,)
        >>> bool(torch.allclose(additive_from_projected(q_proj, k_proj, w_v), expected, atol=1e-5))
        True
    """
    hidden = (2 * q_proj).unsqueeze(-2) + (2 * k_proj).unsqueeze(-3)  # (..., Tq, Tk, A) = 2x
    return hidden.sigmoid_() @ (2 * w_v) - w_v.sum()  # (..., Tq, Tk)


def additive(
    query: Tensor, key: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor, bias: Tensor | None = None
) -> Tensor:
    """Additive (Bahdanau) score ``w_v^T tanh(W_q q + W_k k [+ b])`` (Bahdanau et al. 2015).

    Shapes: query ``(..., Tq, Dq)``, key ``(..., Tk, Dk)``, w_q ``(A, Dq)``, w_k ``(A, Dk)``,
    w_v ``(A,)``, bias ``(A,)`` -> ``(..., Tq, Tk)``.

    Example:
        >>> import torch
        >>> from attnkit.functional import additive
        >>> additive(torch.ones(2, 3), torch.ones(4, 5), torch.ones(6, 3), torch.ones(6, 5), torch.ones(6)).shape
        torch.Size([2, 4])
    """
    hidden = w_v.shape[-1]
    if w_q.shape != (hidden, query.shape[-1]) or w_k.shape != (hidden, key.shape[-1]):
        raise ValueError(
            f"additive: expected w_q (A, Dq) = ({hidden}, {query.shape[-1]}) and w_k (A, Dk) = ({hidden}, {key.shape[-1]}). "
            f"Received: w_q {tuple(w_q.shape)}, w_k {tuple(w_k.shape)}"
        )
    q_proj = query @ w_q.T  # (..., Tq, A)
    if bias is not None:
        q_proj = q_proj + bias
    k_proj = key @ w_k.T  # (..., Tk, A)
    return additive_from_projected(q_proj, k_proj, w_v)


def concat(query: Tensor, key: Tensor, w_a: Tensor, v_a: Tensor) -> Tensor:
    """Concat score ``v_a^T tanh(W_a [q; k])`` (Luong et al. 2015).

    Equal to :func:`additive` with ``W_a = [W_q | W_k]``, which is how it is computed (the
    concatenation ``(Tq, Tk, Dq + Dk)`` is never built).
    Shapes: query ``(..., Tq, Dq)``, key ``(..., Tk, Dk)``, w_a ``(A, Dq + Dk)``, v_a ``(A,)`` -> ``(..., Tq, Tk)``.

    Example:
        >>> import torch
        >>> from attnkit.functional import concat
        >>> concat(torch.ones(2, 3), torch.ones(4, 5), torch.ones(6, 8), torch.ones(6)).shape
        torch.Size([2, 4])
    """
    dq, dk = query.shape[-1], key.shape[-1]
    if w_a.dim() != 2 or w_a.shape[1] != dq + dk:
        raise ValueError(f"concat: w_a must be (A, Dq + Dk) = (A, {dq + dk}). Received: {tuple(w_a.shape)}")
    return additive(query, key, w_a[:, :dq], w_a[:, dq:], v_a)


def location(query: Tensor, key: Tensor, w_a: Tensor) -> Tensor:
    """Location-based score ``W_a q`` (Luong et al. 2015): the softmax over it is taken over positions.

    The score depends on the query alone; ``key`` only gives the number of positions ``Tk``
    (the first ``Tk`` rows of ``w_a`` are used).
    Shapes: query ``(..., Tq, Dq)``, key ``(..., Tk, Dk)``, w_a ``(Lmax, Dq)`` with ``Lmax >= Tk``
    -> ``(..., Tq, Tk)``.

    Example:
        >>> import torch
        >>> from attnkit.functional import location
        >>> location(torch.ones(2, 3), torch.zeros(4, 7), torch.ones(10, 3)).shape
        torch.Size([2, 4])
    """
    tk = key.shape[-2]
    if w_a.dim() != 2 or w_a.shape[1] != query.shape[-1]:
        raise ValueError(f"location: w_a must be (Lmax, Dq) with Dq = {query.shape[-1]}. Received: {tuple(w_a.shape)}")
    if tk > w_a.shape[0]:
        raise ValueError(f"location: {tk} keys but w_a only scores {w_a.shape[0]} positions (Lmax)")
    scores = query @ w_a[:tk].T  # (..., Tq, Tk)
    batch = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2])
    return scores.expand(*batch, *scores.shape[-2:])


def cosine(query: Tensor, key: Tensor, eps: float = 1e-8) -> Tensor:
    """Cosine score ``q . k / (|q| |k|)`` (a content-based score of Graves et al. 2014).

    Shapes: query ``(..., Tq, D)``, key ``(..., Tk, D)`` -> ``(..., Tq, Tk)``, values in ``[-1, 1]``.

    Example:
        >>> import torch
        >>> from attnkit.functional import cosine
        >>> cosine(torch.tensor([[1., 0.]]), torch.tensor([[2., 0.], [0., 3.]]))
        tensor([[1., 0.]])
    """
    _check_same_width(query, key, "cosine")
    qn = query / query.norm(dim=-1, keepdim=True).clamp_min(eps)
    kn = key / key.norm(dim=-1, keepdim=True).clamp_min(eps)
    return qn @ kn.transpose(-2, -1)


# The explicit table of every score function. Entries after the first two arguments take weights.
SCORES: dict[str, Callable[..., Tensor]] = {
    "dot": dot,
    "scaled_dot": scaled_dot,
    "general": general,
    "concat": concat,
    "additive": additive,
    "location": location,
    "cosine": cosine,
}

# Names that `attention(score=...)` accepts directly (they need no weights).
PARAMETER_FREE = ("dot", "scaled_dot", "cosine")
