"""Options shared by the ``attnkit`` commands, declared once (``Annotated`` types for typer).

A command writes ``steps: Steps = 2000`` instead of a ``typer.Option`` call; the flag name and its help
live here, so every command spells and documents them the same way. Options whose help differs per
command (``--data``, model sizes) keep the flag of ``OPTION_TABLE`` and say what they mean there.

``OPTION_TABLE`` is the one vocabulary of the command line (the README prints it and
``tests/cli/test_options.py`` checks every command against it); an old spelling is an unknown option
(typer says so in one line). Boolean options are plain flags (``flag``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from attnkit.errors import InputError
from attnkit.training.schedules import SCHEDULES

# -- the one option vocabulary: (flag, parameter name, meaning) --------------------------------------------
OPTION_TABLE: tuple[tuple[str, str, str], ...] = (
    ("--data", "data", "input data: a built-in task name or a file"),
    ("--out", "out", "the run (or output) directory"),
    ("--d-model", "d_model", "model width D (embeddings and hidden states)"),
    ("--embed-dim", "embed_dim", "embedding width E, where it differs from D"),
    ("--heads", "heads", "attention heads H"),
    ("--layers", "layers", "layers (blocks) L"),
    ("--ff-dim", "ff_dim", "inner width of the feed-forward networks"),
    ("--dropout", "dropout", "dropout probability"),
    ("--steps", "steps", "optimiser steps"),
    ("--batch-size", "batch_size", "examples per batch"),
    ("--lr", "lr", "learning rate"),
    ("--seed", "seed", "random seed"),
    ("--device", "device", "auto, cpu, cuda, cuda:N or mps"),
    ("--threads", "threads", "CPU threads for torch"),
    ("--quiet", "quiet", "no progress output"),
    ("--time-budget", "time_budget", "seconds the whole run may take"),
    ("--resume", "resume", "continue the run in --out"),
    ("--overwrite", "overwrite", "replace what --out holds"),
)

DEFAULT_THREADS = 1
"""``--threads`` default: 1 (measured: the built-in models train 1.5-5x faster on a shared 2-core machine)."""


def flag(*names: str, help: str) -> Any:  # noqa: A002  (typer's own keyword)
    """A boolean option shown as a flag in --help (``--quick``, ``--heatmap/--no-heatmap``), no ``<bool>``.

    Example:
        >>> flag("--quick", help="A tiny run.").metavar
        ''
    """
    return typer.Option(*names, help=help, metavar="")


def apply_threads(threads: int) -> int:
    """``torch.set_num_threads`` for ``--threads`` (0: torch's own choice, all cores); returns the count used.

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> apply_threads(1)
        1
        >>> torch.set_num_threads(before)
    """
    if threads < 0:
        raise InputError(f"--threads must be >= 0 (0: torch's choice). Received: {threads}")
    if threads == 0:
        threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads

# -- the run directory and its life ------------------------------------------------------------------------
Out = Annotated[Path, typer.Option("--out", help="Run directory: model/, checkpoint/, run.json, train_log.jsonl.")]
Resume = Annotated[bool, flag("--resume", help="Continue the run in --out from its checkpoint (same data; "
                                      "model, tokenizers and data settings come from the run).")]
Overwrite = Annotated[bool, flag("--overwrite", help="Start afresh in an --out that is not empty: replace the run "
                                 "files there (model/, checkpoint/, run.json, train_log.jsonl); other files stay.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of data splits and order, sampling and initialisation.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
Quiet = Annotated[bool, flag("--quiet", help="No progress bar or progress records.")]
Threads = Annotated[int, typer.Option("--threads", help="CPU threads for torch (0: torch's choice, all cores). 1 "
                                      "is fastest for the small built-in models, more so on a busy machine.")]
TimeBudget = Annotated[float | None, typer.Option("--time-budget", help="Seconds the run may take in all (data, "
                                                  "evaluations and saving counted); training stops early "
                                                  "enough to finish within it.")]
Compile = Annotated[bool, flag("--compile", help="torch.compile the model (falls back with a warning where "
                                                 "compilation fails; the first steps are slower while it compiles).")]

# -- the optimiser and its schedule ------------------------------------------------------------------------
Steps = Annotated[int, typer.Option("--steps", help="Optimiser steps in total (counting resumed ones).")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Examples (pairs, blocks) per batch.")]
Lr = Annotated[float, typer.Option("--lr", help="Peak learning rate of AdamW (noam: the paper's multiplier).")]
Schedule = Annotated[str, typer.Option("--schedule", help=f"Learning-rate schedule: {', '.join(SCHEDULES)}.")]
Warmup = Annotated[int, typer.Option("--warmup", help="Linear warmup steps.")]
EvalEvery = Annotated[int, typer.Option("--eval-every", help="Evaluate on held-out data and checkpoint every N steps.")]
Patience = Annotated[int | None, typer.Option("--patience", help="Stop after N evaluations without improvement.")]

# -- sequence-to-sequence data -----------------------------------------------------------------------------
Data = Annotated[str, typer.Option("--data", help="Built-in task (dates, numbers, phrases, copy, reverse, sort) or a "
                                   "source<TAB>target file (Tatoeba/Anki layout; extra columns ignored).")]
TokenizerScheme = Annotated[str | None, typer.Option("--tokenizer", help="char, word or bpe (default: char for "
                                                   "built-in tasks, word for phrases and files). Built-in "
                                                   "targets keep the task's scheme.")]
VocabLimit = Annotated[int | None, typer.Option("--vocab-size", help="Vocabulary limit (BPE default 2000).")]
TrainSize = Annotated[int | None, typer.Option("--train-size", help="Training pairs (built-in default 20000; "
                                               "files: the whole train split).")]
ValidSize = Annotated[int, typer.Option("--valid-size", help="Validation pairs decoded at each evaluation.")]
MinLen = Annotated[int | None, typer.Option("--min-len", help="Shortest input (numbers: digits; toy tasks: "
                                            "characters).")]
MaxLen = Annotated[int | None, typer.Option("--max-len", help="Longest input of train/validation.")]
TestMaxLen = Annotated[int | None, typer.Option("--test-max-len", help="Longest input of the test split.")]
OnError = Annotated[str, typer.Option("--on-error", help="Malformed lines of a data file: 'raise' (stop, naming "
                                      "the line) or 'skip' (skip them, listing line numbers).")]

# -- model directories -------------------------------------------------------------------------------------
ModelDir = Annotated[Path, typer.Argument(help="A model directory (or a training run's directory).")]
Beam = Annotated[int, typer.Option("--beam", help="Beam size (1 = greedy).")]
