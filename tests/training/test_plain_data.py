"""The trainer on a plain torch DataLoader or a list of batches: same weights as a hand-written torch loop,
resume off (no checkpoint) with a one-line warning saying why."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from attnkit.training import TrainConfig, Trainer
from tests.training.tiny import TinyBatch, tiny_model


class Regression(torch.nn.Module):
    config = None

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.linear = torch.nn.Linear(3, 2)

    def training_step(self, batch):
        x, y = batch  # (B, 3), (B, 2)
        return F.mse_loss(self.linear(x), y), {}


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 3, generator=g)
    return x, x @ torch.randn(3, 2, generator=g) + 0.5


def _torch_loop(model, loader, steps, lr):
    """The reference: a plain torch loop with AdamW, cycling the loader (the trainer without clipping/decay)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    done = 0
    while done < steps:
        for x, y in loader:
            opt.zero_grad()
            F.mse_loss(model.linear(x), y).backward()
            opt.step()
            done += 1
            if done == steps:
                break


@pytest.mark.parametrize("as_list", [False, True])
def test_dataloader_or_list_trains_like_a_torch_loop(as_list):
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=False)  # 3 batches per pass: 4, 4, 2
    source = list(loader) if as_list else loader
    cfg = TrainConfig(steps=7, lr=0.05, weight_decay=0.0, clip_norm=None, eval_every=3, progress=False,
                      device="cpu")
    with pytest.warns(UserWarning, match=r"resume is off: train_data \((DataLoader|list)\) has no state_dict"):
        trainer = Trainer(Regression(), cfg, source)
    model = trainer.model
    result = trainer.fit()
    reference = Regression()
    _torch_loop(reference, loader, steps=7, lr=0.05)
    assert result.steps == 7 and result.stop_reason == "steps"
    torch.testing.assert_close(model.linear.weight, reference.linear.weight)
    torch.testing.assert_close(model.linear.bias, reference.linear.bias)


def test_resume_is_off_and_no_checkpoint_is_written(tmp_path):
    batches = [TinyBatch(torch.randint(0, 11, (2, 5)), torch.randint(0, 11, (2, 5))) for _ in range(3)]
    cfg = TrainConfig(steps=4, eval_every=2, progress=False, device="cpu", out_dir=str(tmp_path), resume=True)
    for _ in range(2):  # the second fit, asked to resume, starts fresh: there is no position to resume from
        with pytest.warns(UserWarning, match=r"resume is off: train_data \(list\)"):
            result = Trainer(tiny_model(), cfg, batches).fit()
        assert result.resumed_from is None and result.steps == 4
        assert not (tmp_path / "checkpoint").exists() and (tmp_path / "model" / "config.json").is_file()


def test_one_shot_iterators_and_non_iterables_are_refused():
    x, y = _data()
    with pytest.raises(TypeError, match=r"one-shot iterator \(generator\).*Expected a DataLoader, a list"):
        Trainer(Regression(), TrainConfig(steps=2), ((x, y) for _ in range(3)))
    with pytest.raises(TypeError, match=r"train_data must be iterable.*Received: int"):
        Trainer(Regression(), TrainConfig(steps=2), 3)  # type: ignore[arg-type]
