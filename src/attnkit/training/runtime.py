"""Where the process runs: device, rank and world size, seeding, RNG state, and who writes and prints.

Everything that changes between one process and many lives here, so ``torchrun`` can drop in without
touching models or the trainer loop:

- ``setup_runtime(device)`` reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (set by ``torchrun``) and, when
  ``WORLD_SIZE > 1``, starts the process group (``nccl`` on CUDA, ``gloo`` on CPU).
- ``wrap_for_training(module, rt)`` wraps in ``DistributedDataParallel`` when distributed.
- ``global_batch_size(b)``: the batch every rank reads from the same seeded stream (``b`` per process times
  the number of processes); ``attnkit.training.rank_split`` gives each rank its rows of it.
- ``is_main_process()`` and ``main_only(fn)``: the one rule for output. Only the main process (rank 0)
  writes files or prints results; every writer and printer of a training command goes through
  ``main_only`` (the trainer through ``Runtime.is_main``). Work done inside ``main_only`` (a report, a
  baseline trained for comparison) runs as one process: ``setup_runtime`` there starts no process group.
- ``seed_everything(seed)``, ``get_rng_state()`` / ``set_rng_state(state)`` for python, numpy and torch.

Example (one process; under ``torchrun`` the same code gets its rank from the environment):

    >>> rt = setup_runtime("cpu")
    >>> rt.rank, rt.world_size, rt.is_main
    (0, 1, True)
    >>> seed_everything(0)
    >>> global_batch_size(16)                   # x WORLD_SIZE under torchrun
    16
    >>> @main_only
    ... def report(text): print(text)
    >>> report("only rank 0 prints this")
    only rank 0 prints this
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

R = TypeVar("R")

_ALONE: contextvars.ContextVar[bool] = contextvars.ContextVar("attnkit_main_only", default=False)
"""True inside a ``main_only`` call: the work there is one process's, whatever ``WORLD_SIZE`` says."""


@dataclass(frozen=True)
class Runtime:
    """The process's place in a run.

    Attributes:
        device: where the model and batches go.
        rank: global rank (0 in a single process).
        world_size: number of processes (1 in a single process).
        local_rank: rank on this machine (picks the GPU).
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes logs and checkpoints (see ``main_only``)."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer. Received: {value!r}") from None


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:<local_rank>`` when CUDA is available, else ``mps`` if available, else ``cpu``;
    any other string/device is used as given (``"cuda"`` becomes ``cuda:<local_rank>``)."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be a str or torch.device. Received: {type(device).__name__}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device("cuda", local_rank) if device == "cuda" else torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device. Expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'. Received: {device!r}") from None
    _check_available(dev)
    return dev


def _check_available(dev: torch.device) -> None:
    """``ValueError`` naming the device when this machine's torch cannot use it (no CUDA build, no GPU N)."""
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "has no CUDA support" if torch.version.cuda is None else "finds no CUDA GPU"
            raise ValueError(f"--device {dev}: this torch ({torch.__version__}) {build}. Expected 'auto' or 'cpu' "
                             f"here. Received: {str(dev)!r}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {dev}: only {torch.cuda.device_count()} CUDA device(s) here. "
                             f"Received: {str(dev)!r}")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"--device mps: this machine's torch has no MPS (Apple GPU) support. Expected 'auto' "
                             f"or 'cpu' here. Received: {str(dev)!r}")


def setup_runtime(device: str | torch.device = "auto") -> Runtime:
    """Read the ``torchrun`` environment, pick the device, and start the process group if needed.

    Single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``): nothing is started. Several processes: the
    default process group is initialised once (``nccl`` for CUDA devices, ``gloo`` otherwise) from the
    ``MASTER_ADDR`` / ``MASTER_PORT`` that ``torchrun`` sets. Inside ``main_only`` (rank 0 alone) it is one
    process whatever the environment says.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    if _ALONE.get():  # inside main_only: rank 0 works alone, the other ranks are not there
        world_size, rank = 1, 0
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid process layout: expected 0 <= RANK < WORLD_SIZE. Received: RANK={rank}, "
                         f"WORLD_SIZE={world_size}")
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, timeout=dist_timeout())
    return Runtime(device=dev, rank=rank, world_size=world_size, local_rank=local_rank)


def dist_timeout() -> timedelta:
    """How long a collective (and the start-up rendezvous) waits for the other ranks before failing:
    ``ATTNKIT_DIST_TIMEOUT`` seconds (default 600), so a dead or stuck rank ends the run with an error."""
    seconds = float(os.environ.get("ATTNKIT_DIST_TIMEOUT", "600") or 600)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"ATTNKIT_DIST_TIMEOUT must be a number of seconds > 0. Received: {seconds}")
    return timedelta(seconds=seconds)


def process_rank() -> int:
    """This process's global rank from ``torchrun``'s environment (0 without it), before any set-up."""
    return _env_int("RANK", 0)


def process_count() -> int:
    """How many processes train together: ``torchrun``'s ``WORLD_SIZE`` (1 without it, or in ``main_only``)."""
    return 1 if _ALONE.get() else max(1, _env_int("WORLD_SIZE", 1))


