"""Local-attention windows of Luong, Pham & Manning 2015, passed to :class:`~attnkit.layers.luong.LuongAttention`.

Shape legend: ``B`` batch, ``Tq`` decoder steps scored at once, ``Tk`` source length (``S`` real
source tokens of a row), ``Dq`` decoder state width, ``W`` half-width (``half_width``, the paper's ``D``).

A window picks a centre ``p_t`` per decoder step; the attention may only use source positions
``s`` with ``|s - p_t| <= W``, and the window may then reshape the weights:

    MonotonicWindow  (local-m): p_t = t                                         weights kept
    PredictiveWindow (local-p): p_t = S * sigmoid(v_p^T tanh(W_p h_t))          weights * exp(-(s - p_t)^2 / (2 sigma^2)),
                                                                               sigma = W / 2
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _check_half_width(half_width: object) -> int:
    if not isinstance(half_width, int) or isinstance(half_width, bool) or half_width < 0:
        raise ValueError(f"Expected `half_width` to be a non-negative integer. Received: half_width={half_width!r}")
    return half_width


class LocalWindow(nn.Module):
    """Base of the local windows: positions ``[p_t - W, p_t + W]`` around a centre ``p_t``.

    Subclasses give :meth:`centres`; :meth:`reweight` keeps the weights unless overridden.
    """

    def __init__(self, half_width: int) -> None:
        super().__init__()
        self.half_width = _check_half_width(half_width)

    def centres(self, query: Tensor, lengths: Tensor, position: int | Tensor | None, single: bool) -> Tensor:
        """Centres ``p_t`` ``(B, Tq)`` of the queries ``(B, Tq, Dq)``; ``lengths`` ``(B,)`` real source tokens."""
        raise NotImplementedError

    def inside(self, offsets: Tensor) -> Tensor:
        """Bool ``(B, Tq, Tk)``: True where ``|s - p_t| <= W``, for ``offsets = s - p_t``."""
        return offsets.abs() <= self.half_width

    def reweight(self, weights: Tensor, offsets: Tensor) -> Tensor:
        """The final weights ``(B, Tq, Tk)`` from the windowed softmax; the same tensor when unchanged."""
        return weights

    def extra_repr(self) -> str:
        return f"half_width={self.half_width}"


class MonotonicWindow(LocalWindow):
    """local-m (monotonic alignment): the window is centred on the decoder step, ``p_t = t``.

    The weights are the softmax over ``[t - W, t + W]`` and sum to 1 there. The step comes from the
    ``position`` call argument of :class:`~attnkit.layers.luong.LuongAttention`: an int or a ``(B,)``
    tensor for the (first) query, query ``i`` of a 3-D query being at ``position + i``, or ``(B, Tq)``.

    Args:
        half_width: ``W``, the paper's ``D``.

    Example:
        >>> import torch
        >>> from attnkit.layers import DotScore, LuongAttention
        >>> attn = LuongAttention(score=DotScore(), window=MonotonicWindow(half_width=1))
        >>> _, a = attn(torch.randn(2, 4), torch.randn(2, 6, 4), position=3)
        >>> (a[:, [0, 1, 5]] == 0).all().item(), round(a.sum().item(), 4)
        (True, 2.0)
    """

    def centres(self, query: Tensor, lengths: Tensor, position: int | Tensor | None, single: bool) -> Tensor:
        """``p_t = t`` for each query: ``(B, Tq)`` in the queries' dtype."""
        b, tq = query.shape[0], query.shape[1]
        if position is None:
            if single:
                raise ValueError(
                    "Expected `position` (the decoder step t, an int or a (B,) tensor) for a local-m window with a "
                    "2-D query. Received: position=None"
                )
            position = 0
        offsets = torch.arange(tq, device=query.device)
        if isinstance(position, int):
            steps = (position + offsets)[None, :].expand(b, tq)
        elif not isinstance(position, Tensor):
            raise TypeError(f"Expected `position` to be an int or a tensor. Received: {type(position).__name__}")
        elif position.shape == (b,):
            steps = position.to(query.device)[:, None] + offsets[None, :]
        elif position.shape == (b, tq):
            steps = position.to(query.device)
        else:
            raise ValueError(
                f"Expected `position` of shape ({b},) or ({b}, {tq}). Received: position.shape={tuple(position.shape)}"
            )
        return steps.to(query.dtype)  # (B, Tq)


class PredictiveWindow(LocalWindow):
    """local-p (predictive alignment): a learned centre ``p_t = S sigmoid(v_p^T tanh(W_p h_t))`` and Gaussian weights.

    ``S`` is the real source length of the row. The softmax over ``[p_t - W, p_t + W]`` is multiplied
    by ``exp(-(s - p_t)^2 / (2 sigma^2))`` with ``sigma = W / 2``, so the weights sum to at most 1.

    Args:
        query_size: ``Dq``, the decoder state width ``h_t``.
        half_width: ``W``, the paper's ``D``.
        hidden_dim: width of ``W_p`` (default ``query_size``).

    Example:
        >>> import torch
        >>> from attnkit.layers import GeneralScore, LuongAttention
        >>> attn = LuongAttention(score=GeneralScore(8, 6), window=PredictiveWindow(query_size=8, half_width=2))
        >>> c, a = attn(torch.randn(3, 8), torch.randn(3, 10, 6))
        >>> tuple(c.shape), tuple(a.shape), bool((a.sum(-1) <= 1).all())
        ((3, 6), (3, 10), True)
    """

    def __init__(self, query_size: int, half_width: int, hidden_dim: int | None = None) -> None:
        super().__init__(half_width)
        hidden_dim = query_size if hidden_dim is None else hidden_dim
        for name, v in (("query_size", query_size), ("hidden_dim", hidden_dim)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={v!r}")
        self.query_size = query_size
        self.w_p = nn.Linear(query_size, hidden_dim, bias=False)
        self.v_p = nn.Linear(hidden_dim, 1, bias=False)

    def predict_position(self, query: Tensor, source_length: Tensor) -> Tensor:
        """``p_t = S * sigmoid(v_p^T tanh(W_p h_t))``: ``(B, Tq, Dq), (B,) -> (B, Tq)``."""
        return source_length[:, None] * torch.sigmoid(self.v_p(torch.tanh(self.w_p(query)))).squeeze(-1)

    def centres(self, query: Tensor, lengths: Tensor, position: int | Tensor | None, single: bool) -> Tensor:
        """The predicted centres ``(B, Tq)``; ``position`` is not used."""
        return self.predict_position(query, lengths.to(query.dtype))

    def reweight(self, weights: Tensor, offsets: Tensor) -> Tensor:
        """``weights * exp(-(s - p_t)^2 / (2 sigma^2))``, ``sigma = W / 2`` (``W = 0``: only ``s = p_t``)."""
        sigma = self.half_width / 2.0
        if sigma > 0:
            gauss = torch.exp(-(offsets**2) / (2 * sigma**2))  # (B, Tq, Tk)
        else:
            gauss = (offsets.abs() == 0).to(weights.dtype)
        return weights * gauss

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, half_width={self.half_width}"


__all__ = ["LocalWindow", "MonotonicWindow", "PredictiveWindow"]
