"""Transformer building blocks shared by the models: multi-head self-attention with a fused
query/key/value projection and a key/value cache, the position-wise feed-forward network, and the
pre-LN (GPT-2) and post-LN (BERT, Vaswani et al. 2017) residual blocks.

Three fast paths live here, each equal (in distribution, for the random ones) to the plain computation
it replaces; tests check each against a float64 reference. :func:`linear` runs float32 CPU linear
layers (forward and backward) on oneDNN, which PyTorch ships, where torch's default BLAS can take a
slower code path (:data:`attnkit.functional.onednn.USE_ONEDNN` switches it off). :func:`dropout` draws its Bernoulli mask as
``U[0, 1) >= p`` (about twice as fast on CPU as ``bernoulli_``). :func:`causal_attention_dropout`
computes causal attention with dropout on the weights block by block, skipping the key blocks that the
causal mask hides (torch's fused CPU kernels take no dropout, and its plain path computes the hidden
half too).

Shape legend: B batch, T positions of this call, S key positions (cached + new), H heads,
D head size, E model width (E = H * D), F feed-forward width, L layers, N = B * H.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from attnkit.functional import attention
from attnkit.functional.onednn import linear  # noqa: F401  (re-exported: models use blocks.linear)


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


class Linear(nn.Linear):
    """``nn.Linear`` computed by :func:`linear` (oneDNN on float32 CPU); same parameters and names."""

    def forward(self, input: Tensor) -> Tensor:
        return linear(input, self.weight, self.bias)


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Inverted dropout: ``x * m / (1 - p)`` with ``m_i ~ Bernoulli(1 - p)`` independently, when
    ``training``; ``x`` itself otherwise. Same distribution as ``torch.nn.functional.dropout``; the
    mask is drawn as ``u >= p`` with ``u ~ U[0, 1)`` (``torch.rand``), which is about twice as fast on
    CPU as ``bernoulli_``. Shapes: any -> the same.

    Example:
        >>> y = dropout(torch.ones(1000), 0.25)
        >>> sorted(set(y.tolist()))  # dropped, or kept and scaled by 1 / (1 - p)
        [0.0, 1.3333333730697632]
    """
    if not training or p == 0.0:
        return x
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"Expected dropout probability p in [0, 1]. Received: {p!r}")
    if p == 1.0:
        return x * 0.0
    return x * _keep_mask(x, p)


