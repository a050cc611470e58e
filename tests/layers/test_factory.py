"""build_attention / build_score / build_window: config names -> the same objects a user would build."""

from __future__ import annotations

import pytest
import torch

from attnkit.layers import (
    BahdanauAttention,
    ConcatScore,
    DotScore,
    GeneralScore,
    LuongAttention,
    MonotonicWindow,
    PredictiveWindow,
    build_attention,
)
from attnkit.layers.factory import ATTENTION_NAMES, build_score, build_window

DQ, DK, A, W = 6, 4, 5, 3  # pairwise different


@pytest.mark.parametrize(
    ("name", "score", "window"),
    [
        ("luong-general", GeneralScore, type(None)),
        ("luong-concat", ConcatScore, type(None)),
        ("luong-local-m", GeneralScore, MonotonicWindow),
        ("luong-local-p", GeneralScore, PredictiveWindow),
    ],
)
def test_luong_names_give_luong_attention_with_their_parts(name, score, window):
    attn = build_attention(name, DQ, DK, hidden_dim=A, half_width=W)
    assert isinstance(attn, LuongAttention)
    assert type(attn.score) is score and type(attn.window) is window
    assert (attn.query_size, attn.key_size) == (DQ, DK)
    if window is PredictiveWindow:
        assert attn.window.half_width == W and attn.window.query_size == DQ
    if window is MonotonicWindow:
        assert attn.window.half_width == W


def test_other_names():
    assert build_attention("none", DQ, DK) is None
    bahdanau = build_attention("bahdanau", DQ, DK, hidden_dim=A)
    assert isinstance(bahdanau, BahdanauAttention)
    assert (bahdanau.query_size, bahdanau.key_size, bahdanau.hidden_dim) == (DQ, DK, A)
    dot = build_attention("luong-dot", DQ)
    assert type(dot.score) is DotScore and dot.window is None and dot.key_size == DQ
    assert set(ATTENTION_NAMES) == {"none", "bahdanau", "luong-dot", "luong-general", "luong-concat", "luong-local-m",
                                    "luong-local-p"}


def test_the_factory_builds_what_a_user_would_build_with_the_same_numbers():
    torch.manual_seed(3)
    made = build_attention("luong-local-p", DQ, DK, half_width=W)
    torch.manual_seed(3)
    by_hand = LuongAttention(score=GeneralScore(DQ, DK), window=PredictiveWindow(DQ, W))
    q, k = torch.randn(2, 7, DQ), torch.randn(2, 9, DK)
    for a, b in zip(made(q, k), by_hand(q, k), strict=True):
        assert torch.equal(a, b)


def test_score_and_window_names():
    assert type(build_score("dot", DQ)) is DotScore
    concat = build_score("concat", DQ, DK)
    assert type(concat) is ConcatScore and concat.w_a.shape == (DQ, DQ + DK)  # (A = Dq, Dq + Dk)
    assert build_window("global", DQ, W) is None
    assert type(build_window("local-m", DQ, W)) is MonotonicWindow


def test_bad_names_say_what_is_expected():
    with pytest.raises(ValueError, match=r"Expected attention to be one of .*Received: attention='luong'"):
        build_attention("luong", DQ, DK)
    with pytest.raises(ValueError, match=r"Expected `score` in .*Received: score='cosine'"):
        build_score("cosine", DQ, DK)
    with pytest.raises(ValueError, match=r"Expected `mode` in .*Received: mode='local'"):
        build_window("local", DQ, W)
    with pytest.raises(ValueError, match=r"Expected key_size == query_size for the dot score.*query_size=6, key_size=4"):
        build_attention("luong-dot", DQ, DK)
