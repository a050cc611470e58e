"""``attnkit lesson ...``: one command and one picture for a lesson of the course.

    attnkit lesson cost --out cost           cost/cost.png, cost.json (under 2 minutes on 2 cores)
    attnkit lesson scores --out scores       scores/scores.png: every score function on the course's sentence (seconds)
    attnkit lesson positions --out pos       pos/positions.png (seconds); --model DIR for a trained
                                             model's learned positions
    attnkit lesson steps --out steps         steps/steps.png: the four steps of attention on a date (1.5 to 3 min:
                                             trains a small Bahdanau model; --model DIR for one of yours: seconds)
    attnkit lesson qkv --out qkv             qkv/qkv.png: Q = X W_q, K, V, scores, softmax, output (seconds)
    attnkit lesson keras --out keras         keras/keras.png: attnkit's Attention/MultiHeadAttention beside Keras 3's
    attnkit lesson decoding --out decoding   decoding/decoding.png: p(y) = prod_t p(y_t | y_<t, x), greedy vs beam
                                             (the same small model: 1.5 to 3 min, or seconds with --model DIR)
    attnkit lesson masks --out masks         masks/masks.png: teacher forcing, causal and padding masks, a tiny
                                             Transformer's three attentions (seconds)
    attnkit lesson mlm --out mlm             mlm/mlm.png: BERT's masked LM (15%, 80/10/10) and next-sentence pairs
    attnkit lesson gpt --out gpt             gpt/gpt.png: GPT's causal mask, attention and next-word probabilities
                                             (a tiny GPT trained here for seconds)
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
STEP_NAMES = ("steps.png",)
QKV_NAMES = ("qkv.png",)
KERAS_NAMES = ("keras.png",)
DECODING_NAMES = ("decoding.png",)
MASK_NAMES = ("masks.png",)
MLM_NAMES = ("mlm.png",)
GPT_NAMES = ("gpt.png",)
DATE = "4 de marzo de 2031"
NO_YEAR = "el 4 de marzo"
"""The decoding lesson's input: a date without its year, so the decoder is unsure at some step."""
Model = Annotated[Path | None, typer.Option("--model", help="A trained seq2seq model with Bahdanau attention (a "
                                            "run of attnkit demo or attnkit train seq2seq; default: train a small "
                                            "one here on dates, about a minute).")]
TrainSteps = Annotated[int, typer.Option("--steps", help="Training steps of the small model made without --model "
                                         "(1 to 5000).")]
Budget = Annotated[float, typer.Option("--time-budget", help="Seconds its training may take (1 to 600).")]
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
    _save(fig, out, POSITION_NAMES, overwrite)


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

    words = _words(text, 2)
    check_out_dir(out, SCORE_NAMES, overwrite)
    x, note = word_vectors(words)
    fig = heatmaps_figure(score_lesson(x), words, title=f"One sentence, every score function: softmax over the keys "
                          f"of each query's scores ({note}; general, concat, additive and location with untrained "
                          f"weights; hard: one key per query, the scaled dot's most likely)")
    _save(fig, out, SCORE_NAMES, overwrite)


def _words(text: str, fewest: int, most: int = 40) -> list[str]:
    """The words of TEXT, or an ``InputError`` when there are too few or too many."""
    words = text.split()
    if not fewest <= len(words) <= most:
        raise InputError(f"TEXT must have between {fewest} and {most} words. Received: {len(words)}")
    return words


def _save(fig, out: Path, names: tuple[str, ...], overwrite: bool) -> None:
    """Write the lesson's picture ``out/names[0]`` (after the ``--out`` guard's last check; a 256-colour PNG,
    small enough for a web page) and print its path."""
    from attnkit.viz.panels import save_palette_png

    start_writing(out, names, overwrite)
    print(save_palette_png(fig, out / names[0]))


def _seq2seq(model_dir: Path | None, steps: int, time_budget: float, threads: int):
    """``(model, note)``: the Bahdanau model in ``model_dir``, or a small one trained here on dates."""
    from attnkit.recipes.lesson_model import check_bahdanau, quick_dates_model

    if not 1 <= steps <= 5000:
        raise InputError(f"--steps must be between 1 and 5000. Received: {steps}")
    if not 1 <= time_budget <= 600:
        raise InputError(f"--time-budget must be between 1 and 600 seconds. Received: {time_budget}")
    apply_threads(threads)
    if model_dir is not None:
        from attnkit.cli.viz import load_model, model_name

        return check_bahdanau(load_model(model_dir), str(model_dir)), f"the model {model_name(model_dir)}"
    say(f"training a small Bahdanau model on dates ({steps} steps or {time_budget:.0f} s; --model DIR skips this)",
        console)
    return quick_dates_model(steps, time_budget, log=lambda m: say(m, console))


