"""``attnkit lesson cost|positions``: one command and one picture for a lesson of the course.

    attnkit lesson cost --out cost           cost/cost.png, cost.json (under 2 minutes on 2 cores)
    attnkit lesson scores --out scores       scores/scores.png: every score function on the course's sentence (seconds)
    attnkit lesson positions --out pos       pos/positions.png (seconds); --model DIR for a trained
                                             model's learned positions
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from attnkit.cli._options import Threads, apply_threads
from attnkit.cli._run import OverwriteOut, check_out_dir, say, start_writing
from attnkit.cli.main import app
from attnkit.errors import InputError

console = Console()
lesson_app = typer.Typer(help="The course's lessons that are a measurement or a picture, one command each.",
                         no_args_is_help=True)
app.add_typer(lesson_app, name="lesson")

Out = Annotated[Path, typer.Option("--out", help="Directory for the picture (created; a non-empty one only with "
                                  "--overwrite, which replaces this lesson's files and nothing else).")]
COST_NAMES = ("cost.png", "cost.json")
POSITION_NAMES = ("positions.png",)
SCORE_NAMES = ("scores.png",)
COURSE_SENTENCE = "Ana va al cine a ver una nueva película"


@lesson_app.command("cost")
def cost(
    out: Out = Path("attnkit-lesson-cost"),
    max_length: Annotated[int, typer.Option("--max-length", help="The longest T (the course's 40 up to this, "
                                            "doubling from 64; 16 to 16384).")] = 16384,
    time_budget: Annotated[float, typer.Option("--time-budget", help="Seconds for the timing (1 to 600); lengths "
                                               "whose calls would not fit are not timed, and the picture says "
                                               "so.")] = 60.0,
    memory_max: Annotated[int, typer.Option("--memory-max", help="Measure the memory up to this T (0 to 4096; "
                                            "computed for every T).")] = 2048,
    threads: Threads = 1,
    overwrite: OverwriteOut = False,
) -> None:
    """The cost of attention against length: scores held in memory and time of one call, T = 40 ... 16k, T²."""
    from attnkit.recipes.lessons import LENGTHS, cost_note, cost_rows
    from attnkit.storage import write_json
    from attnkit.viz.lessons import cost_figure
    from attnkit.viz.plots import save_figure

    if not 16 <= max_length <= 16384:
        raise InputError(f"--max-length must be between 16 and 16384. Received: {max_length}")
    if not 1 <= time_budget <= 600:
        raise InputError(f"--time-budget must be between 1 and 600 seconds. Received: {time_budget}")
    if not 0 <= memory_max <= 4096:
        raise InputError(f"--memory-max must be between 0 and 4096. Received: {memory_max}")
    check_out_dir(out, COST_NAMES, overwrite)
    apply_threads(threads)
    rows = cost_rows([t for t in LENGTHS if t <= max_length], time_budget=time_budget, memory_max=memory_max,
                     log=lambda m: say(m, console))
    note = cost_note(rows)
    fig = cost_figure(rows, note=f"one head of width 64, float32, {threads} thread(s) (threads wait on each other on "
                      f"a busy machine: 1 keeps the times steady); {note}")
    start_writing(out, COST_NAMES, overwrite)
    write_json(out / "cost.json", {"rows": rows, "note": note})
    print(save_figure(fig, out / "cost.png"))
    print(out / "cost.json")


@lesson_app.command("positions")
def positions(
    out: Out = Path("attnkit-lesson-positions"),
    model_dir: Annotated[Path | None, typer.Option("--model", help="A model directory (attnkit or Hugging Face "
                                                   "BERT/GPT-2) whose learned positions to show (default: an "
                                                   "untrained embedding, and the picture says so).")] = None,
    length: Annotated[int, typer.Option("--length", help="Positions shown (2 to 1024).")] = 128,
    dim: Annotated[int, typer.Option("--dim", help="Width of the sinusoidal and RoPE encodings (even, 2 to "
                                     "1024).")] = 64,
    overwrite: OverwriteOut = False,
) -> None:
    """Positional encodings: sinusoidal, learned and RoPE as heatmaps and as similarity against distance."""
    from attnkit.recipes.lessons import learned_positions, position_encodings
    from attnkit.viz.lessons import positions_figure
    from attnkit.viz.plots import save_figure

    if not 2 <= length <= 1024:
        raise InputError(f"--length must be between 2 and 1024. Received: {length}")
    if not (2 <= dim <= 1024 and dim % 2 == 0):
        raise InputError(f"--dim must be even, between 2 and 1024. Received: {dim}")
    check_out_dir(out, POSITION_NAMES, overwrite)
    learned, name = None, ""
    if model_dir is not None:
        from attnkit.cli.viz import load_model, model_name

        learned, name = learned_positions(load_model(model_dir)), model_name(model_dir)
        if learned is None:
            raise InputError(f"the model in {str(model_dir)!r} has no learned position embedding (it uses fixed or "
                             f"rotary positions); run without --model")
    encodings, notes = position_encodings(length, dim, learned, name)
    fig = positions_figure({k: v.numpy() for k, v in encodings.items()}, notes=notes)
    start_writing(out, POSITION_NAMES, overwrite)
    print(save_figure(fig, out / "positions.png"))


@lesson_app.command("scores")
def scores(
    text: Annotated[str, typer.Argument(help="The words to attend over (default: the course's sentence).")] = COURSE_SENTENCE,
    out: Out = Path("attnkit-lesson-scores"),
    overwrite: OverwriteOut = False,
) -> None:
    """Every score function on one sentence: the self-attention weights of dot, scaled dot, cosine, general, concat,
    additive (Bahdanau), location and hard attention, side by side (seconds)."""
    from attnkit.recipes.lessons import score_lesson, word_vectors
    from attnkit.viz.figures import heatmaps_figure
    from attnkit.viz.plots import save_figure

    words = text.split()
    if not 2 <= len(words) <= 40:
        raise InputError(f"TEXT must have between 2 and 40 words. Received: {len(words)}")
    check_out_dir(out, SCORE_NAMES, overwrite)
    x, note = word_vectors(words)
    fig = heatmaps_figure(score_lesson(x), words, title=f"One sentence, every score function: softmax over the keys "
                          f"of each query's scores ({note}; general, concat, additive and location with untrained "
                          f"weights; hard: one key per query, the scaled dot's most likely)")
    start_writing(out, SCORE_NAMES, overwrite)
    print(save_figure(fig, out / "scores.png"))
