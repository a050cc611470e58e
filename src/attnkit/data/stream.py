"""The one resumable stream: endless batches over epochs, saved and restored by position.

Every training stream of attnkit (``BatchStream``, ``BlockStream``, ``SentencePairStream``) is a
:class:`ResumableStream`. A subclass says two things:

* ``_plan_epoch(epoch)``: the list of batch plans of one epoch (e.g. example indices per batch), a pure
  function of the stream's seed and ``epoch``; the base caches the current epoch's plan.
* ``_make_batch(plan, epoch, index)``: the batch of one plan.

The base does the rest, the same way for all: position ``(epoch, index)`` of the next batch, rolling over
to the next epoch, ``batches_per_epoch``, and the ``state_dict()`` / ``load_state_dict()`` protocol of
``attnkit.training.Trainer``: the state is the position plus the values of ``resume_keys`` (seed, sizes,
...), which must match on resume (a ``ValueError`` names the first that differs).

Example:
    >>> class Evens(ResumableStream):
    ...     resume_keys = ("seed",)
    ...     def __init__(self, seed=0):
    ...         self.seed = seed
    ...     def _plan_epoch(self, epoch):
    ...         return [0, 2, 4]                                # three batches per epoch
    ...     def _make_batch(self, plan, epoch, index):
    ...         return (epoch, plan)
    >>> s = Evens()
    >>> [next(s) for _ in range(4)]
    [(0, 0), (0, 2), (0, 4), (1, 0)]
    >>> state = s.state_dict(); state
    {'epoch': 1, 'index': 1, 'seed': 0}
    >>> t = Evens(); t.load_state_dict(state); next(t)
    (1, 2)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (FNV-1a style; stable across runs and platforms).

    Example:
        >>> mix_seed(0, 1) == mix_seed(0, 1) != mix_seed(1, 0)
        True
    """
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (p & 0xFFFFFFFFFFFFFFFF)) * 1099511628211) & 0x7FFFFFFFFFFFFFFF
    return h


def check_resume(mine: dict[str, Any], state: dict[str, Any], keys: Sequence[str], hint: str = "") -> None:
    """Raise ``ValueError`` if ``state`` has one of ``keys`` with another value than ``mine``.

    Example:
        >>> check_resume({"seed": 1}, {"seed": 2}, ["seed"])
        Traceback (most recent call last):
        ...
        ValueError: Cannot resume the data stream: seed differs. Expected: 1. Received: 2
    """
    for key in keys:
        if key in state and state[key] != mine[key]:
            raise ValueError(
                f"Cannot resume the data stream: {key} differs{hint}. Expected: {mine[key]!r}. Received: {state[key]!r}"
            )


class ResumableStream:
    """Base of attnkit's endless, seeded, resumable batch streams (see the module docstring).

    Attributes:
        epoch, index: position of the next batch (``index`` counts batches within ``epoch``).
        resume_keys: names of attributes saved in ``state_dict()`` that must match on resume.
        resume_hint: added to the error when they differ, e.g. " (was the text file changed?)".

    Example:
        >>> class Twice(ResumableStream):
        ...     def _plan_epoch(self, epoch): return ["a", "b"]
        ...     def _make_batch(self, plan, epoch, index): return plan * (epoch + 1)
        >>> s = Twice(); [next(s) for _ in range(3)], s.batches_per_epoch
        (['a', 'b', 'aa'], 2)
    """

    epoch: int = 0
    index: int = 0
    resume_keys: tuple[str, ...] = ()
    resume_hint: str = ""
    _cache: tuple[int, list[Any]] | None = None

    # ---- what a subclass provides ---------------------------------------------------------------

    def _plan_epoch(self, epoch: int) -> list[Any]:
        """The plans of the batches of ``epoch`` (a pure function of the seed and ``epoch``)."""
        raise NotImplementedError

    def _make_batch(self, plan: Any, epoch: int, index: int) -> Any:
        """The batch of ``plan``, the ``index``-th of ``epoch``."""
        raise NotImplementedError

    def _resume_values(self) -> dict[str, Any]:
        """The values of ``resume_keys`` (attributes of the same names by default)."""
        return {k: getattr(self, k) for k in self.resume_keys}

    # ---- the shared part ------------------------------------------------------------------------

    def _epoch_batches(self, epoch: int) -> list[Any]:
        """``_plan_epoch(epoch)``, computed once per epoch."""
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self._plan_epoch(epoch))
        return self._cache[1]

    @property
    def batches_per_epoch(self) -> int:
        """Batches in the current epoch (it may differ between epochs for some streams)."""
        return len(self._epoch_batches(self.epoch))

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        order = self._epoch_batches(self.epoch)
        if self.index >= len(order):
            self.epoch, self.index = self.epoch + 1, 0
            order = self._epoch_batches(self.epoch)
        batch = self._make_batch(order[self.index], self.epoch, self.index)
        self.index += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Position (``epoch``, ``index`` of the next batch) and the values that must match on resume."""
        return {"epoch": self.epoch, "index": self.index, **self._resume_values()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position; raises ``ValueError`` if the data or batching differ."""
        check_resume(self.state_dict(), state, self.resume_keys, self.resume_hint)
        self.epoch, self.index = int(state["epoch"]), int(state["index"])