def _keep_mask(like: Tensor, p: float) -> Tensor:
    """A mask shaped like ``like``: ``1 / (1 - p)`` with probability ``1 - p``, else 0."""
    return torch.rand_like(like).ge_(p).mul_(1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """``nn.Dropout`` computed by :func:`dropout` (same distribution, faster mask on CPU)."""

    def forward(self, input: Tensor) -> Tensor:
        return dropout(input, self.p, self.training)


def causal_attention_dropout(qkv: Tensor, n_head: int, dropout_p: float, block_size: int = 64) -> Tensor:
    """Causal multi-head self-attention with dropout on the weights, from packed projections.

    ``Q, K, V`` are the thirds of ``qkv`` split into ``n_head`` heads;
    ``out_h = dropout(softmax(Q_h K_h^T / sqrt(D) + causal)) V_h`` with position ``t`` attending
    ``0..t``, heads concatenated. Equals ``torch.nn.functional.scaled_dot_product_attention(q, k, v,
    is_causal=True, dropout_p=dropout_p)`` in distribution (the dropout masks are independent
    Bernoulli draws as in :func:`dropout`). Queries are processed ``block_size`` at a time, each block
    against keys ``0 .. end of block`` only, so the key blocks the causal mask hides are never computed
    (about 3/8 of the work at ``T = 4 * block_size``), and the masks are drawn for the visible part only.

    Args:
        qkv: ``(B, T, 3E)``, the concatenated query, key and value projections.
        n_head: H, with ``E % H == 0``.
        dropout_p: probability of zeroing each attention weight, in ``[0, 1)``.
        block_size: queries per block.

    Returns:
        ``(B, T, E)``, the heads concatenated (ready for the output projection).

    Example:
        >>> causal_attention_dropout(torch.randn(2, 5, 24), n_head=2, dropout_p=0.1).shape
        torch.Size([2, 5, 8])
    """
    if qkv.dim() != 3 or qkv.shape[-1] % (3 * n_head):
        raise ValueError(f"Expected qkv of shape (B, T, 3 * E) with E divisible by n_head={n_head}. "
                         f"Received: {tuple(qkv.shape)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"Expected dropout_p in [0, 1). Received: {dropout_p!r}")
    return _CausalAttentionDropout.apply(qkv, n_head, dropout_p, block_size)


class _CausalAttentionDropout(torch.autograd.Function):
    """Forward and backward of :func:`causal_attention_dropout`, block by block over the queries.

    Per query block ``[s, e)`` against keys ``[0, e)`` (the block's own keys masked causally):
    ``P = softmax(Q K^T / sqrt(D))``, ``A = P * M`` (``M`` the scaled keep mask), ``out = A V``.
    Backward: ``dV += A^T dout``; ``dA = dout V^T``; ``dS = P * (dA M - rowsum(dA M * P))``;
    ``dQ = dS K / sqrt(D)``; ``dK += dS^T Q / sqrt(D)``."""

    @staticmethod
    def forward(ctx, qkv: Tensor, n_head: int, dropout_p: float, block_size: int) -> Tensor:
        B, T, E3 = qkv.shape
        H, D = n_head, E3 // (3 * n_head)
        qkv_h = qkv.view(B, T, 3, H, D).permute(2, 0, 3, 1, 4).reshape(3, B * H, T, D)  # (3, N, T, D)
        q, k, v = qkv_h.unbind(0)  # 3 x (N, T, D)
        scale = D**-0.5
        out = qkv.new_empty(B, T, H, D)  # written per block through the (B, H, T, D) view below
        out_heads = out.permute(0, 2, 1, 3)  # (B, H, T, D)
        future = torch.ones(block_size, block_size, dtype=torch.bool, device=qkv.device).triu(1)  # (b, b)
        saved = []
        zero = qkv.new_zeros(())  # baddbmm's ignored input (beta=0)
        for s in range(0, T, block_size):
            e = min(s + block_size, T)
            scores = torch.baddbmm(zero, q[:, s:e], k[:, :e].transpose(1, 2), beta=0, alpha=scale)  # (N, b, e)
            scores[:, :, s:].masked_fill_(future[: e - s, : e - s], float("-inf"))
            probs = torch.softmax(scores, dim=-1)  # (N, b, e)
            keep = _keep_mask(probs, dropout_p)  # (N, b, e)
            dropped = probs * keep  # (N, b, e)
            y = torch.bmm(dropped, v[:, :e])  # (N, b, D)
            out_heads[:, :, s:e] = y.view(B, H, e - s, D)
            saved += [probs, keep, dropped]
        ctx.save_for_backward(qkv_h, *saved)
        ctx.block_size, ctx.scale = block_size, scale
        return out.view(B, T, H * D)  # (B, T, E)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        qkv_h, *saved = ctx.saved_tensors
        _, N, T, D = qkv_h.shape
        B, H = grad_out.shape[0], N // grad_out.shape[0]
        q, k, v = qkv_h.unbind(0)  # 3 x (N, T, D)
        d_out = grad_out.reshape(B, T, H, D).permute(0, 2, 1, 3).reshape(N, T, D)  # (N, T, D)
        grads = qkv_h.new_empty(3, N, T, D)
        dq, dk, dv = grads.unbind(0)  # 3 x (N, T, D)
        starts = list(range(0, T, ctx.block_size))
        zero = qkv_h.new_zeros(())  # baddbmm's ignored input (beta=0)
        # last block first: it reaches every key, so it initialises dk and dv whole; the earlier blocks'
        # products are added into the leading rows (into contiguous temporaries: torch's batched
        # products into a strided output fall back to one product per batch row)
        for i in reversed(range(len(starts))):
            s, e = starts[i], min(starts[i] + ctx.block_size, T)
            probs, keep, dropped = saved[3 * i : 3 * i + 3]  # (N, b, e) each
            last = e == T
            d_v = torch.bmm(dropped.transpose(1, 2), d_out[:, s:e], out=dv if last else None)  # (N, e, D)
            d_probs = torch.bmm(d_out[:, s:e], v[:, :e].transpose(1, 2)).mul_(keep)  # (N, b, e)
            d_scores = torch._softmax_backward_data(d_probs, probs, -1, probs.dtype)  # (N, b, e)
            dq[:, s:e] = torch.baddbmm(zero, d_scores, k[:, :e], beta=0, alpha=ctx.scale)  # (N, b, D)
            d_k = torch.baddbmm(zero, d_scores.transpose(1, 2), q[:, s:e], beta=0, alpha=ctx.scale,
                                out=dk if last else None)  # (N, e, D)
            if not last:
                dk[:, :e] += d_k
                dv[:, :e] += d_v
        d_qkv = grads.view(3, B, H, T, D).permute(1, 3, 0, 2, 4).reshape(B, T, 3 * H * D)  # (B, T, 3E)
        return d_qkv, None, None, None


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
        self.qkv = Linear(n_embd, 3 * n_embd)
        self.proj = Linear(n_embd, n_embd)
        self.resid_dropout = Dropout(resid_dropout)

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
        if (self.training and self.attn_dropout > 0 and causal and attn_mask is None and cache is None
                and not output_attentions and x.device.type == "cpu"):
            # CPU training with attention dropout: torch's fused kernels take no dropout there
            y = causal_attention_dropout(self.qkv(x), self.n_head, self.attn_dropout)  # (B, T, E)
            return self.resid_dropout(self.proj(y)), None
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
        self.fc_in = Linear(n_embd, n_inner)
        self.act = get_activation(activation)
        self.fc_out = Linear(n_inner, n_embd)
        self.dropout = Dropout(dropout)

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
