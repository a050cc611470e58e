"""What the trainer optimises: AdamW with decay on matrices only, and the module DDP wraps.

Example:
    >>> opt = build_optimizer(nn.Linear(4, 3), TrainConfig(weight_decay=0.1))
    >>> [g["weight_decay"] for g in opt.param_groups]
    [0.1, 0.0]
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attnkit.training.config import TrainConfig


class StepModule(nn.Module):
    """Routes ``training_step`` through ``__call__`` so DistributedDataParallel sees the forward pass.

    Example:
        >>> class Model(nn.Module):
        ...     def training_step(self, batch):
        ...         return batch.sum(), {"total": batch.numel()}
        >>> StepModule(Model())(torch.ones(3))
        (tensor(3.), {'total': 3})
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.model.training_step(batch)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (ndim >= 2) and none on biases, norms and scalars.

    Args:
        model: the module whose trainable parameters are optimised (shared tensors counted once).
        config: gives ``lr``, ``weight_decay``, ``betas`` and ``eps``.

    Returns:
        ``torch.optim.AdamW`` with a decayed group (matrices) and an undecayed one (the rest).

    Example:
        >>> opt = build_optimizer(nn.Linear(4, 3), TrainConfig(weight_decay=0.1))
        >>> [(g["weight_decay"], [tuple(p.shape) for p in g["params"]]) for g in opt.param_groups]
        [(0.1, [(3, 4)]), (0.0, [(3,)])]
    """
    seen: set[int] = set()
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr, betas=config.betas,
                             eps=config.eps)
