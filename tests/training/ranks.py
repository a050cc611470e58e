"""Launch N ranks of a function as ``torchrun`` would (its environment, gloo on CPU), with a deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch.multiprocessing as mp


def free_port() -> int:
    """A free TCP port on localhost (for ``MASTER_PORT``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(fn: Callable[..., None], args: tuple[Any, ...], nprocs: int, deadline: float) -> None:
    """``fn(rank, *args)`` in ``nprocs`` spawned processes; fails the test if they are not done in ``deadline``
    seconds (a stuck rank), and kills what is left."""
    ctx = mp.start_processes(fn, args=args, nprocs=nprocs, join=False, start_method="spawn")
    end = time.monotonic() + deadline
    try:
        while not ctx.join(timeout=2):
            if time.monotonic() > end:
                pytest.fail(f"the {nprocs} ranks did not finish within {deadline} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