def global_batch_size(per_process: int) -> int:
    """The batch size of the stream every rank reads: ``per_process`` times the number of processes.

    Every rank builds the same seeded stream with this size and trains on its rows of each batch
    (``attnkit.training.rank_split``), so N processes with ``per_process`` rows each take exactly the
    batches one process takes with ``N * per_process``, the last, smaller batch of an epoch included.

    Example:
        >>> global_batch_size(16)   # one process; 32 under torchrun --nproc_per_node 2
        16
    """
    return per_process * process_count()


def is_main_process() -> bool:
    """True in the process that writes files and prints results: rank 0 (also before any set-up).

    Example:
        >>> is_main_process()
        True
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return process_rank() == 0


def main_only(fn: Callable[..., R]) -> Callable[..., R | None]:
    """``fn`` run on the main process only (rank 0); on the other ranks the call does nothing, returns None.

    The one rule for output under ``torchrun``: every function that writes a file or prints a result of a
    training command goes through this. Inside the call rank 0 works alone: a ``Trainer`` started there
    (e.g. a baseline trained for a report) runs as one process.

    Example:
        >>> @main_only
        ... def save(text): return f"saved {text}"
        >>> save("report.json")
        'saved report.json'
    """

    @functools.wraps(fn)
    def on_main(*args: Any, **kwargs: Any) -> R | None:
        if not is_main_process():
            return None
        token = _ALONE.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _ALONE.reset(token)

    return on_main


def wrap_for_training(module: nn.Module, rt: Runtime) -> nn.Module:
    """``DistributedDataParallel(module)`` when ``rt.distributed``, else ``module`` unchanged.

    The module must already be on ``rt.device``. DDP synchronises gradients in ``backward`` only for
    computations that went through the wrapper's ``__call__``, so call the returned module, not its parts.
    """
    if not rt.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [rt.device.index] if rt.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def all_reduce_sum(values: dict[str, float], rt: Runtime) -> dict[str, float]:
    """Sum numbers over ranks (identity in a single process); used for logged counts and losses."""
    if not rt.distributed or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=rt.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {k: float(v) for k, v in zip(keys, t.tolist(), strict=True)}


def broadcast_flag(flag: bool, rt: Runtime) -> bool:
    """Rank 0's decision, shared with every rank (e.g. stop on a time budget); identity in one process."""
    if not rt.distributed:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=rt.device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def broadcast_best(best: float | None, best_step: int | None, rt: Runtime) -> tuple[float | None, int | None]:
    """Rank 0's best metric and its step, on every rank (rank 0 alone evaluates); identity in one process.

    Also a barrier: every rank waits for rank 0's last writes.
    """
    if not rt.distributed:
        return best, best_step
    t = torch.tensor([math.nan if best is None else best, -1 if best_step is None else best_step],
                     dtype=torch.float64, device=rt.device)
    dist.broadcast(t, src=0)
    value, step = t.tolist()
    return (None if math.isnan(value) else value), (None if step < 0 else int(step))


def barrier(rt: Runtime) -> None:
    """Wait for every rank (no-op in a single process)."""
    if rt.distributed:
        dist.barrier()


# ----------------------------------------------------------------------------------------------------------
# Seeds and RNG state
# ----------------------------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and every CUDA device)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int. Received: {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The current RNG states as ``(json_part, tensor_part)``.

    ``json_part`` holds python's and numpy's states as plain lists/ints (JSON-serialisable);
    ``tensor_part`` holds torch's CPU state and one state per CUDA device (``uint8`` tensors, stored in a
    checkpoint's ``rng_state.safetensors``).
    """
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    json_part = {"python": [version, list(internal), gauss],
                 "numpy": [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]}
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda:{i}"] = s
    return json_part, tensors


def set_rng_state(json_part: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Restore states taken by ``get_rng_state`` (CUDA states only for devices present)."""
    version, internal, gauss = json_part["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = json_part["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"].to("cpu", torch.uint8))
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda:")]
        for i, s in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.to("cpu", torch.uint8), i)


def move_to(batch: Any, device: torch.device) -> Any:
    """Put a batch on ``device``: uses ``batch.to(device)`` when it has one, else recurses through dicts,
    lists and tuples of tensors; anything else is returned unchanged."""
    if isinstance(batch, torch.Tensor) or callable(getattr(batch, "to", None)):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [move_to(v, device) for v in batch]
        return type(batch)(moved) if not hasattr(batch, "_fields") else type(batch)(*moved)
    return batch
