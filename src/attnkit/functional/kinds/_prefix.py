"""Attention through a positive feature map (linear attention, Performer), without the ``Tq x Tk`` matrix.

With features ``phi(q_i), phi(k_j) >= 0`` of width F, attention weights ``A_ij = phi(q_i) . phi(k_j)``
normalised over the allowed keys, and associativity moves the sum over keys inside:

    output_i = phi(q_i)^T S / (phi(q_i)^T z),   S = sum_j phi(k_j) v_j^T  (F, Dv),   z = sum_j phi(k_j)  (F,)

Causal: ``S_i`` and ``z_i`` sum over ``j <= i`` only: prefix sums. They are taken per chunk of ``C``
positions, with no Python loop over positions or chunks: within a chunk the ``C x C`` product is masked
to its lower triangle; across chunks the states ``S`` and ``z`` of the earlier chunks come from a
cumulative sum over the ``T / C`` chunk states:

    S_prev[c] = sum_{c' < c} phi(K_c')^T V_c'             (..., T/C, F, Dv)
    num[c]    = phi(Q_c) S_prev[c] + tril(phi(Q_c) phi(K_c)^T) V_c
    den[c]    = phi(Q_c) z_prev[c] + rowsum(tril(phi(Q_c) phi(K_c)^T))

Time ``O(T * F * Dv + T * C * (F + Dv))``; memory ``O(T / C * F * Dv + T * C + T * F)`` (the default ``C``
balances the first two: ``C ~ sqrt(F * Dv)``). Non-causal: time ``O((Tq + Tk) * F * Dv)``, memory
``O(F * Dv + (Tq + Tk) * F)``. Masked keys get zero features; a row whose allowed keys have zero total
weight (every key masked) outputs zeros.

Shape legend: ``...`` leading dims, T length, Tq/Tk query/key length, F feature width, Dv value width,
C chunk length.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def default_chunk(features: int, dv: int) -> int:
    """The chunk ``C`` that balances the chunk states against the intra-chunk products: ``~sqrt(F * Dv)``.

    Example:
        >>> default_chunk(64, 64)
        64
    """
    return int(min(max(2 ** round(math.log2(math.sqrt(features * dv))), 16), 512))


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` per row, zeros where ``den == 0`` (no allowed key): never NaN, nor in the gradient (a NaN
    query row gives a NaN ``den`` and stays NaN, as on every path)."""
    tiny = torch.finfo(den.dtype).tiny
    return torch.where(den[..., None] != 0, num / den.clamp_min(tiny)[..., None], torch.zeros_like(num))


def dense_weights(phi_q: Tensor, phi_k: Tensor, causal: bool) -> Tensor:
    """The normalised weights ``(..., Tq, Tk)`` (materialised, for ``return_weights``)."""
    a = phi_q @ phi_k.transpose(-2, -1)  # (..., Tq, Tk)
    if causal:
        a = a.tril()
    den = a.sum(-1)
    return _ratio(a, den)


def _exclusive_cumsum(t: Tensor, dim: int) -> Tensor:
    """Sum of the entries before each one along ``dim`` (the first is zero)."""
    shifted = t.narrow(dim, 0, t.shape[dim] - 1).cumsum(dim)
    return torch.cat([torch.zeros_like(t.narrow(dim, 0, 1)), shifted], dim=dim)


def causal_features(phi_q: Tensor, phi_k: Tensor, value: Tensor, chunk: int) -> Tensor:
    """Causal feature attention, ``(..., T, F)``, ``(..., T, F)``, ``(..., T, Dv)`` -> ``(..., T, Dv)``."""
    *lead, t, f = phi_q.shape
    dv = value.shape[-1]
    nc = -(-t // chunk)
    pad = nc * chunk - t  # zero features at the end: they add nothing to any sum
    q = F.pad(phi_q, (0, 0, 0, pad)).view(*lead, nc, chunk, f)  # (..., nc, C, F)
    k = F.pad(phi_k, (0, 0, 0, pad)).view(*lead, nc, chunk, f)
    v = F.pad(value, (0, 0, 0, pad)).view(*lead, nc, chunk, dv)  # (..., nc, C, Dv)
    s_prev = _exclusive_cumsum(k.transpose(-2, -1) @ v, dim=-3)  # (..., nc, F, Dv)
    z_prev = _exclusive_cumsum(k.sum(-2), dim=-2)  # (..., nc, F)
    intra = (q @ k.transpose(-2, -1)).tril()  # (..., nc, C, C)
    num = q @ s_prev + intra @ v  # (..., nc, C, Dv)
    den = (q @ z_prev[..., :, None])[..., 0] + intra.sum(-1)  # (..., nc, C)
    return _ratio(num, den).reshape(*lead, nc * chunk, dv)[..., :t, :]


def feature_attention(phi_q: Tensor, phi_k: Tensor, value: Tensor, key_mask: Tensor | None, causal: bool,
                      chunk: int | None, return_weights: bool) -> tuple[Tensor, Tensor | None]:
    """Attention with weights ``phi(q_i) . phi(k_j)`` normalised over the allowed keys.

    Args:
        phi_q: ``(..., Tq, F)`` and phi_k: ``(..., Tk, F)``, non-negative features; value: ``(..., Tk, Dv)``.
        key_mask: ``(..., Tk)`` bool or None; causal: top-left aligned, ``j <= i``.
        chunk: prefix-sum chunk ``C`` (default :func:`default_chunk`); return_weights: also the dense weights.

    Returns:
        ``(output (..., Tq, Dv), weights (..., Tq, Tk) or None)``.
    """
    if key_mask is not None:
        phi_k = phi_k * key_mask[..., None].to(phi_k.dtype)  # masked keys weigh nothing
    if return_weights:
        weights = dense_weights(phi_q, phi_k, causal)
        return weights @ value, weights
    if not causal:
        s = phi_k.transpose(-2, -1) @ value  # (..., F, Dv)
        den = phi_q @ phi_k.sum(-2)[..., :, None]  # (..., Tq, 1)
        return _ratio(phi_q @ s, den[..., 0]), None
    tq, tk = phi_q.shape[-2], phi_k.shape[-2]
    if tk > tq:  # keys past the last query are never attended
        phi_k, value = phi_k[..., :tq, :], value[..., :tq, :]
    elif tk < tq:  # queries past the last key see every key: zero features for the missing keys
        phi_k, value = F.pad(phi_k, (0, 0, 0, tq - tk)), F.pad(value, (0, 0, 0, tq - tk))
    chunk = chunk or default_chunk(phi_q.shape[-1], value.shape[-1])
    return causal_features(phi_q, phi_k, value, chunk), None
