"""Experiments on the application floor, each a small function of one seed run by the one harness.

- :mod:`attnkit.experiments.harness`: seeds (``--seeds 0,1,2``), every figure as mean ± sd over them, one
  JSON + Markdown + PNG report per run with the command line and the machine.
- ``length`` (``attnkit experiment length``): exact match against source length, with and without attention.
- ``efficiency`` (``attnkit experiment efficiency``): the attention kinds' cost and quality against length.
- ``alignment`` (``attnkit experiment alignment``): every translator's attention scored against gold alignments
  (AER per link rule, the Transformer's best head chosen on validation), against diagonal and uniform baselines.
"""

from attnkit.experiments.alignment import AlignmentSettings, alignment_experiment, alignment_seed
from attnkit.experiments.efficiency import EfficiencySettings, efficiency_experiment, efficiency_seed
from attnkit.experiments.harness import Experiment, Panel, Table, aggregate, parse_seeds, run_experiment
from attnkit.experiments.length import LengthSettings, length_experiment, length_seed

__all__ = [
    "AlignmentSettings", "EfficiencySettings", "Experiment", "LengthSettings", "Panel", "Table", "aggregate",
    "alignment_experiment", "alignment_seed", "efficiency_experiment", "efficiency_seed", "length_experiment",
    "length_seed", "parse_seeds", "run_experiment",
]
