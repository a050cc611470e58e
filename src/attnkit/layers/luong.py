"""Luong attention (Luong, Pham & Manning 2015): a score module and an optional local window, composed.

Shape legend: ``B`` batch, ``Tq`` decoder steps scored at once, ``Tk`` source length, ``Dq`` decoder
state width (``query_size``), ``Dk`` source state width (``key_size``), ``W`` half-window.

    score(h_t, h_s) = h_t^T h_s                       DotScore()
                    = h_t^T W_a h_s                   GeneralScore(Dq, Dk)
                    = v_a^T tanh(W_a [h_t; h_s])      ConcatScore(Dq, Dk, hidden_dim)
    a_t(s) = softmax_s(score(h_t, h_s))               global (window=None): over all real source positions
    local-m: p_t = t, softmax over s in [p_t - W, p_t + W]                        MonotonicWindow(W)
    local-p: p_t = S * sigmoid(v_p^T tanh(W_p h_t)),                              PredictiveWindow(Dq, W)
             a_t(s) = softmax_{|s - p_t| <= W}(score) * exp(-(s - p_t)^2 / (2 sigma^2)),  sigma = W / 2
    c_t = sum_s a_t(s) h_s

The attentional state ``tanh(W_c [c_t; h_t])`` and input feeding belong to the decoder: this layer
returns ``c_t`` and ``a_t`` for it to combine and feed back. Names in JSON configs
(``"luong-local-p"``) become these objects in :func:`attnkit.layers.factory.build_attention`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnkit.functional import attention
from attnkit.layers._checks import check_query_keys
from attnkit.layers.scores import DotScore
from attnkit.layers.windows import LocalWindow


class LuongAttention(nn.Module):
    """Luong et al. 2015 attention: ``score`` decides how ``h_t`` matches ``h_s``, ``window`` where it may look.

    Args:
        query_size: ``Dq``, the decoder state width (default: the score's or window's ``query_size``).
        key_size: ``Dk``, the source state width (default: the score's ``key_size``, else ``Dq``). Without
            any size (``DotScore`` alone), query and keys need only agree with each other.
        score: a score module ``(B, Tq, Dq), (B, Tk, Dk) -> (B, Tq, Tk)``: ``DotScore()`` (default),
            ``GeneralScore(Dq, Dk)``, ``ConcatScore(Dq, Dk, A)``, or any of :mod:`attnkit.layers.scores`.
        window: ``None`` (global attention), ``MonotonicWindow(W)`` (local-m) or
            ``PredictiveWindow(Dq, W)`` (local-p), from :mod:`attnkit.layers.windows`. Names as written
            in configs (``"general"``, ``"local-p"``) become these objects in :mod:`attnkit.layers.factory`.

    Call arguments:
        query: ``(B, Dq)`` the decoder state ``h_t``, or ``(B, Tq, Dq)`` for several steps.
        keys: ``(B, Tk, Dk)`` the source states ``h_s`` (also the values).
        key_mask: ``(B, Tk)`` bool, True = real token. ``S`` of local-p is its row sum.
        position: local-m only: the decoder step ``t`` of the (first) query, an int or a ``(B,)``
            tensor (or ``(B, Tq)``); query ``i`` of a 3-D query is at ``position + i``. Defaults to 0
            for a 3-D query; required for a 2-D one.

    Returns:
        ``(context, weights)``: ``(B, Dk)``/``(B, Tk)`` or ``(B, Tq, Dk)``/``(B, Tq, Tk)``. Global and
        local-m weights sum to 1 over the allowed positions; local-p weights are the windowed
        softmax times the Gaussian, so they sum to at most 1; all are 0 outside the window.

    Example:
        >>> import torch
        >>> from attnkit.layers import GeneralScore, PredictiveWindow
        >>> attn = LuongAttention(score=GeneralScore(8, 6), window=PredictiveWindow(8, half_width=2))
        >>> c, a = attn(torch.randn(3, 8), torch.randn(3, 10, 6))
        >>> tuple(c.shape), tuple(a.shape)
        ((3, 6), (3, 10))
        >>> c, a = LuongAttention()(torch.randn(3, 5, 4), torch.randn(3, 7, 4))  # global dot score
        >>> tuple(c.shape), tuple(a.shape)
        ((3, 5, 4), (3, 5, 7))
    """

    def __init__(
        self,
        query_size: int | None = None,
        key_size: int | None = None,
        *,
        score: nn.Module | None = None,
        window: LocalWindow | None = None,
    ) -> None:
        super().__init__()
        if score is not None and not isinstance(score, nn.Module):
            raise TypeError(f"Expected `score` to be a score module (DotScore, GeneralScore, ConcatScore, ...). "
                            f"Received: score={score!r}")
        if window is not None and not isinstance(window, LocalWindow):
            raise TypeError(f"Expected `window` to be None or a LocalWindow (MonotonicWindow, PredictiveWindow). "
                            f"Received: window={window!r}")
        self.score = DotScore() if score is None else score
        self.window = window
        self.query_size, self.key_size = self._sizes(query_size, key_size)

    def _sizes(self, query_size: int | None, key_size: int | None) -> tuple[int | None, int | None]:
        """``(Dq, Dk)`` from the arguments, else from the score and window; checked against them."""
        q_known = getattr(self.score, "query_size", None) or getattr(self.window, "query_size", None)
        k_known = getattr(self.score, "key_size", None)
        query_size = q_known if query_size is None else query_size
        key_size = (k_known or query_size) if key_size is None else key_size
        for name, v in (("query_size", query_size), ("key_size", key_size)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
                raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={v!r}")
        for name, v, part in (
            ("query_size", query_size, self.score), ("key_size", key_size, self.score),
            ("query_size", query_size, self.window),
        ):  # fmt: skip
            own = getattr(part, name, None)
            if own is not None and own != v:
                raise ValueError(
                    f"Expected `{name}` to match the {type(part).__name__}'s. Received: {name}={v}, "
                    f"{type(part).__name__}.{name}={own}"
                )
        if self.score.__class__ is DotScore and query_size is not None and key_size != query_size:
            raise ValueError(
                "Expected key_size == query_size for DotScore (h_t^T h_s needs equal widths; use GeneralScore "
                f"otherwise). Received: query_size={query_size}, key_size={key_size}"
            )
        return query_size, key_size

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        key_mask: Tensor | None = None,
        *,
        position: int | Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Context vectors and alignment weights; see the class docstring for shapes."""
        width = query.shape[-1] if isinstance(query, Tensor) else 0
        b, tk = check_query_keys(query, keys, key_mask, self.query_size or width, self.key_size or width)
        single = query.dim() == 2
        q = query[:, None, :] if single else query  # (B, Tq, Dq)
        mask = None if key_mask is None else key_mask[:, None, :]  # (B, 1, Tk)
        offsets = None
        if self.window is not None:
            # 1. the window: centres p_t and the positions |s - p_t| <= W
            lengths = key_mask.sum(-1) if key_mask is not None else torch.full((b,), tk, device=keys.device)  # (B,)
            centres = self.window.centres(q, lengths, position, single)  # (B, Tq)
            s = torch.arange(tk, device=keys.device, dtype=keys.dtype)  # source positions
            offsets = s[None, None, :] - centres[..., None]  # (B, Tq, Tk): s - p_t
            inside = self.window.inside(offsets)  # (B, Tq, Tk)
            mask = inside if mask is None else mask & inside
        # 2. softmax of the scores over the allowed positions; c_t = sum_s a_t(s) h_s
        score = "dot" if self.score.__class__ is DotScore else self.score  # the named score keeps the fused path
        context, weights = attention(q, keys, keys, score=score, mask=mask, return_weights=True)
        if offsets is not None:
            # 3. the window may reshape the weights (local-p: times the Gaussian); then the context follows
            shaped = self.window.reweight(weights, offsets)  # (B, Tq, Tk)
            if shaped is not weights:
                weights, context = shaped, shaped @ keys  # (B, Tq, Dk)
        if single:
            return context[:, 0], weights[:, 0]
        return context, weights

