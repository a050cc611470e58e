import pytest
import torch

from attnkit.masks import causal_mask, local_window_mask, padding_mask


def test_padding_mask_by_hand():
    assert padding_mask(torch.tensor([2, 0, 3]), 4).tolist() == [
        [True, True, False, False],
        [False, False, False, False],
        [True, True, True, False],
    ]
    assert padding_mask([1, 2]).shape == (2, 2)


def test_causal_and_local_by_hand():
    assert causal_mask(2, 3).tolist() == [[True, False, False], [True, True, False]]
    assert local_window_mask(4, 4, 1).int().tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]]


def test_mask_errors():
    with pytest.raises(ValueError, match="max_len=2 is shorter than the longest length 3"):
        padding_mask(torch.tensor([3]), 2)
    with pytest.raises(TypeError, match="lengths must be integers"):
        padding_mask(torch.tensor([1.0]), 2)
    with pytest.raises(ValueError, match="window must be >= 0"):
        local_window_mask(2, 2, -1)
