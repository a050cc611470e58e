"""Silent traps of ``MultiHeadAttention``, one table each.

1. An ``attention_mask`` of rank 2 whose first axis has the batch size ``B > 1`` reads as a ``(B, Tk)``
   padding mask and is refused with the spelling to use (``value_mask=pad``); other shapes keep their
   meaning (the same rule as ``attention(mask=)``: :func:`attnkit.functional.masks.misaligned_batch_mask`).
2. A ``value_mask``/``key_mask`` that leaves a batch row with no key warns, once per call site of the
   user's code, naming torch's ``key_padding_mask`` and the fix ``~key_padding_mask`` (on ``Attention`` and
   ``AdditiveAttention`` too).

Sizes: B=4, Tq=5 (or 4 where B == Tq is the point), Tk=7, E=8, H=2, Dk=3.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from attnkit.layers import AdditiveAttention, Attention, MultiHeadAttention, SelfAttention
from attnkit.models import AttentionClassifier, ClassifierConfig

B, TK, E = 4, 7, 8


def _layer() -> MultiHeadAttention:
    torch.manual_seed(0)
    return MultiHeadAttention(2, 3, query_dim=E).eval()


def _inputs(tq: int, b: int = B):
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, tq, E, generator=g), torch.randn(b, TK, E, generator=g)


def _pad(b: int = B) -> torch.Tensor:
    lengths = torch.tensor([7, 3, 5, 2][:b])
    return torch.arange(TK)[None, :] < lengths[:, None]  # (B, Tk), True = real token


# (case, B, Tq, attention_mask shape (None: a (B, Tk) padding mask), refused?)
MASK_CASES = [
    ("padding-mask-B-equals-Tq", B, B, None, True),
    ("padding-mask-B-differs-from-Tq", B, 5, None, True),
    ("pair-mask-shared-by-a-batch-of-another-size", B, 5, (5, TK), False),
    ("pair-mask-with-its-batch-axis", B, B, (1, B, TK), False),
    ("keras-pair-mask", B, 5, (B, 5, TK), False),
    ("per-head-pair-mask", B, 5, (B, 2, 5, TK), False),
    ("batch-of-one-padding-mask", 1, 5, None, False),
]


@pytest.mark.parametrize(("case", "b", "tq", "shape", "refused"), MASK_CASES, ids=[c[0] for c in MASK_CASES])
def test_an_attention_mask_that_reads_as_padding_is_refused(case, b, tq, shape, refused):
    layer = _layer()
    x, ctx = _inputs(tq, b)
    mask = _pad(b) if shape is None else torch.rand(*shape, generator=torch.Generator().manual_seed(2)) > 0.3
    if refused:
        with pytest.raises(ValueError, match=r"reads as a \(B, Tk\) padding mask: pass it as value_mask=pad"):
            layer(x, ctx, attention_mask=mask)
        # the spelling it gives means what was wanted: padding, the same for every query
        want = layer(x, ctx, attention_mask=mask[:, None, :].expand(b, tq, TK))
        torch.testing.assert_close(layer(x, ctx, value_mask=mask), want)
        return
    full = mask.expand(b, *mask.shape[-3:]) if mask.dim() == 4 else mask.expand(b, tq, TK)[:, None]
    torch.testing.assert_close(layer(x, ctx, attention_mask=mask), layer(x, ctx, attention_mask=full))


def _torch_key_padding_mask() -> torch.Tensor:
    return ~_pad()  # True = padding, torch's convention; row 0 has none, so inverted it has no key


# (case, call arguments, the warning's argument name or None = no warning)
WARN_CASES = [
    ("torch-key-padding-mask-as-value-mask", lambda: dict(value_mask=_torch_key_padding_mask()), "value_mask"),
    ("torch-key-padding-mask-as-key-mask", lambda: dict(key_mask=_torch_key_padding_mask()), "key_mask"),
    ("a-row-of-padding-only", lambda: dict(value_mask=_pad() & (torch.arange(B) != 2)[:, None]), "value_mask"),
    ("inverted-as-told", lambda: dict(value_mask=~_torch_key_padding_mask()), None),
    ("attnkit-padding-mask", lambda: dict(value_mask=_pad()), None),
    ("no-mask", lambda: dict(), None),
]


@pytest.mark.parametrize(("case", "kwargs", "name"), WARN_CASES, ids=[c[0] for c in WARN_CASES])
def test_a_key_mask_with_a_row_of_no_key_warns_at_the_callers_line(case, kwargs, name):
    layer = _layer()
    x, ctx = _inputs(5)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = layer(x, ctx, **kwargs())
    mine = [w for w in seen if "no key to attend" in str(w.message)]
    assert torch.isfinite(out).all()
    if name is None:
        assert mine == []
        return
    assert len(mine) == 1 and mine[0].filename == __file__  # the user's line, not attnkit's or torch's
    assert f"{name}=~key_padding_mask" in str(mine[0].message)


def test_the_warning_is_shown_once_per_call_site():
    layer, kpm = _layer(), _torch_key_padding_mask()
    x, ctx = _inputs(5)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")  # Python's default: once per line of the user's code
        for _ in range(3):
            layer(x, ctx, value_mask=kpm)  # one line, three calls: one warning
        layer(x, ctx, value_mask=kpm)  # another line: another warning
    lines = [w.lineno for w in seen if "no key to attend" in str(w.message)]
    assert len(lines) == 2 and lines[0] != lines[1]


def test_the_warning_reaches_the_user_through_a_module_that_wraps_the_layer():
    block = SelfAttention(E, num_heads=2)
    x, _ = _inputs(TK)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        block(x, key_mask=_torch_key_padding_mask())
    mine = [w for w in seen if "no key to attend" in str(w.message)]
    assert len(mine) == 1 and mine[0].filename == __file__


def test_the_attention_layers_own_causal_mask_is_not_taken_for_padding():
    """``Attention(use_causal_mask=True)`` with ``Tq != Tv`` builds a ``(Tq, Tv)`` mask itself; with ``B == Tq``
    it must still pass the rule (it is written ``(1, Tq, Tv)``) and equal the float64 definition."""
    q, v = torch.randn(3, 3, 4, dtype=torch.float64), torch.randn(3, 5, 4, dtype=torch.float64)  # B = Tq = 3
    out = Attention()(q, v, use_causal_mask=True)
    s = (q @ v.transpose(1, 2)).masked_fill(~torch.ones(3, 5, dtype=torch.bool).tril(), float("-inf"))
    torch.testing.assert_close(out, torch.softmax(s, -1) @ v)


@pytest.mark.parametrize("layer", [Attention(), AdditiveAttention()], ids=["Attention", "AdditiveAttention"])
def test_the_keras_attention_layers_warn_the_same_way(layer):
    q, v = torch.randn(B, 5, E), torch.randn(B, TK, E)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        layer(q, v, value_mask=_torch_key_padding_mask())
        layer(q, v, value_mask=_pad())
    mine = [w for w in seen if "value_mask=~key_padding_mask" in str(w.message)]
    assert len(mine) == 1 and mine[0].filename == __file__


def test_no_warning_for_a_mask_a_model_built_itself():
    """An empty text is padding only: the model's own mask has a row with no key, which is not the user's
    mistake (the classifier calls the layers with the mask it built from the ids)."""
    ids = torch.tensor([[5, 6, 7], [0, 0, 0]])  # the second text is empty: pad only
    for self_attention in ("multi_head", "dot"):
        config = ClassifierConfig(vocab_size=20, embed_dim=8, d_model=8, num_heads=2, head_dim=4, ff_dim=8,
                                  self_attention=self_attention)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            AttentionClassifier(config).eval()(ids)
        assert not [w for w in seen if "no key to attend" in str(w.message)], self_attention
