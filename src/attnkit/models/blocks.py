"""The one block family of attnkit's Transformer models: ``Transformer``, ``Bert`` and ``GPT`` (and every
later model) stack these blocks, each built from the attention engine,
:class:`attnkit.layers.engine.AttentionEngine`, with :class:`attnkit.layers.KVCache` as its cache.

Norm placement is a choice of block, not a flag:

    PostNormBlock (Vaswani et al. 2017, BERT)       PreNormBlock (GPT-2, pre-LN Transformers)
    x = LN(x + Drop(SelfAttn(x)))                   x = x + Drop(SelfAttn(LN(x)))
    x = LN(x + Drop(CrossAttn(x, m)))  (decoder)    x = x + Drop(CrossAttn(LN(x), m))  (decoder)
    x = LN(x + Drop(FFN(x)))                        x = x + Drop(FFN(LN(x)))

with ``FFN(x) = act(x W_1 + b_1) W_2 + b_2``. A block's self-attention is causal or not per call
(``causal=``), and it has a cross-attention sub-layer when built with ``cross_attention=True``.

Shape legend: B batch, T positions of this call, S key positions (cached + new) or source positions,
H heads, D model width (``d_model``), F feed-forward width (``ff_dim``), L layers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.functional.kinds import AttentionKind
from attnkit.kernels import Dropout, Linear, linear
from attnkit.layers.engine import AttentionEngine
from attnkit.layers.kv_cache import KVCache
from attnkit.models.outputs import BlockOutput


def _gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


#: Activation names as they appear in model configs -> functions. ``gelu_new`` (GPT-2, BERT's original TF
#: code) is the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), one fused kernel.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    """Return the activation function called ``name`` (a key of :data:`ACTIVATIONS`).

    Example:
        >>> import torch
        >>> get_activation("relu")(torch.tensor([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"Expected an activation in {sorted(ACTIVATIONS)}. Received: {name!r}")
    return ACTIVATIONS[name]


class FeedForward(nn.Module):
    """Position-wise feed-forward network ``act(x W_1 + b_1) W_2 + b_2``: ``(B, T, D) -> (B, T, F) -> (B, T, D)``.

    Example:
        >>> import torch
        >>> FeedForward(8, 32, "gelu")(torch.randn(2, 3, 8)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, d_model: int, ff_dim: int, activation: str = "gelu") -> None:
        super().__init__()
        self.fc_in = Linear(d_model, ff_dim)
        self.act = get_activation(activation)
        self.fc_out = Linear(ff_dim, d_model)

    def forward(self, x: Tensor) -> Tensor:
        fc_in, fc_out = self.fc_in, self.fc_out  # the kernel called directly: one module call, not three
        return linear(self.act(linear(x, fc_in.weight, fc_in.bias)), fc_out.weight, fc_out.bias)


def _sublayers(block: nn.Module, d_model: int, num_heads: int, ff_dim: int, activation: str, dropout: float,
               attention_dropout: float, cross_attention: bool, eps: float, kind: str | dict | AttentionKind = "full",
               window: int | None = None) -> None:
    """Create the sub-layers both block classes share (same names, so checkpoints map onto either); ``kind`` and
    ``window`` pick the self-attention's kind (:mod:`attnkit.functional.kinds`)."""
    block.self_attn = AttentionEngine(d_model, num_heads, dropout=attention_dropout, kind=kind, window=window)
    block.self_attn_norm = nn.LayerNorm(d_model, eps=eps)
    block.cross_attn = AttentionEngine(d_model, num_heads, dropout=attention_dropout) if cross_attention else None
    block.cross_attn_norm = nn.LayerNorm(d_model, eps=eps) if cross_attention else None
    block.ff = FeedForward(d_model, ff_dim, activation)
    block.ff_norm = nn.LayerNorm(d_model, eps=eps)
    block.dropout = Dropout(dropout)


def _identity(x: Tensor) -> Tensor:
    return x


def _dropout_of(block: nn.Module) -> Callable[[Tensor], Tensor]:
    """The block's residual dropout, or the identity when it would do nothing (evaluation, p = 0)."""
    return block.dropout if block.training and block.dropout.p > 0 else _identity


def _cross_attend(block: nn.Module, h: Tensor, memory: Tensor | None, memory_mask: Tensor | None,
                  cache: KVCache | None, weights: bool) -> tuple[Tensor, Tensor | None]:
    if cache is not None and cache.length > 0:
        memory, memory_mask = h, None  # a filled static cache holds the memory's keys, values and mask
    if memory is None:
        raise ValueError("Expected `memory` (B, S, D) for a block with cross-attention. Received: memory=None")
    return block.cross_attn(h, memory, key_mask=memory_mask, cache=cache, return_weights=weights)


class PostNormBlock(nn.Module):
    """Post-norm residual block (the original Transformer, BERT): ``x = LN(x + Drop(sublayer(x)))``.

    Args:
        d_model: model width D; num_heads: H (D % H == 0); ff_dim: feed-forward width F.
        activation: a key of :data:`ACTIVATIONS`.
        dropout: dropout on each sub-layer's output; attention_dropout: on the attention weights.
        cross_attention: add a cross-attention sub-layer (an encoder-decoder's decoder block).
        eps: LayerNorm epsilon.
        kind, window: the self-attention's kind (``"full"``, ``"sliding_window"`` with ``window``, an options
            dict ``{"name": ..., **options}``, ...).

    Call arguments:
        x: ``(B, T, D)``.
        key_mask: ``(B, T)`` bool, True = real position (with a cache: of this call's positions).
        causal: position t attends positions <= t only (shifted by the cache length).
        cache: a :class:`KVCache` for the self-attention (step-by-step decoding), or None.
        memory, memory_mask: the encoder output ``(B, S, D)`` and its ``(B, S)`` padding mask.
        cross_cache: a static :class:`KVCache` for the cross-attention, or None.
        return_weights: also return the self-attention weights and, with a memory, the cross-attention weights.

    Returns:
        :class:`BlockOutput` ``(hidden (B, T, D), self_weights, cross_weights)``.

    Example:
        >>> import torch
        >>> block = PostNormBlock(d_model=8, num_heads=2, ff_dim=16)
        >>> out = block(torch.randn(3, 5, 8), key_mask=torch.ones(3, 5, dtype=torch.bool), return_weights=True)
        >>> out.hidden.shape, out.self_weights.shape
        (torch.Size([3, 5, 8]), torch.Size([3, 2, 5, 5]))
    """

    def __init__(self, d_model: int, num_heads: int, ff_dim: int, activation: str = "gelu", dropout: float = 0.0,
                 attention_dropout: float = 0.0, cross_attention: bool = False, eps: float = 1e-5,
                 kind: str | dict | AttentionKind = "full", window: int | None = None) -> None:
        super().__init__()
        _sublayers(self, d_model, num_heads, ff_dim, activation, dropout, attention_dropout, cross_attention, eps,
                   kind, window)

    def forward(self, x: Tensor, *, key_mask: Tensor | None = None, causal: bool = False,
                cache: KVCache | None = None, memory: Tensor | None = None, memory_mask: Tensor | None = None,
                cross_cache: KVCache | None = None, return_weights: bool = False) -> BlockOutput:
        drop = _dropout_of(self)
        a, w_self = self.self_attn(x, key_mask=key_mask, causal=causal, cache=cache, return_weights=return_weights)
        x = self.self_attn_norm(x + drop(a))
        w_cross = None
        if self.cross_attn is not None:
            a, w_cross = _cross_attend(self, x, memory, memory_mask, cross_cache, return_weights)
            x = self.cross_attn_norm(x + drop(a))
        x = self.ff_norm(x + drop(self.ff(x)))
        return BlockOutput(x, w_self, w_cross)


class PreNormBlock(nn.Module):
    """Pre-norm residual block (GPT-2, pre-LN Transformers): ``x = x + Drop(sublayer(LN(x)))``.

    Arguments, call arguments and returns as :class:`PostNormBlock`.

    Example:
        >>> import torch
        >>> block = PreNormBlock(d_model=8, num_heads=2, ff_dim=16, cross_attention=True)
        >>> out = block(torch.randn(3, 5, 8), causal=True, memory=torch.randn(3, 7, 8), return_weights=True)
        >>> out.self_weights.shape, out.cross_weights.shape
        (torch.Size([3, 2, 5, 5]), torch.Size([3, 2, 5, 7]))
    """

    def __init__(self, d_model: int, num_heads: int, ff_dim: int, activation: str = "gelu", dropout: float = 0.0,
                 attention_dropout: float = 0.0, cross_attention: bool = False, eps: float = 1e-5,
                 kind: str | dict | AttentionKind = "full", window: int | None = None) -> None:
        super().__init__()
        _sublayers(self, d_model, num_heads, ff_dim, activation, dropout, attention_dropout, cross_attention, eps,
                   kind, window)

    def forward(self, x: Tensor, *, key_mask: Tensor | None = None, causal: bool = False,
                cache: KVCache | None = None, memory: Tensor | None = None, memory_mask: Tensor | None = None,
                cross_cache: KVCache | None = None, return_weights: bool = False) -> BlockOutput:
        drop = _dropout_of(self)
        a, w_self = self.self_attn(self.self_attn_norm(x), key_mask=key_mask, causal=causal, cache=cache,
                                   return_weights=return_weights)
        x = x + drop(a)
        w_cross = None
        if self.cross_attn is not None:
            a, w_cross = _cross_attend(self, self.cross_attn_norm(x), memory, memory_mask, cross_cache, return_weights)
            x = x + drop(a)
        x = x + drop(self.ff(self.ff_norm(x)))
        return BlockOutput(x, w_self, w_cross)


#: Norm placement -> block class, for the one place a config string becomes a block.
BLOCKS: dict[str, type[nn.Module]] = {"post": PostNormBlock, "pre": PreNormBlock}


def block_class(norm: str) -> type[nn.Module]:
    """The block class for a config's norm placement, ``"pre"`` or ``"post"``.

    Example:
        >>> block_class("pre").__name__
        'PreNormBlock'
    """
    if norm not in BLOCKS:
        raise ValueError(f"Expected norm in {sorted(BLOCKS)}. Received: {norm!r}")
    return BLOCKS[norm]


def init_weights(module: nn.Module, std: float) -> None:
    """Initialise as GPT-2 and BERT do: projection weights (``nn.Linear`` and the attention engines'
    input projections) and embeddings ~ N(0, std), biases 0, LayerNorm weight 1 and bias 0.

    Example:
        >>> block = PreNormBlock(8, 2, 16); init_weights(block, 0.02)
        >>> float(block.self_attn.in_proj_bias.detach().abs().sum())
        0.0
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, AttentionEngine):  # its input projections (packed, or the Keras facade's three)
            for name, p in m.named_parameters(recurse=False):
                nn.init.zeros_(p) if name.endswith("bias") else nn.init.normal_(p, mean=0.0, std=std)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def new_caches(num_layers: int, capacity: int | None = None) -> list[KVCache]:
    """One empty :class:`KVCache` per layer (a decoder's ``past_key_values``).

    Example:
        >>> len(new_caches(3, capacity=16))
        3
    """
    return [KVCache(capacity=capacity) for _ in range(num_layers)]


def run_blocks(blocks: nn.ModuleList, x: Tensor, caches: list[KVCache] | None = None,
               output_hidden_states: bool = False, **kwargs) -> tuple[Tensor, tuple, tuple, tuple]:
    """Run a stack of blocks: ``(B, T, D) -> (B, T, D)``.

    ``kwargs`` go to every block (``key_mask``, ``causal``, ``memory``, ``return_weights``, ...);
    ``caches[i]`` is block i's self-attention cache.

    Returns:
        ``(hidden, inputs of each block (if output_hidden_states), self weights per layer,
        cross weights per layer)``; the weight tuples hold what the blocks returned (not None).
    """
    hidden, w_self, w_cross = [], [], []
    for i, block in enumerate(blocks):
        if output_hidden_states:
            hidden.append(x)
        x, ws, wc = block(x, cache=None if caches is None else caches[i], **kwargs)
        if ws is not None:
            w_self.append(ws)
        if wc is not None:
            w_cross.append(wc)
    return x, tuple(hidden), tuple(w_self), tuple(w_cross)
