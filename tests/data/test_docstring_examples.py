"""Every docstring example in attnkit.data and attnkit.training.metrics runs and gives what it shows."""

import doctest
import importlib

import pytest

MODULES = [
    "attnkit.data",
    "attnkit.data.splits",
    "attnkit.data.dates",
    "attnkit.data.numbers",
    "attnkit.data.toy",
    "attnkit.data.tsv",
    "attnkit.data.builtin",
    "attnkit.data.tokenize",
    "attnkit.data.batches",
    "attnkit.training.metrics",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), verbose=False)
    assert result.attempted > 0 and result.failed == 0
