"""The reference path of :mod:`attnkit.functional.dispatch`: the formula as written, and ``masked_softmax``.

    scores  = score(query, key) + bias            # (..., Tq, Tk)
    weights = softmax(scores masked by `mask`)    # (..., Tq, Tk), rows sum to 1 over allowed keys
    output  = dropout(weights) @ value            # (..., Tq, Dv)

It materialises the ``(..., Tq, Tk)`` weights, so it is the path that returns them (autograd included),
and every other path is tested against it (and it against float64 definitions).

Precision: named scores of float16/bfloat16 inputs are computed in float32 and the softmax is taken in at
least float32; only the output and the returned weights are cast back.

Shape legend: ``...`` leading dims (batch, heads), broadcast between query, key, value and mask;
Tq query length, Tk key length, Dk query/key width, Dv value width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.functional._checks import ScoreFn, batch_shape, check_mask, with_causal
from attnkit.functional._named import at_least_float32, named_score


def softmax32(scores: Tensor, mask: Tensor | None, dim: int = -1) -> Tensor:
    """:func:`masked_softmax` in at least float32 (half scores are widened, the result is not narrowed)."""
    x = at_least_float32(scores)
    if mask is None:
        return torch.softmax(x, dim=dim)
    x = x.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(x, dim=dim)  # all-masked rows are NaN here ...
    row_ok = mask.any(dim=dim, keepdim=True)
    if not bool(row_ok.all()):
        weights = weights.masked_fill(~row_ok, 0.0)  # ... and zero here (their gradient is zero too)
    return weights


def masked_softmax(scores: Tensor, mask: Tensor | None = None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` that ignores masked entries and never returns NaN for masked rows.

    ``weights = exp(s_j) / sum_{allowed k} exp(s_k)`` for allowed ``j``, exactly 0 for masked ``j``;
    a row with no allowed entry is all zeros. Half-precision scores are normalised in float32 and
    returned in their own dtype.

    Args:
        scores: ``(..., Tq, Tk)`` floating tensor.
        mask: bool, broadcastable to ``scores``; True = may attend.
        dim: the axis to normalise.

    Returns:
        The weights, shaped and typed as ``scores``.

    Example:
        >>> import torch
        >>> from attnkit.functional import masked_softmax
        >>> masked_softmax(torch.zeros(2, 3), torch.tensor([[True, True, False], [False, False, False]]))
        tensor([[0.5000, 0.5000, 0.0000],
                [0.0000, 0.0000, 0.0000]])
    """
    check_mask(mask)
    return softmax32(scores, mask, dim).to(scores.dtype)


def reference_path(query: Tensor, key: Tensor, value: Tensor, *, score: str | ScoreFn, scale: float,
                   mask: Tensor | None, causal: bool, dropout_p: float, return_weights: bool,
                   chunk_size: int | None, bias: Tensor | None, kind: object) -> tuple[Tensor, Tensor | None]:
    """The formula as written (signature: :data:`attnkit.functional.dispatch.PATHS`): ``output (..., Tq, Dv)``
    in the inputs' dtype, and ``weights (..., Tq, Tk)`` in the scores' dtype (for a named score, the dtype of
    query and key: their float32 scores are internal) when ``return_weights``, else None.

    Example:
        >>> import torch
        >>> q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
        >>> out, w = reference_path(q, k, v, score="scaled_dot", scale=0.5, mask=None, causal=True, dropout_p=0.0,
        ...                         return_weights=True, chunk_size=None, bias=None, kind=None)
        >>> out.shape, float(w[0, 0, 1])
        (torch.Size([2, 3, 6]), 0.0)
    """
    score_fn = named_score(score, scale) if isinstance(score, str) else score
    scores = score_fn(query, key)  # (..., Tq, Tk)
    tq, tk = query.shape[-2], key.shape[-2]
    if not isinstance(scores, Tensor) or tuple(scores.shape[-2:]) != (tq, tk):
        got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"score callable must return (..., Tq, Tk) = (..., {tq}, {tk}). Received: {got}")
    weights_dtype = torch.promote_types(query.dtype, key.dtype) if isinstance(score, str) else scores.dtype
    if bias is not None:
        scores = scores + bias
        weights_dtype = torch.promote_types(weights_dtype, bias.dtype)
    weights = softmax32(scores, with_causal(mask, causal, tq, tk, query.device))  # (..., Tq, Tk)
    applied = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    out = (applied @ value.to(applied.dtype)).to(torch.promote_types(query.dtype, value.dtype))  # (..., Tq, Dv)
    batch = batch_shape(query, key, value, mask, bias)
    if out.shape[:-2] != batch:
        out = out.expand(*batch, tq, value.shape[-1])
    return out, (weights.to(weights_dtype) if return_weights else None)
