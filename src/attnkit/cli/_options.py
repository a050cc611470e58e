"""Options shared by the ``attnkit`` commands, declared once (``Annotated`` types for typer).

A command writes ``steps: Steps = 2000`` instead of a ``typer.Option`` call; the flag name and its help
live here, so every command spells and documents them the same way. Options whose help differs per
command (``--data``, model sizes) keep the flag of ``OPTION_TABLE`` and say what they mean there.

``OPTION_TABLE`` is the one vocabulary of the command line (the README prints it and
``tests/cli/test_options.py`` checks every command against it); an old spelling is an unknown option
(typer says so in one line). Boolean options are plain flags (``flag``).
"""

from __future__ import annotations

import math
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

# -- bounds of every numeric option ------------------------------------------------------------------------
_WIDTH, _LENGTH, _VOCAB, _COUNT = 1 << 16, 1 << 17, 1 << 20, 10**9
#: ``flag -> (low, high, low_is_open)`` for every numeric option of every command: checked when the command
#: line is parsed (exit 2, one line, before any data is read or memory asked for) and shown in --help.
#: The upper bounds are the model-size limits of ``attnkit.models._checks.SIZE_LIMITS`` (widths 65536, lengths
#: 131072, vocabularies 1048576), 10**9 for counts of steps and examples (more than any run finishes), and
#: natural ones for probabilities and seeds. A command checks finer rules (--d-model a multiple of --heads).
OPTION_BOUNDS: dict[str, tuple[float, float, bool]] = {
    **dict.fromkeys(("--d-model", "--embed-dim", "--attention-dim", "--ff-dim", "--head-dim"), (1, _WIDTH, False)),
    **dict.fromkeys(("--heads", "--layers", "--decoder-layers"), (1, 1024, False)),
    "--vocab-size": (1, _VOCAB, False),
    **dict.fromkeys(("--max-len", "--test-max-len", "--window", "--kernel-size", "--bucket-width"), (1, _LENGTH, False)),
    "--min-len": (0, _LENGTH, False),
    "--block-size": (2, _LENGTH, False),
    "--minilm-max-len": (8, 512, False),  # MiniLM's position table
    "--max-new-tokens": (1, _LENGTH, False),
    "--image-size": (32, 4096, False),  # the captioner's S x S input; SIZE_LIMITS["image_size"]
    "--feature-stride": (1, 64, False),
    "--beam": (1, 256, False),
    "--top-k": (0, _VOCAB, False),
    "--batch-size": (1, _WIDTH, False),
    "--bucket-size": (1, _COUNT, False),
    **dict.fromkeys(("--steps", "--eval-every", "--patience"), (1, _COUNT, False)),
    **dict.fromkeys(("--warmup", "--train-size", "--valid-size", "--test-size", "--size"), (0, _COUNT, False)),
    "--min-frequency": (1, _COUNT, False),
    "--threads": (0, 1024, False),
    "--seed": (0, 2**32 - 1, False),  # numpy's seed range
    "--lr": (0.0, 10.0, True),
    "--time-budget": (0.0, 10.0**7, True),  # seconds (about 4 months)
    "--minilm-epochs": (0.0, 1000.0, True),
    "--temperature": (0.0, 100.0, True),
    "--top-p": (0.0, 1.0, True),
    "--mlm-probability": (0.0, 1.0, True),
    **dict.fromkeys(("--dropout", "--attention-dropout", "--label-smoothing", "--valid-fraction"), (0.0, 1.0, False)),
    "--penalty": (0.0, 10.0**6, False),
    "--local-window": (1, _LENGTH, False),
    **dict.fromkeys(("--texts", "--classifier-steps"), (1, _COUNT, False)),
    "--permutations": (1, 100_000, False),
    "--batch": (1, _WIDTH, False),
    **dict.fromkeys(("--max-length", "--length"), (1, _LENGTH, False)),  # attnkit lesson: narrower checks there
    "--memory-max": (0, _LENGTH, False),
    "--dim": (1, _WIDTH, False),
    "--step": (1, _LENGTH, False),  # attnkit lesson steps: the output step drawn
    "--head": (1, 1024, False),  # attnkit lesson qkv: narrower check there (MiniLM's 12)
    "--pairs": (1, _LENGTH, False),
    "--symbols": (2, _VOCAB, False),
    "--epochs": (1, 10_000, False),  # attnkit experiment classifier
    "--words": (1, _LENGTH, False),
    "--jaccard": (0.0, 1.0, True),
    "--folds": (2, _COUNT, False),  # attnkit experiment captioner: at most its object pairs, checked there
    "--scenes-per-pair": (1, _COUNT, False),
}


def check_bounds(flag: str, value: object) -> object:
    """``value`` of the numeric option ``flag`` if within :data:`OPTION_BOUNDS`, else ``InputError`` (exit 2).

    ``None`` (an option left to its default) passes; a float must be finite.

    Example:
        >>> check_bounds("--steps", 10)
        10
        >>> check_bounds("--steps", 0)
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --steps must be >= 1. Received: 0
        >>> check_bounds("--lr", float("inf"))
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --lr must be a finite number > 0. Received: inf
    """
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    low, high, low_open = OPTION_BOUNDS[flag]
    wants_float = isinstance(value, float) or isinstance(low, float)
    if wants_float and not (math.isfinite(value) and (value > low if low_open else value >= low)):
        raise InputError(f"{flag} must be a finite number {'>' if low_open else '>='} {_number(low)}. Received: {value}")
    if value < low:
        raise InputError(f"{flag} must be >= {low}. Received: {value}")
    if value > high:
        why = "" if wants_float else " (attnkit's limit)"
        raise InputError(f"{flag} must be <= {_number(high)}{why}. Received: {value}")
    return value


def bounds_help(flag: str) -> str:
    """The bounds of ``flag`` as --help shows them.

    Example:
        >>> bounds_help("--steps"), bounds_help("--dropout"), bounds_help("--lr")
        ('[1<=x<=1000000000]', '[0<=x<=1]', '[0<x<=10]')
    """
    low, high, low_open = OPTION_BOUNDS[flag]
    return f"[{_number(low)}{'<' if low_open else '<='}x<={_number(high)}]"


def _number(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def bound_options(command: Any) -> Any:
    """Attach :func:`check_bounds` to every option of ``command`` (a click command tree, as typer builds it)
    named in :data:`OPTION_BOUNDS`, and append its bounds to its --help; returns ``command``.

    One mechanism for every command: a command declares ``--steps`` as usual and gets its bounds here.
    """
    for sub in (getattr(command, "commands", None) or {}).values():
        bound_options(sub)
    for param in getattr(command, "params", ()):
        flag = next((o for o in getattr(param, "opts", ()) if o in OPTION_BOUNDS), None)
        if flag is None:
            continue
        previous = param.callback

        def checked(ctx: Any, prm: Any, value: Any, _flag: str = flag, _previous: Any = previous) -> Any:
            value = _previous(ctx, prm, value) if _previous is not None else value
            return check_bounds(_flag, value)

        param.callback = checked
        param.help = f"{param.help or ''} {bounds_help(flag)}".strip()
    return command
