"""Mask helpers (``attnkit.masks``): boolean, True = may attend. See :mod:`attnkit.functional.masks`."""

from attnkit.functional.masks import causal_mask, local_window_mask, padding_mask

__all__ = ["padding_mask", "causal_mask", "local_window_mask"]
