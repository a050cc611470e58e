"""Experiments on the application floor, each a small function of one seed run by the one harness.

- :mod:`attnkit.experiments.harness`: seeds (``--seeds 0,1,2``), every figure as mean ± sd over them, one
  JSON + Markdown + PNG report per run with the command line and the machine.
- ``length`` (``attnkit experiment length``): exact match against source length, with and without attention.
- ``efficiency`` (``attnkit experiment efficiency``): the attention kinds' cost and quality against length.
- ``faithfulness`` (``attnkit experiment faithfulness``): attention, rollout, gradients and leave-one-out as
  explanations of two BBC News classifiers, measured by AOPC, tau against leave-one-out and permutations
  (the measures: :mod:`attnkit.experiments.faithfulness_measures`).
- ``alignment`` (``attnkit experiment alignment``): every translator's attention scored against gold alignments
  (AER per link rule, the Transformer's best head chosen on validation), against diagonal and uniform baselines.
- ``demo`` (``attnkit experiment demo``): ``attnkit demo``'s table (Bahdanau, no attention, diagonal and uniform
  references) as mean ± sd over seeds, each seed the demo's own recipe (:mod:`attnkit.experiments.demo`).
- ``classifier`` (``attnkit experiment classifier``): the attention classifier, TF-IDF + logistic regression and
  fine-tuned MiniLM on BBC News splits without near duplicates across them, with one stated budget.
"""

from attnkit.experiments.alignment import AlignmentSettings, alignment_experiment, alignment_seed
from attnkit.experiments.classifier import ClassifierSettings, classifier_experiment, classifier_seed
from attnkit.experiments.efficiency import EfficiencySettings, efficiency_experiment, efficiency_seed
from attnkit.experiments.faithfulness import FaithfulnessSettings, faithfulness_experiment, faithfulness_seed
from attnkit.experiments.harness import Experiment, Panel, Table, aggregate, parse_seeds, run_experiment
from attnkit.experiments.length import LengthSettings, length_experiment, length_seed

__all__ = [
    "AlignmentSettings", "ClassifierSettings", "EfficiencySettings", "Experiment", "FaithfulnessSettings", "LengthSettings", "Panel", "Table",
    "aggregate", "alignment_experiment", "alignment_seed", "classifier_experiment", "classifier_seed",
    "efficiency_experiment", "efficiency_seed",
    "faithfulness_experiment", "faithfulness_seed", "length_experiment", "length_seed", "parse_seeds",
    "run_experiment",
]
