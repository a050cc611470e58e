"""Training shared by every attnkit model: the trainer loop, checkpoints, schedules, runtime.

- ``Trainer(model, config, train_data, evaluate=None, started=None).fit() -> TrainResult`` with ``TrainConfig``.
- ``TimeBudget``: the whole run's time budget, which the trainer keeps (its last evaluation and checkpoint fit).
- ``save_checkpoint`` / ``load_checkpoint``: resumable checkpoint directories, written atomically.
- ``make_schedule`` and the schedule functions (constant, warmup, inverse_sqrt, cosine, noam).
- ``setup_runtime``, ``seed_everything``: device, rank and seeding; ``global_batch_size`` and ``RankShard``:
  every rank reads the same global batches and trains on its rows of each; ``main_only``: rank 0 alone
  writes and prints.
"""

from attnkit.training.budget import TimeBudget
from attnkit.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from attnkit.training.rank_split import RankShard
from attnkit.training.runtime import (
    Runtime,
    global_batch_size,
    is_main_process,
    main_only,
    seed_everything,
    setup_runtime,
)
from attnkit.training.schedules import SCHEDULES, make_schedule
from attnkit.training.trainer import TrainConfig, Trainer, TrainResult

__all__ = [
    "Checkpoint",
    "RankShard",
    "Runtime",
    "SCHEDULES",
    "TimeBudget",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "global_batch_size",
    "is_main_process",
    "load_checkpoint",
    "main_only",
    "make_schedule",
    "save_checkpoint",
    "seed_everything",
    "setup_runtime",
]
