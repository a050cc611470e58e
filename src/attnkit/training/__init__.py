"""Training shared by every attnkit model: the trainer loop, checkpoints, schedules, runtime.

- ``Trainer(model, config, train_data, evaluate=None, started=None).fit() -> TrainResult`` with ``TrainConfig``.
- ``TimeBudget``: the whole run's time budget, which the trainer keeps (its last evaluation and checkpoint fit).
- ``save_checkpoint`` / ``load_checkpoint``: resumable checkpoint directories, written atomically.
- ``make_schedule`` and the schedule functions (constant, warmup, inverse_sqrt, cosine, noam).
- ``setup_runtime``, ``seed_everything``, ``RankShard``: device, rank, seeding and per-rank sampling.
"""

from attnkit.training.budget import TimeBudget
from attnkit.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from attnkit.training.runtime import RankShard, Runtime, seed_everything, setup_runtime
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
    "load_checkpoint",
    "make_schedule",
    "save_checkpoint",
    "seed_everything",
    "setup_runtime",
]
