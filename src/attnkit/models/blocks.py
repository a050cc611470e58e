"""Transformer building blocks shared by the models: multi-head self-attention with a fused
query/key/value projection and a key/value cache, the position-wise feed-forward network, and the
pre-LN (GPT-2) and post-LN (BERT, Vaswani et al. 2017) residual blocks.

Shape legend: B batch, T positions of this call, S key positions (cached + new), H heads,
D head size, E model width (E = H * D), F feed-forward width, L layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.functional import attention


def _gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


#: Activation names as they appear in Hugging Face configs -> functions. ``gelu_new`` (GPT-2, BERT's
#: original TF code) is the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
#: computed here by one fused kernel.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    """Return the activation function called ``name`` (a key of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"Expected an activation in {sorted(ACTIVATIONS)}. Received: {name!r}")
    return ACTIVATIONS[name]


class StaticKVCache:
    """Keys and values of every layer of a decoder stack, preallocated so that decoding appends in
    place (no concatenation per step; :class:`attnkit.layers.KVCache` is the growing per-layer cache
    of the attention layers).

    Storage is two tensors ``(L, B, H, capacity, D)``; :meth:`update` writes a layer's new keys and
    values at positions ``[length, length + T)`` and returns views of the first ``length + T``
    positions; the model calls :meth:`advance` once per forward, after its last layer. When the
    capacity runs out the storage doubles (decoding with :meth:`GPT.generate` never needs that: it
    preallocates prompt + new tokens).

    Indexing gives the ``(keys, values)`` pair of one layer, each ``(B, H, length, D)``, as the
    legacy ``past_key_values`` tuples of ``transformers`` do.

    Example:
        >>> cache = StaticKVCache(n_layer=2, batch=1, n_head=4, head_dim=8, capacity=16)
        >>> k, v = cache.update(0, torch.zeros(1, 4, 3, 8), torch.zeros(1, 4, 3, 8))
        >>> k.shape
        torch.Size([1, 4, 3, 8])
    """

    def __init__(
        self,
        n_layer: int,
        batch: int,
        n_head: int,
        head_dim: int,
        capacity: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        shape = (n_layer, batch, n_head, max(capacity, 1), head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)  # (L, B, H, capacity, D)
        self.values = torch.zeros(shape, device=device, dtype=dtype)  # (L, B, H, capacity, D)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.keys.shape[3]

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``k, v`` ``(B, H, T, D)`` of ``layer`` after the cached positions; return all keys
        and values of that layer, ``(B, H, length + T, D)`` each."""
        start, end = self.length, self.length + k.shape[2]
        if end > self.capacity:
            self._grow(end)
        self.keys[layer, :, :, start:end] = k
        self.values[layer, :, :, start:end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, steps: int) -> None:
        """Mark ``steps`` more positions as cached (call once per forward, after every layer)."""
        self.length += steps

    def _grow(self, needed: int) -> None:
        new_capacity = max(2 * self.capacity, needed)
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = old.new_zeros(*old.shape[:3], new_capacity, old.shape[4])
            new[:, :, :, : old.shape[3]] = old
            setattr(self, name, new)

    def __len__(self) -> int:
        return self.keys.shape[0]

    def __getitem__(self, layer: int) -> tuple[Tensor, Tensor]:
        n = self.length
        return self.keys[layer, :, :, :n], self.values[layer, :, :, :n]


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused input projection.

    ``[Q K V] = x W_qkv + b_qkv``; ``head_h = softmax(Q_h K_h^T / sqrt(D) + mask) V_h``;
    ``out = concat(head_1..head_H) W_o + b_o`` (Vaswani et al. 2017, section 3.2.2), computed by
    :func:`attnkit.functional.attention` (torch's fused SDPA when the weights are not requested).

    Args:
        n_embd: model width E.
        n_head: number of heads H (E must be divisible by H).
        attn_dropout: dropout on the attention weights (training only).
        resid_dropout: dropout on the output projection (training only).

    Call arguments:
        x: ``(B, T, E)``.
        attn_mask: bool, broadcastable to ``(B, H, T, S)``, True = may attend; or None.
        causal: True to let position t attend positions <= t only (used without a cache).
        cache, layer: a :class:`StaticKVCache` and this layer's index in it, or None.
        output_attentions: also return the weights ``(B, H, T, S)``.

    Returns:
        ``(out (B, T, E), weights or None)``.
    """

    def __init__(self, n_embd: int, n_head: int, attn_dropout: float = 0.0, resid_dropout: float = 0.0):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(
                f"Expected the width divisible by the number of heads. Received: width {n_embd}, heads {n_head}"
            )
        self.n_head = n_head
        self.head_dim = n_embd // n_head
        self.attn_dropout = attn_dropout
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.resid_dropout = nn.Dropout(resid_dropout)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        causal: bool = False,
        cache: StaticKVCache | None = None,
        layer: int = 0,
        output_attentions: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        B, T, E = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim)  # (B, T, 3, H, D)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, T, D)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, H, S, D)
        p = self.attn_dropout if self.training else 0.0
        weights = None
        if output_attentions:
            y, weights = attention(q, k, v, mask=attn_mask, causal=causal, dropout_p=p, return_weights=True)
        else:
            y = attention(q, k, v, mask=attn_mask, causal=causal, dropout_p=p)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, E)  # (B, T, E)
        return self.resid_dropout(self.proj(y)), weights


