"""The examples in the training modules' docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["attnkit.training.schedules", "attnkit.training.runtime", "attnkit.training.progress",
           "attnkit.training.checkpoint", "attnkit.training.trainer", "attnkit.models.base", "attnkit.io",
           "attnkit.viz.terminal", "attnkit.viz.plots"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
