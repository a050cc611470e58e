"""Bad input to attention(): each error names the argument and what it got."""

import pytest
import torch

from attnkit.functional import attention, hard_attention


def qkv(tq=3, tk=5, dk=4, dv=2):
    return torch.randn(2, tq, dk), torch.randn(2, tk, dk), torch.randn(2, tk, dv)


def test_query_key_width_mismatch():
    q, _, v = qkv()
    with pytest.raises(ValueError, match=r"score 'scaled_dot' needs query and key of the same last dim.*query \(\.\.\., 3, 4\) vs key \(\.\.\., 5, 6\)"):
        attention(q, torch.randn(2, 5, 6), v)


def test_key_value_length_mismatch():
    q, k, _ = qkv()
    with pytest.raises(ValueError, match=r"key and value lengths differ: key \(\.\.\., 5, 4\) vs value \(\.\.\., 6, 2\)"):
        attention(q, k, torch.randn(2, 6, 2))


def test_mask_that_does_not_broadcast():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3, 4\) does not broadcast to \(\.\.\., Tq, Tk\) = \(2, 3, 5\)"):
        attention(q, k, v, mask=torch.ones(2, 3, 4, dtype=torch.bool))


def test_non_boolean_mask():
    q, k, v = qkv()
    with pytest.raises(TypeError, match=r"mask must be boolean \(True = may attend\). Received: dtype torch.float32"):
        attention(q, k, v, mask=torch.ones(2, 3, 5))


def test_unknown_score_lists_valid_names():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"unknown score 'softdot'. Valid names: dot, scaled_dot, cosine"):
        attention(q, k, v, score="softdot")
    with pytest.raises(ValueError, match=r"score 'additive' needs weights"):
        attention(q, k, v, score="additive")


def test_other_bad_arguments():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        attention(q, k, v, chunk_size=0)
    with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\)"):
        attention(q, k, v, dropout_p=1.5)
    with pytest.raises(ValueError, match=r"query must have shape \(\.\.\., T, D\). Received: shape \(4,\)"):
        attention(torch.randn(4), k, v)
    with pytest.raises(TypeError, match="key must be a floating-point tensor"):
        attention(q, k.long(), v)
    with pytest.raises(ValueError, match=r"score callable must return \(\.\.\., Tq, Tk\) = \(\.\.\., 3, 5\)"):
        attention(q, k, v, score=lambda a, b: a @ a.transpose(-2, -1))
    with pytest.raises(ValueError, match="key and value lengths differ"):
        hard_attention(q, k, torch.randn(2, 4, 2))


def test_nan_in_an_allowed_key_propagates_but_not_from_masked_scores():
    q, k, v = qkv()
    k[0, 1] = float("nan")
    mask = torch.ones(5, dtype=torch.bool)
    mask[1] = False
    # documented: masked scores are replaced before the softmax, so a NaN key that is masked is harmless
    assert torch.isfinite(attention(q, k, v, mask=mask, return_weights=True)[0]).all()
    assert torch.isnan(attention(q, k, v)[0]).all()