class FeedForward(nn.Module):
    """Position-wise feed-forward network: ``dropout(act(x W_1 + b_1) W_2 + b_2)``.

    Shapes: ``(B, T, E) -> (B, T, F) -> (B, T, E)``.
    """

    def __init__(self, n_embd: int, n_inner: int, activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        self.fc_in = nn.Linear(n_embd, n_inner)
        self.act = get_activation(activation)
        self.fc_out = nn.Linear(n_inner, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.fc_out(self.act(self.fc_in(x))))


class PreLNBlock(nn.Module):
    """Pre-LN residual block (GPT-2): ``x = x + Attn(LN_1(x))``; ``x = x + FFN(LN_2(x))``.

    Call arguments as :class:`SelfAttention`; returns ``(x (B, T, E), weights or None)``.
    """

    def __init__(self, attn: SelfAttention, mlp: FeedForward, n_embd: int, eps: float = 1e-5):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=eps)
        self.attn = attn
        self.ln_2 = nn.LayerNorm(n_embd, eps=eps)
        self.mlp = mlp

    def forward(self, x: Tensor, **attn_kwargs) -> tuple[Tensor, Tensor | None]:
        a, weights = self.attn(self.ln_1(x), **attn_kwargs)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, weights


class PostLNBlock(nn.Module):
    """Post-LN residual block (BERT, the original Transformer):
    ``x = LN_1(x + Attn(x))``; ``x = LN_2(x + FFN(x))``.

    Call arguments as :class:`SelfAttention`; returns ``(x (B, T, E), weights or None)``.
    """

    def __init__(self, attn: SelfAttention, mlp: FeedForward, n_embd: int, eps: float = 1e-12):
        super().__init__()
        self.attn = attn
        self.ln_1 = nn.LayerNorm(n_embd, eps=eps)
        self.mlp = mlp
        self.ln_2 = nn.LayerNorm(n_embd, eps=eps)

    def forward(self, x: Tensor, **attn_kwargs) -> tuple[Tensor, Tensor | None]:
        a, weights = self.attn(x, **attn_kwargs)
        x = self.ln_1(x + a)
        x = self.ln_2(x + self.mlp(x))
        return x, weights


def init_weights(module: nn.Module, std: float) -> None:
    """Initialise as GPT-2 and BERT do: Linear and Embedding weights ~ N(0, std), biases 0,
    LayerNorm weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def scaled_residual_std(std: float, n_layer: int) -> float:
    """GPT-2's init for projections into the residual stream: ``std / sqrt(2 L)``."""
    return std / math.sqrt(2 * n_layer)