@lesson_app.command("steps")
def steps(
    text: Annotated[str, typer.Argument(help="The input (a date in any of the task's languages).")] = DATE,
    out: Out = Path("attnkit-lesson-steps"),
    model_dir: Model = None,
    step: Annotated[int | None, typer.Option("--step", help="The output step drawn in steps 2-4 (1 = the first "
                                             "output token; default: the step whose weights peak highest).")] = None,
    steps: TrainSteps = 300,
    time_budget: Budget = 120.0,
    threads: Threads = 1,
    overwrite: OverwriteOut = False,
) -> None:
    """The four steps of attention: encoder states h_j, scores e_ij, softmax a_ij, context c_i = sum_j a_ij h_j;
    and one context vector per output token (Bahdanau's encoder-decoder on a date)."""
    from attnkit.recipes.lesson_steps import attention_steps, default_step, steps_panels
    from attnkit.viz.panels import panels_figure

    check_out_dir(out, STEP_NAMES, overwrite)
    model, note = _seq2seq(model_dir, steps, time_budget, threads)
    r = attention_steps(model, text)
    if step is not None and not 1 <= step <= len(r["output"]):
        raise InputError(f"--step must be between 1 and {len(r['output'])} (the output's tokens). Received: {step}")
    i = default_step(r) if step is None else step - 1
    fig = panels_figure(steps_panels(r, i), columns=3, note=f"{note}; input {text!r}, greedy output "
                        f"{''.join(r['output'][:-1])!r}", title="The four steps of attention (Bahdanau): encoder "
                        "states, alignment scores, softmax, context vector; then every output step's weights and "
                        "context vector")
    _save(fig, out, STEP_NAMES, overwrite)


@lesson_app.command("qkv")
def qkv(
    text: Annotated[str, typer.Argument(help="The sentence (default: the course's).")] = COURSE_SENTENCE,
    out: Out = Path("attnkit-lesson-qkv"),
    head: Annotated[int, typer.Option("--head", help="Which head of MiniLM's first layer (1 to 12).")] = 1,
    overwrite: OverwriteOut = False,
) -> None:
    """Scaled dot-product attention step by step: Q = X W_q, K = X W_k, V = X W_v, Q K^T / sqrt(d_k), softmax,
    output, on one head of a real BERT's first layer (all-MiniLM-L6-v2; seconds)."""
    from attnkit.recipes.lesson_qkv import first_layer, qkv_panels
    from attnkit.viz.panels import panels_figure

    _words(text, 1)
    if not 1 <= head <= 12:
        raise InputError(f"--head must be between 1 and 12. Received: {head}")
    check_out_dir(out, QKV_NAMES, overwrite)
    p = first_layer(text, head - 1)
    fig = panels_figure(qkv_panels(p), columns=4, note=f"{p['note']}; sentence {text!r}",
                        title="Scaled dot-product attention, softmax(Q K^T / sqrt(d_k)) V: queries, keys and values "
                        "of one head")
    _save(fig, out, QKV_NAMES, overwrite)


@lesson_app.command("keras")
def keras(
    text: Annotated[str, typer.Argument(help="The words (default: the course's sentence).")] = COURSE_SENTENCE,
    out: Out = Path("attnkit-lesson-keras"),
    overwrite: OverwriteOut = False,
) -> None:
    """Keras 3's Attention and MultiHeadAttention beside attnkit's, on the same weights and words: their attention
    maps and the largest difference (needs Keras, the 'peers' extra; seconds)."""
    from attnkit.recipes.lesson_keras import import_keras, keras_pair, keras_panels
    from attnkit.recipes.lessons import word_vectors
    from attnkit.viz.panels import panels_figure

    words = _words(text, 2)
    import_keras()
    check_out_dir(out, KERAS_NAMES, overwrite)
    x, note = word_vectors(words)
    r = keras_pair(x)
    fig = panels_figure(keras_panels(r, words), columns=3, note=f"self-attention over {note}, each word "
                        f"normalised to mean 0 and variance 1; Attention's scale set to 4/D; MultiHeadAttention "
                        f"with Keras's seeded initialisation, copied by attnkit's from_keras", title="The course's Keras layers and attnkit's: the same weights "
                        "give the same attention")
    _save(fig, out, KERAS_NAMES, overwrite)
    print(f"largest |Keras - attnkit|: Attention weights {r['attention']['weights_diff']:.2e}, outputs "
          f"{r['attention']['output_diff']:.2e}; MultiHeadAttention weights {r['mha']['weights_diff']:.2e}, "
          f"outputs {r['mha']['output_diff']:.2e}")


