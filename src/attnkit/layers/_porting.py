"""Copy weights from Keras 3 and ``torch.nn`` attention layers into attnkit layers.

Keras is not an attnkit dependency: these helpers read a Keras layer through its attributes
(variables expose ``.numpy()``) and never import keras.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn


def keras_array(variable: Any) -> torch.Tensor:
    """A Keras variable (any backend) as a float32 CPU tensor."""
    value = variable.numpy() if hasattr(variable, "numpy") else np.asarray(variable)
    return torch.as_tensor(np.array(value, dtype=np.float32))


def _require_built(layer: Any) -> None:
    if not getattr(layer, "built", False):
        raise ValueError(
            f"Expected a built Keras layer (call it once first). Received: an unbuilt {type(layer).__name__}"
        )


def keras_mha_to_attnkit(cls: type, layer: Any):
    """See ``MultiHeadAttention.from_keras``."""
    kind = type(layer).__name__
    if kind not in ("MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention"):
        raise TypeError(
            "Expected a keras.layers.MultiHeadAttention or GroupQueryAttention. "
            f"Received: {type(layer).__module__}.{kind}"
        )
    _require_built(layer)
    if getattr(layer, "_use_gate", False) or getattr(layer, "use_gate", False):
        raise ValueError("Expected a Keras layer with use_gate=False (gated attention is not supported). Received: use_gate=True")
    window = getattr(layer, "_sliding_window", getattr(layer, "sliding_window", None))
    if window is not None:
        raise ValueError(
            f"Expected a Keras layer with sliding_window=None (not supported). Received: sliding_window={window}"
        )
    q_kernel = keras_array(layer._query_dense.kernel)  # (E, H, Dk)
    k_kernel = keras_array(layer._key_dense.kernel)  # (Ek, Hkv, Dk)
    v_kernel = keras_array(layer._value_dense.kernel)  # (Ev, Hkv, Dv)
    o_kernel = keras_array(layer._output_dense.kernel)  # (H, Dv, *output_shape)
    heads, key_dim = q_kernel.shape[1], q_kernel.shape[2]
    kv_heads, value_dim = v_kernel.shape[1], v_kernel.shape[2]
    out_shape = tuple(o_kernel.shape[2:])
    use_bias = layer._query_dense.bias is not None
    if kind == "MultiHeadAttention":
        axes = layer._attention_axes
        output_shape = layer._output_shape
        dropout = layer._dropout
    else:
        axes, output_shape, dropout = None, None, layer.dropout
    if output_shape is None and out_shape != (q_kernel.shape[0],):
        output_shape = out_shape
    mha = cls(
        num_heads=heads, key_dim=key_dim, value_dim=value_dim, dropout=dropout, use_bias=use_bias,
        output_shape=output_shape, attention_axes=axes, num_key_value_heads=kv_heads,
        query_dim=q_kernel.shape[0], key_dim_in=k_kernel.shape[0], value_dim_in=v_kernel.shape[0],
    )  # fmt: skip
    with torch.no_grad():
        for lin, sub, kernel in (
            (mha.query_dense, layer._query_dense, q_kernel),
            (mha.key_dense, layer._key_dense, k_kernel),
            (mha.value_dense, layer._value_dense, v_kernel),
        ):
            lin.weight.copy_(kernel.reshape(kernel.shape[0], -1).T)  # (H*D, E)
            if use_bias:
                lin.bias.copy_(keras_array(sub.bias).reshape(-1))
        mha.output_dense.weight.copy_(o_kernel.reshape(heads * value_dim, -1).T)  # (prod(out), H*Dv)
        if use_bias:
            mha.output_dense.bias.copy_(keras_array(layer._output_dense.bias).reshape(-1))
    return mha


def torch_mha_to_attnkit(cls: type, module: nn.MultiheadAttention):
    """See ``MultiHeadAttention.from_torch``."""
    if not isinstance(module, nn.MultiheadAttention):
        raise TypeError(f"Expected a torch.nn.MultiheadAttention. Received: {type(module).__name__}")
    if module.bias_k is not None or module.bias_v is not None:
        raise ValueError("Expected a torch.nn.MultiheadAttention with add_bias_kv=False. Received: add_bias_kv=True")
    if module.add_zero_attn:
        raise ValueError("Expected a torch.nn.MultiheadAttention with add_zero_attn=False. Received: add_zero_attn=True")
    e, h = module.embed_dim, module.num_heads
    d = module.head_dim
    use_bias = module.in_proj_bias is not None
    ref = module.out_proj.weight
    mha = cls(
        num_heads=h, key_dim=d, value_dim=d, dropout=module.dropout, use_bias=use_bias,
        query_dim=e, key_dim_in=module.kdim, value_dim_in=module.vdim, device=ref.device, dtype=ref.dtype,
    )  # fmt: skip
    if module._qkv_same_embed_dim:
        wq, wk, wv = module.in_proj_weight.chunk(3)
    else:
        wq, wk, wv = module.q_proj_weight, module.k_proj_weight, module.v_proj_weight
    with torch.no_grad():
        mha.query_dense.weight.copy_(wq)
        mha.key_dense.weight.copy_(wk)
        mha.value_dense.weight.copy_(wv)
        mha.output_dense.weight.copy_(module.out_proj.weight)
        if use_bias:
            bq, bk, bv = module.in_proj_bias.chunk(3)
            mha.query_dense.bias.copy_(bq)
            mha.key_dense.bias.copy_(bk)
            mha.value_dense.bias.copy_(bv)
            mha.output_dense.bias.copy_(module.out_proj.bias)
    assert math.prod(mha._out_shape()) == e
    return mha
