"""Pictures of what attention does. ``viz`` sees weight tensors and token labels, never models' internals.

- ``attnkit.viz.terminal``: ``print_heatmap``, ``heatmap_table``, ``heatmap_text`` (rich, in the terminal).
- ``attnkit.viz.plots``: ``save_alignment_png``, ``alignment_figure``, ``save_line_plot``, ``save_figure``
  (matplotlib, Agg; PNG, or SVG for a ``.svg`` path).
- ``attnkit.viz.figures``: ``heads_grid_figure`` (layers x heads), ``heatmaps_figure`` (side by side),
  ``token_figure`` (one token's attention as bars or highlighted text).
- ``attnkit.viz.interpret``: ``attention_rollout``, ``attention_flow``, ``gradient_weighted_attention``.
- ``attnkit.viz.record``: ``AttentionRecord``, what the pictures and the explorer read (plain tensors and
  labels); the application floor fills one from a model (``attnkit.recipes.records.record_for``).
- ``attnkit.viz.explorer``: ``write_explorer`` (the self-contained HTML page); ``attnkit.viz.report``:
  ``write_report`` (everything ``attnkit viz`` writes); ``attnkit.viz.notebook``: ``show`` (the explorer
  inline in Jupyter).
"""

from attnkit.viz.explorer import write_explorer
from attnkit.viz.figures import heads_grid_figure, heatmaps_figure, token_figure
from attnkit.viz.interpret import attention_flow, attention_rollout, gradient_weighted_attention
from attnkit.viz.notebook import show
from attnkit.viz.overlay import overlay_grid, upsample_map, word_overlays  # noqa: F401  (captioner overlays)
from attnkit.viz.plots import alignment_figure, save_alignment_png, save_figure, save_line_plot
from attnkit.viz.record import AttentionRecord
from attnkit.viz.report import write_report
from attnkit.viz.terminal import heatmap_table, heatmap_text, print_heatmap

__all__ = ["AttentionRecord", "alignment_figure", "attention_flow", "attention_rollout",
           "gradient_weighted_attention", "heads_grid_figure", "heatmap_table", "heatmap_text", "heatmaps_figure",
           "print_heatmap", "save_alignment_png", "save_figure", "save_line_plot", "show",
           "token_figure", "write_explorer", "write_report"]
