"""The application floor's training recipes: plain functions that turn typed settings into a trained model, no CLI involved.

Each ``attnkit`` training command is a thin adapter over one of these:

- ``prepare_seq2seq`` / ``prepare_transformer`` (``attnkit train seq2seq|transformer``), with the data
  helpers ``RunSpec``, ``load_split``, ``build_tokenizers``, ``build_model``, ``build_transformer``,
  ``train_model``, ``predict``, ``score``, ``translate_detailed``;
- ``prepare_gpt`` / ``prepare_bert`` with ``TextRunSpec`` and ``LMOptions`` (``attnkit train gpt|bert``), and
  ``continue_text`` (``attnkit generate``);
- ``run_demo`` (``attnkit demo``).

The experiments built on these recipes live in :mod:`attnkit.experiments`.

A ``prepare_*`` recipe checks every input, reads the data and builds (or resumes) the model without
writing anything, and returns a ``PreparedRun`` whose ``fit()`` trains.
"""

from attnkit.recipes.captioner import CaptionRunSpec, prepare_captioner  # noqa: F401
from attnkit.recipes.classifier import ClassifierRunSpec, prepare_classifier
from attnkit.recipes.common import Log, PreparedRun, no_log
from attnkit.recipes.demo import QUICK, DemoResult, DemoSettings, demo_markdown, run_demo
from attnkit.recipes.lm import (
    LMOptions,
    Sampling,
    TextRunSpec,
    continue_text,
    evaluate_lm,
    prepare_bert,
    prepare_gpt,
)
from attnkit.recipes.seq2seq import (
    RunSpec,
    build_model,
    build_tokenizers,
    build_transformer,
    length_limits,
    load_split,
    predict,
    prepare_seq2seq,
    prepare_transformer,
    score,
    train_model,
    translate_detailed,
)

__all__ = [
    "ClassifierRunSpec", "prepare_classifier",
    "QUICK", "DemoResult", "DemoSettings", "LMOptions", "Log", "PreparedRun",
    "RunSpec", "Sampling", "TextRunSpec", "build_model", "build_tokenizers", "build_transformer",
    "continue_text", "demo_markdown", "evaluate_lm", "length_limits", "load_split", "no_log", "predict",
    "prepare_bert", "prepare_gpt", "prepare_seq2seq", "prepare_transformer", "run_demo",
    "score", "train_model", "translate_detailed",
]
