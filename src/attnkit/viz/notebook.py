"""The HTML explorer inline in Jupyter: ``show(record)`` returns an object that notebooks display.

Jupyter (and VS Code, Colab, JupyterLab) call ``_repr_html_`` on the value of a cell. Here it returns an
``<iframe srcdoc="...">`` holding the whole explorer page (:mod:`attnkit.viz.explorer`): self-contained and
offline as the written file is (no CDN, no widget extension, nothing fetched), and isolated from the notebook's
own styles and scripts (``sandbox="allow-scripts"``: the page runs its script, nothing else). Nothing here
imports IPython.

Example:
    >>> import torch
    >>> from attnkit.viz.record import AttentionRecord
    >>> rec = AttentionRecord("bert", list("abcd"), tuple(torch.softmax(torch.randn(2, 4, 4), -1) for _ in range(3)))
    >>> view = show(rec, methods=("raw", "rollout"))
    >>> shown = view._repr_html_()
    >>> shown.startswith("<iframe srcdoc="), "https://" in shown
    (True, False)
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnkit.storage import atomic_write_text
from attnkit.viz.explorer import explorer_data, explorer_html
from attnkit.viz.record import AttentionRecord


@dataclass(frozen=True)
class ExplorerView:
    """The explorer page of one record, displayed inline by notebooks (``_repr_html_``).

    Attributes:
        page: the self-contained HTML page (what ``write_explorer`` writes).
        height: the iframe's height in CSS pixels (its width is the cell's).
    """

    page: str
    height: int = 720

    def _repr_html_(self) -> str:
        """An ``<iframe>`` whose ``srcdoc`` is the page (escaped for the attribute)."""
        return (f'<iframe srcdoc="{html.escape(self.page, quote=True)}" sandbox="allow-scripts" '
                f'style="width:100%;height:{int(self.height)}px;border:1px solid #ddd" '
                f'title="attnkit attention explorer"></iframe>')

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to ``path`` (atomically), to open in a browser or hand out."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, self.page)
        return path


def show(rec: AttentionRecord, *, height: int = 720, **kwargs: Any) -> ExplorerView:
    """The explorer of ``rec``, to display in a notebook cell (the cell's last value, or ``display(view)``).

    Args:
        rec: the record (``attnkit.recipes.records.record_for`` fills one from a model and a text).
        height: the height of the inline frame, in CSS pixels.
        **kwargs: as :func:`attnkit.viz.explorer.explorer_data` (``methods``, ``layers``, ``heads``,
            ``top_k``, ``title``).

    Returns:
        An :class:`ExplorerView` (``view.page`` is the HTML; ``view.save(path)`` writes it).

    Raises:
        ValueError: a height that is not a positive int.
    """
    if not isinstance(height, int) or isinstance(height, bool) or height < 1:
        raise ValueError(f"Expected height a positive int (CSS pixels). Received: {height!r}")
    return ExplorerView(explorer_html(explorer_data(rec, **kwargs)), height)


__all__ = ["ExplorerView", "show"]
