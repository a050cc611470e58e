"""Everything ``attnkit viz`` writes for one record: the pictures (PNG or SVG) and the HTML explorer.

All figures and the page are built first and written only at the end, so a failure writes nothing.

    attention.<ext>   raw (mean of heads, last chosen layer) beside rollout / flow / grad   models with layers
    heads.<ext>       the chosen layers x heads grid                                        models with layers
    token.<ext>       one token's attention as bars (the first, or --token)                 models with layers
    alignment.<ext>   output x input tokens                                                 seq2seq, transformer
    words.<ext>       the classifier's word weights as highlighted text                     classifier
    regions.<ext>     one image overlay per output word                                     captioner
    explorer.html     the interactive page

Shape legend: L layers, H heads, T tokens.

Example:
    >>> import tempfile, torch
    >>> from attnkit.viz.record import AttentionRecord
    >>> rec = AttentionRecord("bert", list("abcd"), tuple(torch.softmax(torch.randn(2, 4, 4), -1) for _ in range(3)))
    >>> sorted(p.name for p in write_report(rec, tempfile.mkdtemp(), method="rollout", dpi=40))
    ['attention.png', 'explorer.html', 'heads.png', 'token.png']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnkit.viz.explorer import explorer_data, explorer_html
from attnkit.viz.figures import heads_grid_figure, heatmaps_figure, token_figure
from attnkit.viz.methods import METHODS, method_matrix
from attnkit.viz.plots import alignment_figure, save_figure
from attnkit.viz.record import AttentionRecord


def _layer_figures(rec: AttentionRecord, method: str, layers: list[int], heads: list[int],
                   token: int) -> dict[str, Any]:
    last = layers[-1]
    names = {"raw": f"raw, layer {last}, mean of heads", "rollout": "rollout", "flow": "flow",
             "grad": f"gradient-weighted, layer {last}"}
    mats = {names["raw"]: method_matrix(rec, "raw", last)}
    chosen = mats[names["raw"]]
    if method != "raw":
        chosen = mats[names[method]] = method_matrix(rec, method, last)
    caption = "\n".join(filter(None, [rec.output, *rec.notes])) or None  # what was merged or hidden, on the picture
    about = f"attention of {rec.tokens[token]!r} (token {token}), {names[method]}"
    return {
        "attention": heatmaps_figure(mats, rec.tokens, title=caption),
        "heads": heads_grid_figure(rec.attentions, rec.tokens, layers=layers, heads=heads, title=caption),
        "token": token_figure(chosen[token], rec.tokens, title="\n".join([about, *rec.notes])),
    }


def token_index(tokens: list[str], token: int | str | None) -> int:
    """The row ``--token`` names: a position (0 = first) or a token's text (its first occurrence); None -> 0.

    Example:
        >>> token_index(["[CLS]", "cine", "ver"], "ver"), token_index(["a", "b"], "1"), token_index(["a"], None)
        (2, 1, 0)
    """
    if token is None:
        return 0
    if isinstance(token, int) or str(token).lstrip("-").isdigit():
        i = int(token)
        if not 0 <= i < len(tokens):
            raise ValueError(f"Expected --token between 0 and {len(tokens) - 1} (or a token). Received: {i}")
        return i
    for i, t in enumerate(tokens):
        if t == token or t.lower() == str(token).lower():
            return i
    raise ValueError(f"Expected --token to be a position or one of the tokens {tokens}. Received: {token!r}")


def build_figures(rec: AttentionRecord, method: str = "raw", layers: Sequence[int] | None = None,
                  heads: Sequence[int] | None = None, token: int | str | None = None) -> dict[str, Any]:
    """name -> matplotlib ``Figure`` for ``rec`` (see the table above); ``token`` picks token.png's row."""
    figures: dict[str, Any] = {}
    if rec.has_layers:
        figures.update(_layer_figures(rec, method, list(layers or range(rec.num_layers)),
                                      list(heads or range(rec.num_heads)), token_index(rec.tokens, token)))
    if rec.alignment is not None:
        figures["alignment"] = alignment_figure(rec.alignment, rec.out_tokens, rec.tokens, title=rec.output or None)
    if rec.word_weights is not None:
        figures["words"] = token_figure(rec.word_weights, rec.tokens, style="text",
                                        title=rec.output or "word weights")
    if rec.image_attention is not None:
        figures["regions"] = regions_figure(rec)
    return figures


def regions_figure(rec: AttentionRecord) -> Any:
    """The captioner's per-word overlays (``attnkit.viz.overlay.overlay_grid``) as one figure, with the colour
    scale of the overlays (each word's map relative to its own largest weight)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.figure import Figure

    from attnkit.viz._ticks import suptitle
    from attnkit.viz.overlay import hot_colours, overlay_grid

    gh, gw = rec.region_grid
    maps = rec.image_attention.reshape(-1, gh, gw)  # (T_out, gh, gw)
    sheet = overlay_grid(rec.image, maps, rec.out_tokens, scale=False)
    fig = Figure(figsize=(sheet.shape[1] / 100 + 0.2, sheet.shape[0] / 100 + 1.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(sheet)
    ax.set_axis_off()
    hot = ScalarMappable(Normalize(0.0, 1.0), ListedColormap(hot_colours(np.linspace(0.0, 1.0, 256))))
    fig.colorbar(hot, ax=ax, orientation="horizontal", fraction=0.08, aspect=40,
                 label="attention over the image, relative to the word's largest weight")
    suptitle(fig, rec.output, fontsize=9)
    return fig


def write_report(rec: AttentionRecord, out: str | os.PathLike[str], method: str = "raw",
                 layers: Sequence[int] | None = None, heads: Sequence[int] | None = None, svg: bool = False,
                 dpi: int = 100, top_k: int | None = None, token: int | str | None = None) -> list[Path]:
    """Build every picture and the explorer of ``rec``, then write them into directory ``out``.

    ``token`` picks the row token.png shows (a position or a token's text; default the first).

    Returns:
        The paths written.
    """
    if method not in METHODS:
        raise ValueError(f"Expected method in {METHODS}. Received: {method!r}")
    if method != "raw" and not rec.has_layers:
        raise ValueError(f"--method {method} needs per-layer self-attention, which a {rec.model_type} model does not "
                         f"have. Expected --method raw")
    figures = build_figures(rec, method, layers, heads, token)
    views = ("raw", "rollout") if method in ("raw", "rollout") else ("raw", "rollout", method)
    page = explorer_html(explorer_data(rec, methods=views, layers=layers, heads=heads, top_k=top_k, initial=method))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [save_figure(fig, out / f"{name}.{'svg' if svg else 'png'}", dpi=dpi) for name, fig in figures.items()]
    from attnkit.storage.files import atomic_write_text

    atomic_write_text(out / "explorer.html", page)
    return [*written, out / "explorer.html"]


__all__ = ["METHODS", "build_figures", "method_matrix", "token_index", "write_report"]
