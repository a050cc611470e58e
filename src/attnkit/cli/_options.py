"""Options shared by the ``attnkit`` commands, declared once (``Annotated`` types for typer).

A command writes ``steps: Steps = 2000`` instead of a ``typer.Option`` call; the flag name and its help
live here, so every command spells and documents them the same way. Options whose help differs per
command (``--data``, model sizes) stay in the command's module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attnkit.training.schedules import SCHEDULES

# -- the run directory and its life ------------------------------------------------------------------------
Out = Annotated[Path, typer.Option("--out", help="Run directory: model/, checkpoint/, run.json, train_log.jsonl.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint (same data; "
                                      "model, tokenizers and data settings come from the run).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of data splits and order, sampling and initialisation.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]
Threads = Annotated[int | None, typer.Option("--threads", help="CPU threads for torch (default: torch's choice; 1 "
                                             "is often fastest for small models on a busy machine).")]
TimeBudget = Annotated[float | None, typer.Option("--time-budget", help="Stop training after this many seconds.")]

# -- the optimiser and its schedule ------------------------------------------------------------------------
Steps = Annotated[int, typer.Option("--steps", help="Optimiser steps in total (counting resumed ones).")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Examples (pairs, blocks) per batch.")]
Lr = Annotated[float, typer.Option("--lr", help="Peak learning rate of AdamW (noam: the paper's multiplier).")]
Schedule = Annotated[str, typer.Option("--schedule", help=f"Learning-rate schedule: {', '.join(SCHEDULES)}.")]
Warmup = Annotated[int, typer.Option("--warmup", help="Linear warmup steps.")]
EvalEvery = Annotated[int, typer.Option("--eval-every", help="Evaluate on held-out data and checkpoint every N steps.")]
Patience = Annotated[int | None, typer.Option("--patience", help="Stop after N evaluations without improvement.")]

# -- sequence-to-sequence data -----------------------------------------------------------------------------
Data = Annotated[str, typer.Option("--data", help="Built-in task (dates, numbers, copy, reverse, sort) or a "
                                   "source<TAB>target file (Tatoeba/Anki layout; extra columns ignored).")]
TokenizerKind = Annotated[str | None, typer.Option("--tokenizer", help="char, word or bpe (default: char for "
                                                   "built-in tasks, word for files). Built-in targets stay "
                                                   "char-level.")]
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
