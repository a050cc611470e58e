"""Experiments on the application floor: each trains and scores models through :mod:`attnkit.recipes`.

- ``run_length_experiment`` (``attnkit experiment length``): exact match against source length, with and
  without attention.
- ``run_efficiency`` (``attnkit experiment efficiency``): the attention kinds' cost and quality.
"""

from attnkit.experiments.efficiency import (
    EfficiencyResult,
    EfficiencySettings,
    efficiency_markdown,
    run_efficiency,
)
from attnkit.experiments.length import (
    LengthResult,
    LengthSettings,
    length_markdown,
    run_length_experiment,
)

__all__ = [
    "EfficiencyResult", "EfficiencySettings", "LengthResult", "LengthSettings", "efficiency_markdown",
    "length_markdown", "run_efficiency", "run_length_experiment",
]
