"""Pictures of what attention does. ``viz`` sees weight tensors ``(Tq, Tk)`` and token labels, never models.

- ``attnkit.viz.terminal``: ``print_heatmap``, ``heatmap_table``, ``heatmap_text`` (rich, in the terminal).
- ``attnkit.viz.plots``: ``save_alignment_png``, ``alignment_figure``, ``save_line_plot`` (matplotlib, Agg).
"""

from attnkit.viz.plots import alignment_figure, save_alignment_png, save_line_plot
from attnkit.viz.terminal import heatmap_table, heatmap_text, print_heatmap

__all__ = ["alignment_figure", "heatmap_table", "heatmap_text", "print_heatmap", "save_alignment_png",
           "save_line_plot"]