@lesson_app.command("decoding")
def decoding(
    text: Annotated[str, typer.Argument(help="The input (a date in any of the task's languages; default: one "
                                        "without its year, so the decoder has to guess).")] = NO_YEAR,
    out: Out = Path("attnkit-lesson-decoding"),
    model_dir: Model = None,
    beam: Annotated[int, typer.Option("--beam", help="Beam size K of the beam search beside greedy (2 to 16).")] = 4,
    steps: TrainSteps = 300,
    time_budget: Budget = 120.0,
    threads: Threads = 1,
    overwrite: OverwriteOut = False,
) -> None:
    """The decoder as a next-word model: p(y|x) = prod_t p(y_t | y_<t, x), each step's distribution, the hidden
    state, greedy against beam search (Bahdanau's encoder-decoder on a date)."""
    from attnkit.recipes.lesson_decoding import decoding_lesson, decoding_panels
    from attnkit.viz.panels import panels_figure

    if not 2 <= beam <= 16:
        raise InputError(f"--beam must be between 2 and 16. Received: {beam}")
    check_out_dir(out, DECODING_NAMES, overwrite)
    model, note = _seq2seq(model_dir, steps, time_budget, threads)
    r = decoding_lesson(model, text, beam)
    fig = panels_figure(decoding_panels(r), columns=2, note=f"{note}; input {text!r}",
                        title="Step-by-step inference: the decoder gives p(y_t | y_<t, x), the output's probability "
                        "is their product; greedy takes the best token at each step, beam search keeps the K best "
                        "prefixes")
    _save(fig, out, DECODING_NAMES, overwrite)


@lesson_app.command("masks")
def masks(
    out: Out = Path("attnkit-lesson-masks"),
    steps: Annotated[int, typer.Option("--steps", help="Training steps of the tiny Transformer (1 to "
                                             "2000).")] = 150,
    threads: Threads = 1,
    overwrite: OverwriteOut = False,
) -> None:
    """The Transformer's training and masks on the course's "Me gustan los nachos": teacher forcing, the padding
    and causal masks, and a tiny Transformer's encoder self-, decoder masked self- and cross-attention (seconds)."""
    from attnkit.recipes.lesson_masks import masks_lesson, masks_panels
    from attnkit.viz.panels import panels_figure

    if not 1 <= steps <= 2000:
        raise InputError(f"--steps must be between 1 and 2000. Received: {steps}")
    check_out_dir(out, MASK_NAMES, overwrite)
    apply_threads(threads)
    r = masks_lesson(steps)
    fig = panels_figure(masks_panels(r), columns=3, title="The Transformer: teacher forcing, padding and causal "
                        "masks, and its three attentions", note=f"a one-layer, two-head Transformer trained here "
                        f"for {len(r['losses'])} steps on 5 pairs (it memorises them; final loss "
                        f"{r['losses'][-1]:.3f}); greedy inference, one token per step: {' '.join(r['greedy'])}")
    _save(fig, out, MASK_NAMES, overwrite)


@lesson_app.command("mlm")
def mlm(
    out: Out = Path("attnkit-lesson-mlm"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draws.")] = 0,
    overwrite: OverwriteOut = False,
) -> None:
    """BERT's pretraining data: the masked LM's 15% rule (80% [MASK], 10% random, 10% kept) drawn on the course's
    sentence and counted over many draws, and next-sentence-prediction pairs (seconds)."""
    from attnkit.recipes.lesson_mlm import mlm_lesson, mlm_panels
    from attnkit.viz.panels import panels_figure

    check_out_dir(out, MLM_NAMES, overwrite)
    r = mlm_lesson(seed=seed)
    fig = panels_figure(mlm_panels(r), title="BERT's pretraining tasks: masked language model and next sentence "
                        "prediction", note=f"{r['note']}; attnkit.models.bert_data.mask_tokens and "
                        "next_sentence_pairs, as attnkit train bert uses them")
    _save(fig, out, MLM_NAMES, overwrite)


@lesson_app.command("gpt")
def gpt(
    out: Out = Path("attnkit-lesson-gpt"),
    steps: Annotated[int, typer.Option("--steps", help="Training steps of the tiny GPT (1 to 2000).")] = 200,
    threads: Threads = 1,
    overwrite: OverwriteOut = False,
) -> None:
    """GPT, a decoder-only Transformer: the causal mask, the attention it allows and the next-word probabilities
    of a tiny GPT trained here on a few sentences around the course's (seconds)."""
    from attnkit.recipes.lesson_gpt import gpt_lesson, gpt_panels
    from attnkit.viz.panels import panels_figure

    if not 1 <= steps <= 2000:
        raise InputError(f"--steps must be between 1 and 2000. Received: {steps}")
    check_out_dir(out, GPT_NAMES, overwrite)
    apply_threads(threads)
    r = gpt_lesson(steps=steps)
    fig = panels_figure(gpt_panels(r), columns=2, title="GPT: each word attends to the words before it and predicts "
                        "the next one", note=f"a one-layer, two-head word-level GPT trained here for "
                        f"{len(r['losses'])} steps on 6 sentences (it memorises them; final loss "
                        f"{r['losses'][-1]:.3f})")
    _save(fig, out, GPT_NAMES, overwrite)
