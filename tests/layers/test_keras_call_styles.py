"""Keras habits on attnkit's Keras-compatible layers: the list call ``layer([q, v(, k)], mask=[qm, vm])`` and
integer / float 0/1 masks, both checked against Keras 3 (torch backend) given the same call, and mask-shape
messages that name the axes.

Sizes are pairwise different: B=2, Tq=3, Tv=5, D=4, Dv=6; MultiHeadAttention H=7 heads of width 8.
"""

from __future__ import annotations

import pytest
import torch

from attnkit.layers import AdditiveAttention, Attention, MultiHeadAttention

B, TQ, TV, D, DV = 2, 3, 5, 4, 6
H, DK = 7, 8


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(B, TQ, D, generator=g), torch.randn(B, TV, D, generator=g)
    v = torch.randn(B, TV, DV, generator=g)
    qm = torch.tensor([[1, 1, 1], [1, 1, 0]])  # int64 0/1, as Keras users build them
    vm = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    return q, v, k, qm, vm


def _np(keras, x):
    return torch.as_tensor(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize("cls", ["Attention", "AdditiveAttention"])
@pytest.mark.parametrize("mask_dtype", [torch.int64, torch.float32, torch.bool])
def test_list_call_with_01_masks_matches_keras(keras, cls, mask_dtype):
    q, v, k, qm, vm = _inputs()
    qm, vm = qm.to(mask_dtype), vm.to(mask_dtype)
    ref_layer = getattr(keras.layers, cls)()
    want_out, want_w = (_np(keras, t) for t in ref_layer([q, v, k], mask=[qm, vm], return_attention_scores=True))
    ours = Attention() if cls == "Attention" else AdditiveAttention.from_keras(ref_layer)
    out, w = ours([q, v, k], mask=[qm, vm], return_attention_scores=True)  # the Keras call, unchanged
    torch.testing.assert_close(out, want_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, want_w, atol=1e-5, rtol=1e-5)
    # the same numbers from attnkit's keyword style, with bool masks
    out2 = ours(q, v, k, query_mask=qm.bool(), value_mask=vm.bool())
    torch.testing.assert_close(out2, out)


def test_two_input_list_uses_value_as_key_and_accepts_a_partial_mask(keras):
    q, _, k, _, vm = _inputs()  # value = key (B, Tv, D)
    ref = keras.layers.Attention(use_scale=True)
    want = _np(keras, ref([q, k], mask=[None, vm]))
    ours = Attention.from_keras(ref)
    torch.testing.assert_close(ours([q, k], mask=[None, vm]), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours(q, k, value_mask=vm), want, atol=1e-5, rtol=1e-5)


def test_multi_head_attention_accepts_01_masks_like_keras(keras):
    q, v, _, qm, vm = _inputs()
    ref = keras.layers.MultiHeadAttention(num_heads=H, key_dim=DK)
    ref(q, v)
    ours = MultiHeadAttention.from_keras(ref)
    am = torch.tril(torch.ones(TQ, TV, dtype=torch.int32)).expand(B, TQ, TV)  # (B, Tq, Tk) 0/1
    want = _np(keras, ref(q, v, value_mask=vm, attention_mask=am))
    torch.testing.assert_close(ours(q, v, value_mask=vm, attention_mask=am), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours(q, v, value_mask=vm.float(), attention_mask=am.bool()), want, atol=1e-5, rtol=1e-5)


def test_bad_keras_calls_and_masks_have_clear_messages():
    q, v, k, qm, vm = _inputs()
    layer = Attention()
    with pytest.raises(ValueError, match=r"Expected inputs \[query, value\] or \[query, value, key\].*Received: a list of 4"):
        layer([q, v, k, k])
    with pytest.raises(ValueError, match=r"no separate value/key. Received: a list of 2 and value="):
        layer([q, v], v)
    with pytest.raises(ValueError, match=r"Expected mask=\[query_mask, value_mask\].*Received: a list of 3"):
        layer([q, v], mask=[qm, vm, vm])
    with pytest.raises(ValueError, match=r"Expected either mask=\[query_mask, value_mask\] or query_mask=/value_mask=. Received: both"):
        layer([q, v], mask=[qm, None], value_mask=vm)
    with pytest.raises(TypeError, match=r"Expected `value` .*Received: value=None"):
        layer(q)
    # shapes print as plain tuples, with the axis letters after them
    with pytest.raises(ValueError, match=r"Expected `value_mask` of shape \(2, 5\). Received: value_mask.shape=\(2, 4\) \(`value_mask` is \(B, Tv\)"):
        layer([q, k], mask=[None, vm[:, :4]])
    with pytest.raises(ValueError, match=r"Expected `query_mask` of shape \(2, 3\). Received: query_mask.shape=\(3, 2\) \(`query_mask` is \(B, Tq\)"):
        layer(q, v, k, query_mask=qm.T)
    # torch's additive float masks (0 = keep, -inf = drop) mean the opposite: refused, not cast
    with pytest.raises(ValueError, match=r"Expected `value_mask` of dtype torch.bool or of 0/1 values .*additive 0/-inf"):
        layer(q, v, k, value_mask=torch.zeros(B, TV).masked_fill(vm == 0, float("-inf")))
    with pytest.raises(ValueError, match=r"Expected `value_mask` of dtype torch.bool or of 0/1 values"):
        MultiHeadAttention(H, DK, query_dim=D, value_dim_in=DV)(q, v, value_mask=vm * 2)
    with pytest.raises(ValueError, match=r"of shape \(Tq, Tk\) = \(3, 5\), \(B, Tq, Tk\) = \(2, 3, 5\) or "
                                         r"\(B, H, Tq, Tk\) = \(2, 7, 3, 5\). Received: attention_mask.shape=\(5,\)"):
        MultiHeadAttention(H, DK, query_dim=D, value_dim_in=DV)(q, v, attention_mask=torch.ones(TV))
