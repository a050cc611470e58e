"""A tiny model and a tiny resumable batch stream for the trainer tests (no dependency on attnkit.data).

The model learns y = (x + 1) mod V token by token: embedding -> dropout -> linear -> tanh -> output
projection tied to the embedding (so checkpoints exercise shared tensors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attnkit.models.base import KitModel
from attnkit.storage import register_model


@dataclass
class TinyConfig:
    vocab: int = 11                     # token ids 0..vocab-1
    width: int = 8                      # embedding width
    dropout: float = 0.1                # dropout after the embedding (uses the torch RNG)
    sizes: tuple[int, int] = (3, 4)     # unused; checks tuple round-trips through JSON
    extra: dict[str, int] = field(default_factory=dict)  # unused; checks dict fields


@register_model
class TinyModel(KitModel):
    model_type = "tiny-test"
    config_class = TinyConfig

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab, config.width)
        self.drop = nn.Dropout(config.dropout)
        self.hidden = nn.Linear(config.width, config.width)
        self.out = nn.Linear(config.width, config.vocab, bias=True)
        self.out.weight = self.embed.weight  # tied

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.hidden(self.drop(self.embed(x))))  # (B, T, E)
        return self.out(h)  # (B, T, V)

    def training_step(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self(batch.x)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.y.flatten())
        correct = (logits.argmax(-1) == batch.y).sum().item()
        return loss, {"correct": correct, "total": batch.y.numel(), "tokens": batch.y.numel()}


@dataclass
class TinyBatch:
    x: torch.Tensor  # (B, T) long
    y: torch.Tensor  # (B, T) long

    def to(self, device: torch.device | str) -> TinyBatch:
        return TinyBatch(self.x.to(device), self.y.to(device))


class TinyStream:
    """``per_epoch`` batches per epoch; batch (epoch, index) is a pure function of (seed, epoch, index)."""

    def __init__(self, seed: int = 0, per_epoch: int = 7, batch_size: int = 4, length: int = 5, vocab: int = 11):
        self.seed, self.per_epoch, self.batch_size, self.length, self.vocab = seed, per_epoch, batch_size, length, vocab
        self.epoch, self.index = 0, 0
        self.served: list[tuple[int, int]] = []

    def make(self, epoch: int, index: int) -> TinyBatch:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 1009 + index)
        x = torch.randint(0, self.vocab, (self.batch_size, self.length), generator=g)
        return TinyBatch(x, (x + 1) % self.vocab)

    def __iter__(self):
        while self.index < self.per_epoch:
            batch = self.make(self.epoch, self.index)
            self.served.append((self.epoch, self.index))
            self.index += 1
            yield batch
        self.epoch, self.index = self.epoch + 1, 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.index = state["epoch"], state["index"]


def tiny_model(seed: int = 0, **kw: Any) -> TinyModel:
    torch.manual_seed(seed)
    return TinyModel(TinyConfig(**kw))
