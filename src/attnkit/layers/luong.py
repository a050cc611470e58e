"""Luong attention: global, local-m and local-p (Luong, Pham & Manning 2015).

Shape legend: ``B`` batch, ``Tq`` decoder steps scored at once, ``Tk`` source length, ``D``
decoder state width (``dim``), ``Dk`` source state width (``key_dim``), ``W`` half-window (``window``).

    score(h_t, h_s) = h_t^T h_s                       dot
                    = h_t^T W_a h_s                   general
                    = v_a^T tanh(W_a [h_t; h_s])      concat
    a_t(s) = softmax_s(score(h_t, h_s))               global: over all real source positions
    local-m: p_t = t, softmax over s in [p_t - W, p_t + W]
    local-p: p_t = S * sigmoid(v_p^T tanh(W_p h_t)),
             a_t(s) = softmax_{|s - p_t| <= W}(score) * exp(-(s - p_t)^2 / (2 sigma^2)),  sigma = W / 2
    c_t = sum_s a_t(s) h_s

The attentional state ``tanh(W_c [c_t; h_t])`` and input feeding belong to the decoder: this layer
returns ``c_t`` and ``a_t`` for it to combine and feed back.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnkit.functional import attention
from attnkit.layers._checks import check_query_keys
from attnkit.layers.scores import ConcatScore, GeneralScore

SCORES = ("dot", "general", "concat")
MODES = ("global", "local-m", "local-p")


class LuongAttention(nn.Module):
    """Luong et al. 2015 attention with the dot, general or concat score, global or local.

    Args:
        dim: ``D``, the decoder hidden width (the query).
        score: ``"dot"`` (needs ``key_dim == dim``), ``"general"`` or ``"concat"``.
        mode: ``"global"``, ``"local-m"`` (monotonic window centred on the decoder step) or
            ``"local-p"`` (predicted centre, Gaussian weighting).
        window: ``W``, the half-width ``D`` of the paper: positions ``[p_t - W, p_t + W]``.
        key_dim: ``Dk``, the source state width (default ``dim``).

    Call arguments:
        query: ``(B, D)`` the decoder state ``h_t``, or ``(B, Tq, D)`` for several steps.
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
        >>> attn = LuongAttention(8, score="general", mode="local-p", window=2)
        >>> c, a = attn(torch.randn(3, 8), torch.randn(3, 10, 8))
        >>> tuple(c.shape), tuple(a.shape)
        ((3, 8), (3, 10))
    """

    def __init__(
        self, dim: int, score: str = "dot", mode: str = "global", window: int = 10, key_dim: int | None = None
    ) -> None:
        super().__init__()
        key_dim = dim if key_dim is None else key_dim
        for name, v in (("dim", dim), ("key_dim", key_dim)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={v!r}")
        if score not in SCORES:
            raise ValueError(f"Expected `score` in {SCORES}. Received: score={score!r}")
        if mode not in MODES:
            raise ValueError(f"Expected `mode` in {MODES}. Received: mode={mode!r}")
        if not isinstance(window, int) or window < 0:
            raise ValueError(f"Expected `window` to be a non-negative integer. Received: window={window!r}")
        if score == "dot" and key_dim != dim:
            raise ValueError(
                "Expected key_dim == dim for score='dot' (h_t^T h_s needs equal widths; use 'general' otherwise). "
                f"Received: dim={dim}, key_dim={key_dim}"
            )
        self.dim, self.key_dim, self.score_name, self.mode, self.window = dim, key_dim, score, mode, window
        self.score: nn.Module | None = None
        if score == "general":
            self.score = GeneralScore(dim, key_dim)
        elif score == "concat":
            self.score = ConcatScore(dim, key_dim, dim)
        if mode == "local-p":
            self.w_p = nn.Linear(dim, dim, bias=False)
            self.v_p = nn.Linear(dim, 1, bias=False)

    def predict_position(self, query: Tensor, source_length: Tensor) -> Tensor:
        """local-p centre ``p_t = S * sigmoid(v_p^T tanh(W_p h_t))``: ``(B, Tq, D), (B,) -> (B, Tq)``."""
        return source_length[:, None] * torch.sigmoid(self.v_p(torch.tanh(self.w_p(query)))).squeeze(-1)

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        key_mask: Tensor | None = None,
        *,
        position: int | Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Context vectors and alignment weights; see the class docstring for shapes."""
        b, tk = check_query_keys(query, keys, key_mask, self.dim, self.key_dim)
        single = query.dim() == 2
        q = query[:, None, :] if single else query  # (B, Tq, D)
        tq = q.shape[1]
        s = torch.arange(tk, device=keys.device, dtype=keys.dtype)  # source positions
        mask = None if key_mask is None else key_mask[:, None, :]  # (B, 1, Tk)
        centre = None
        if self.mode == "local-m":
            centre = self._steps(position, b, tq, single, keys.device).to(keys.dtype)  # (B, Tq)
        elif self.mode == "local-p":
            length = key_mask.sum(-1).to(keys.dtype) if key_mask is not None else keys.new_full((b,), float(tk))
            centre = self.predict_position(q, length)  # (B, Tq)
        if centre is not None:
            inside = (s[None, None, :] - centre[..., None]).abs() <= self.window  # (B, Tq, Tk)
            mask = inside if mask is None else mask & inside
        score = "dot" if self.score is None else self.score
        context, weights = attention(q, keys, keys, score=score, mask=mask, return_weights=True)
        if self.mode == "local-p":
            sigma = self.window / 2.0
            gauss = torch.exp(-((s[None, None, :] - centre[..., None]) ** 2) / (2 * sigma**2)) if sigma > 0 else (
                (s[None, None, :] - centre[..., None]).abs() == 0
            ).to(keys.dtype)  # fmt: skip
            weights = weights * gauss  # (B, Tq, Tk), 0 outside the window
            context = weights @ keys  # (B, Tq, Dk)
        if single:
            return context[:, 0], weights[:, 0]
        return context, weights

    def _steps(self, position: int | Tensor | None, b: int, tq: int, single: bool, device: torch.device) -> Tensor:
        """Decoder steps ``t`` of each query, ``(B, Tq)``, for local-m."""
        if position is None:
            if single:
                raise ValueError(
                    "Expected `position` (the decoder step t, an int or a (B,) tensor) for mode='local-m' with a "
                    "2-D query. Received: position=None"
                )
            position = 0
        offsets = torch.arange(tq, device=device)
        if isinstance(position, int):
            return (position + offsets)[None, :].expand(b, tq)
        if not isinstance(position, Tensor):
            raise TypeError(f"Expected `position` to be an int or a tensor. Received: {type(position).__name__}")
        position = position.to(device)
        if position.shape == (b,):
            return position[:, None] + offsets[None, :]
        if position.shape == (b, tq):
            return position
        raise ValueError(
            f"Expected `position` of shape ({b},) or ({b}, {tq}). Received: position.shape={tuple(position.shape)}"
        )
