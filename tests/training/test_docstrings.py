"""Docstring examples of modules outside attnkit.training that this list used to cover.

attnkit.training's own examples run with ``pytest --doctest-modules src/attnkit/training``; this list goes
away once the whole suite runs ``--doctest-modules`` over ``src/``.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["attnkit.models.base", "attnkit.io", "attnkit.viz.terminal", "attnkit.viz.plots"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
