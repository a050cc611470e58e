"""Multi-head attention over several input axes (Keras's ``attention_axes``): the non-attention axes
are folded into the batch and the attention axes into one, then the sequence computation runs.

Shape legend: B batch, H query heads, Hkv key/value heads, Dk/Dv head widths, N batch after folding
the non-attention axes, Lq/Lk query/key positions after folding the attention axes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attnkit.kernels import linear
from attnkit.layers._checks import check_mask
from attnkit.layers._mha_parts import both, inverse


def forward_axes(layer, query: Tensor, value: Tensor, key: Tensor, axes: tuple[int, ...], masks: dict,
                 use_causal_mask: bool, return_weights: bool, training: bool | None = None):
    """``layer``'s forward for inputs ``(B, *dims, E)`` attending over ``axes``; ``masks`` holds the
    call's ``query_mask``, ``value_mask``, ``key_mask`` and ``attention_mask``."""
    r = query.dim()
    h, hkv = layer.num_heads, layer.num_key_value_heads
    other = [0] + [a for a in range(1, r - 1) if a not in axes]
    if [query.shape[a] for a in other] != [value.shape[a] for a in other]:
        raise ValueError(
            f"Expected query and value to agree on the non-attention axes {tuple(other)}. "
            f"Received: query.shape={tuple(query.shape)}, value.shape={tuple(value.shape)}"
        )
    nb = [query.shape[a] for a in other]
    qa, ka = [query.shape[a] for a in axes], [value.shape[a] for a in axes]
    n, lq, lk = math.prod(nb), math.prod(qa), math.prod(ka)
    perm = other + [r - 1] + list(axes) + [r]  # projected (B, *dims, H, D) -> (B, *other, H, *attn, D)

    def heads(x: Tensor, count: int, size: int, length: int) -> Tensor:
        x = x.unflatten(-1, (count, size))  # (B, *dims, Hx, D)
        return x.permute(perm).reshape(n, count, length, size)  # (N, Hx, L, D)

    q, k, v = layer._project(query, value, key, query is value and key is value)
    q, k, v = heads(q, h, layer.key_dim, lq), heads(k, hkv, layer.key_dim, lk), heads(v, hkv, layer.value_dim, lk)
    mask = _folded_mask(query, value, other + list(axes), nb, qa, ka, h, masks)
    if use_causal_mask:
        if len(axes) != 1:
            raise ValueError("Expected a single attention axis with `use_causal_mask=True`. "
                             f"Received: attention_axes={layer.attention_axes}")
        mask = both(mask, torch.ones(lq, lk, dtype=torch.bool, device=query.device).tril())
    out, w = layer._attend(q, k, v, mask, False, return_weights, training)
    out = out.reshape(*nb, h, *qa, layer.value_dim).permute(inverse(perm))  # (B, *dims, H, Dv)
    out = linear(out.flatten(-2), layer.output_dense.weight, layer.output_dense.bias)
    out = out.unflatten(-1, layer._out_shape())  # (B, *dims, *output_shape)
    if return_weights:
        return out, w.reshape(*nb, h, *qa, *ka)  # type: ignore[union-attr]
    return out


def _folded_mask(query: Tensor, value: Tensor, pos: list[int], nb: list[int], qa: list[int], ka: list[int],
                 h: int, masks: dict) -> Tensor | None:
    """The call's masks folded like the inputs: broadcastable to ``(N, H, Lq, Lk)``."""
    n, lq, lk = math.prod(nb), math.prod(qa), math.prod(ka)
    mask = None
    if masks["query_mask"] is not None:
        qm = check_mask(masks["query_mask"], "query_mask", query.shape[:-1])
        mask = qm.expand(query.shape[:-1]).permute(pos).reshape(n, 1, lq, 1)
    for name in ("value_mask", "key_mask"):
        if masks[name] is not None:
            km = check_mask(masks[name], name, value.shape[:-1]).expand(value.shape[:-1])
            mask = both(mask, km.permute(pos).reshape(n, 1, 1, lk))
    am = masks["attention_mask"]
    if am is not None:
        full = (*nb, *qa, *ka)
        if isinstance(am, Tensor) and am.dim() == len(full):
            am = am.unsqueeze(len(nb))  # insert the head axis
        am = check_mask(am, "attention_mask", (*nb, h, *qa, *ka))
        am = am.expand(*nb, am.shape[len(nb)], *qa, *ka)
        mask = both(mask, am.reshape(n, am.shape[len(nb)], lq, lk))
    return mask
