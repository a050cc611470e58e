"""Plain batch sources for the trainer: a ``torch.utils.data.DataLoader``, a list of batches, any re-iterable.

attnkit's own data sources are resumable (``state_dict()`` / ``load_state_dict()``, see
``attnkit.training.trainer``). A source without them still trains: ``PlainBatches`` wraps it, the trainer
cycles it pass after pass as it does every source, and resume is off (no checkpoint is written), since the
position inside the source cannot be saved. The trainer says so in one line (``RESUME_OFF_NOTE``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

RESUME_OFF_NOTE = ("resume is off: train_data ({name}) has no state_dict()/load_state_dict(), so its position "
                   "cannot be saved; use an attnkit data source to resume")


def is_resumable(source: Any) -> bool:
    """True if ``source`` can save and restore its position (``state_dict`` and ``load_state_dict``).

    Example:
        >>> is_resumable([1, 2]), is_resumable(PlainBatches([1, 2]))
        (False, False)
    """
    return (callable(getattr(source, "state_dict", None)) and callable(getattr(source, "load_state_dict", None))
            and getattr(source, "resumable", True))


class PlainBatches:
    """A re-iterable source of batches (``DataLoader``, list, ...) seen through the trainer's data protocol.

    Its ``state_dict()`` is empty and ``load_state_dict`` does nothing: it is marked ``resumable = False``
    and the trainer writes no checkpoint for it.

    Args:
        source: any iterable whose ``iter()`` starts a new pass (a ``DataLoader``, a list, a tuple).

    Raises:
        TypeError: ``source`` is not iterable, or is a one-shot iterator (a generator) that cannot be
            passed over twice.

    Example:
        >>> batches = PlainBatches([1, 2, 3])
        >>> list(batches), list(batches), batches.state_dict()
        ([1, 2, 3], [1, 2, 3], {})
    """

    resumable = False

    def __init__(self, source: Iterable[Any]) -> None:
        if not callable(getattr(source, "__iter__", None)):
            raise TypeError(f"train_data must be iterable (a DataLoader, a list of batches or an attnkit data "
                            f"source). Received: {type(source).__name__}")
        if isinstance(source, Iterator):
            raise TypeError(f"train_data is a one-shot iterator ({type(source).__name__}); the trainer passes over "
                            f"it more than once. Expected a DataLoader, a list of batches or an attnkit data source")
        self.source = source

    def __iter__(self) -> Iterator[Any]:
        return iter(self.source)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
