"""One text's tokens shaded by an importance score, with a colour scale: the picture of an explanation.

Scores may be signed (gradient x input, leave-one-out): the scale is diverging and centred on 0 (red: for
the predicted class, blue: against it); non-negative scores (attention, rollout) use the red half only.

Example:
    >>> import tempfile
    >>> from attnkit.viz.plots import save_figure
    >>> fig = words_figure([0.5, -0.2, 0.1], ["stocks", "fell", "sharply"], title="gradient_x_input")
    >>> len(fig.axes), save_figure(fig, f"{tempfile.mkdtemp()}/w.png").suffix   # the text and its colour bar
    (2, '.png')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import numpy as np  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from attnkit.viz._ticks import suptitle  # noqa: E402


def words_figure(scores: Any, tokens: Sequence[str], *, title: str | None = None, per_line: int = 10,
                 label: str = "importance") -> Figure:
    """Tokens in reading order, ``per_line`` to a line, each on a box coloured by its score, and a colour bar.

    Args:
        scores: ``(T,)`` one score per token (any sign).
        tokens: ``T`` tokens.
        title: the figure's title (e.g. the method and the prediction).
        per_line: tokens per line.
        label: the colour bar's label.

    Raises:
        ValueError: ``scores`` not one per token, or not finite.
    """
    s = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, dtype=np.float64).reshape(-1)
    if len(s) != len(tokens) or not len(s):
        raise ValueError(f"Expected one score per token ({len(tokens)} tokens). Received: {len(s)} scores")
    if not np.isfinite(s).all():
        raise ValueError("Expected finite scores. Received: NaN or infinity")
    top = max(float(np.abs(s).max()), 1e-12)
    norm = Normalize(-top if s.min() < 0 else 0.0, top)
    cmap = colormaps["RdBu_r"] if s.min() < 0 else colormaps["Reds"]
    n_lines = -(-len(s) // per_line)
    fig = Figure(figsize=(9.0, 1.2 + 0.38 * n_lines), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(0, per_line)
    ax.set_ylim(n_lines, 0)
    for k, (tok, v) in enumerate(zip(tokens, s, strict=True)):
        face = cmap(norm(v))
        dark = 0.299 * face[0] + 0.587 * face[1] + 0.114 * face[2] < 0.45  # white text on dark boxes
        ax.text(k % per_line + 0.05, k // per_line + 0.5, str(tok), va="center", fontsize=8,
                color="white" if dark else "black", bbox={"facecolor": face, "edgecolor": "none", "pad": 1.5})
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, orientation="horizontal", fraction=0.08, aspect=40,
                 label=label)
    suptitle(fig, title)  # wrapped to the figure's width
    return fig


__all__ = ["words_figure"]
