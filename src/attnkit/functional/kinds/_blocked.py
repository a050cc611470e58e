"""The engine of the two exact sparse kinds (sliding window, block sparse): attention of query blocks
over a gathered set of keys, and dense rows for global queries.

Queries are cut into ``nb`` blocks of ``b`` positions; query block ``i`` attends only the ``M`` keys at
positions ``key_pos[i]`` (a kind chooses them: a band for the sliding window, a few blocks for block
sparse), under ``allowed (..., nb, b, M)`` (band, causal, key padding, out-of-range, duplicates):

    s = q_blocks @ k[key_pos]^T * scale     # (..., nb, b, M)     instead of (..., Tq, Tk)
    w = softmax over allowed entries         # zero rows when nothing is allowed
    out = w @ v[key_pos]                     # (..., nb, b, Dv) -> (..., Tq, Dv)

Time ``O(Tq * M * D)``, memory ``O(Tq * M + Tq / b * M * D)``: linear in the length for a fixed ``M``.
Global queries (that attend every key) are computed as dense rows ``(..., G, Tk)``: ``O(G * Tk * D)``.
Because every allowed key of a row is in its gathered set, the softmax is over exactly the keys full
attention under the equivalent mask would use: the result is the same, not an approximation.

Shape legend: ``...`` leading dims, Tq/Tk query/key length, nb query blocks of b positions, M gathered
keys per block, G global queries, D query/key width, Dv value width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.functional.kinds._common import safe_softmax


def gathered_attention(query: Tensor, key: Tensor, value: Tensor, key_pos: Tensor, allowed: Tensor, scale: float,
                       dropout_p: float, block: int, return_weights: bool,
                       gathered: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor | None]:
    """Attention of each query block over its gathered keys.

    Args:
        query: ``(..., Tq, D)``; key: ``(..., Tk, D)``; value: ``(..., Tk, Dv)`` (same leading dims, compute dtype).
        key_pos: ``(nb, M)`` long key positions, already clamped to ``[0, Tk)``.
        allowed: bool broadcastable to ``(..., nb, b, M)``.
        scale: factor of the dot products; dropout_p: dropout on the weights; block: ``b``.
        return_weights: also return the dense weights ``(..., Tq, Tk)`` (materialised).
        gathered: ``key[..., key_pos, :]`` and ``value[..., key_pos, :]`` when the caller gathers them faster
            (whole blocks at a time).

    Returns:
        ``(output (..., Tq, Dv), weights or None)``.
    """
    *lead, tq, d = query.shape
    nb = key_pos.shape[0]
    q = F.pad(query, (0, 0, 0, nb * block - tq)).view(*lead, nb, block, d)  # (..., nb, b, D)
    k, v = gathered or (key[..., key_pos, :], value[..., key_pos, :])  # (..., nb, M, D), (..., nb, M, Dv)
    s = (q @ k.transpose(-2, -1)) * scale  # (..., nb, b, M)
    w = safe_softmax(s, allowed)  # (..., nb, b, M)
    applied = F.dropout(w, dropout_p) if dropout_p > 0 else w
    out = (applied @ v).reshape(*lead, nb * block, value.shape[-1])[..., :tq, :]  # (..., Tq, Dv)
    if not return_weights:
        return out, None
    tk = key.shape[-2]
    dense = w.new_zeros(*w.shape[:-1], tk)  # (..., nb, b, Tk); duplicates and clamped slots have weight 0
    dense = dense.scatter_add(-1, key_pos[:, None, :].expand(w.shape), w)
    return out, dense.reshape(*lead, nb * block, tk)[..., :tq, :]


def global_rows(query: Tensor, key: Tensor, value: Tensor, rows: Tensor, allowed: Tensor, scale: float,
                dropout_p: float) -> tuple[Tensor, Tensor]:
    """Dense attention of the queries at positions ``rows (G,)`` over every key.

    Args:
        allowed: bool broadcastable to ``(..., G, Tk)`` (causal and key padding).

    Returns:
        ``(output (..., G, Dv), weights (..., G, Tk))``.
    """
    s = (query[..., rows, :] @ key.transpose(-2, -1)) * scale  # (..., G, Tk)
    w = safe_softmax(s, allowed)
    applied = F.dropout(w, dropout_p) if dropout_p > 0 else w
    return applied @ value, w  # (..., G, Dv), (..., G, Tk)


def put_rows(t: Tensor, rows: Tensor, new: Tensor) -> Tensor:
    """``t (..., Tq, X)`` with the rows at ``rows (G,)`` replaced by ``new (..., G, X)`` (out of place)."""
    return t.index_copy(-2, rows, new.to(t.dtype))


def causal_allowed(qpos: Tensor, kpos: Tensor, causal: bool) -> Tensor | None:
    """``kpos <= qpos`` (broadcast) when ``causal``, else None."""
    return kpos <= qpos if causal else None


def and_all(*masks: Tensor | None) -> Tensor:
    """The ``&`` of the masks that are not None (at least one is)."""
    present = [m for m in masks if m is not None]
    out = present[0]
    for m in present[1:]:
        out = out & m
    return out


def padded_key_mask(key_mask: Tensor | None, key_pos: Tensor) -> Tensor | None:
    """A key padding mask ``(..., Tk)`` gathered at ``key_pos (nb, M)`` as ``(..., nb, 1, M)``, or None."""
    return None if key_mask is None else key_mask[..., key_pos][..., :, None, :]


def row_mask(key_mask: Tensor | None, rows: Tensor, tk: int, causal: bool) -> Tensor:
    """What the dense global rows ``rows (G,)`` may attend: ``(..., G, Tk)`` (or ``(G, Tk)``)."""
    kpos = torch.arange(tk, device=rows.device)
    allowed = torch.ones(rows.shape[0], tk, dtype=torch.bool, device=rows.device)
    if causal:
        allowed = kpos[None, :] <= rows[:, None]
    return allowed if key_mask is None else allowed & key_mask[..., None, :]
