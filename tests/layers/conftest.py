"""Fixtures of the layer tests: ``keras`` skips only the tests that take it when Keras is missing."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def keras():
    """The ``keras`` module (torch backend); the requesting test is skipped when Keras is not installed."""
    os.environ["KERAS_BACKEND"] = "torch"
    return pytest.importorskip("keras")
