"""Progress off a terminal (periodic one-line records with an ETA) and the time budget that holds.

References: a fake clock whose ticks are known, so each record's step count, elapsed time and ETA are worked
out by hand; for the budget, the bound the trainer enforces (the run, its last evaluation included, ends
within the budget) and its decisions worked out by hand from given costs.
"""

from __future__ import annotations

import io
import time

import pytest
import torch
from rich.console import Console

from attnkit.recipes.common import PreparedRun
from attnkit.training import TrainConfig
from attnkit.training.budget import TimeBudget
from attnkit.training.progress import TrainProgress, clock
from attnkit.training.trainer import Trainer


def fake_clock(ticks: list[float]):
    it = iter(ticks)
    return lambda: next(it)


def records_of(total: int, ticks: list[float], every: float, evals: dict[int, float] | None = None) -> list[str]:
    console = Console(file=io.StringIO(), width=200)
    bar = TrainProgress(total, console=console, every=every, now=fake_clock(ticks))
    with bar:
        for step in range(1, total + 1):
            bar.advance()
            bar.show({"loss": 1.0 / step})
            if evals and step in evals:
                bar.show_eval({"exact_match": evals[step], "bleu": 3.0}, "exact_match", evals[step])
    return console.file.getvalue().splitlines()


def test_records_off_a_terminal_every_n_seconds_with_an_eta():
    # enter at t=0, one step per second (t=1..7), exit at t=7.5; a record is due every 3 s
    lines = records_of(7, [0.0, 1, 2, 3, 4, 5, 6, 7, 7.5], every=3.0)
    # at t=3: 3 steps in 3 s, 4 left -> eta 4 s (loss of step 2: the record comes before show())
    assert lines[0] == "train 3/7 (43%)  elapsed 0:00:03  eta 0:00:04  loss 0.5000"
    assert lines[1] == "train 6/7 (86%)  elapsed 0:00:06  eta 0:00:01  loss 0.2000"
    assert lines[2] == "train 7/7 (100%)  elapsed 0:00:08  eta 0:00:00  loss 0.1429"  # the closing record
    assert len(lines) == 3


def test_each_evaluation_gets_a_record():
    lines = records_of(4, [0.0, 1, 2, 3, 4, 5], every=100.0, evals={2: 0.5, 4: 0.75})
    assert lines[0] == "eval step 2: exact_match 0.5 (best 0.5)  bleu 3"
    assert lines[1] == "eval step 4: exact_match 0.75 (best 0.75)  bleu 3"
    assert lines[2].startswith("train 4/4 (100%)")


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv("ATTNKIT_PROGRESS_EVERY", "2.5")
    assert TrainProgress(3, console=Console(file=io.StringIO())).every == 2.5


def test_a_terminal_gets_the_live_bar_with_an_eta_and_no_records():
    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    with TrainProgress(5, console=console) as bar:
        for _ in range(5):
            bar.advance()
    text = console.file.getvalue()
    assert "eta" in text and "5/5" in text and "train 5/5 (100%)" not in text


def test_disabled_progress_prints_nothing():
    console = Console(file=io.StringIO())
    with TrainProgress(3, enabled=False, console=console) as bar:
        bar.advance()
        bar.show({"loss": 1.0})
        bar.show_eval({"loss": 1.0}, "loss", 1.0)
    assert console.file.getvalue() == ""


def test_clock():
    assert (clock(0), clock(59.6), clock(3600 + 61)) == ("0:00:00", "0:01:00", "1:01:01")


def test_cli_run_off_a_terminal_prints_records(tmp_path, capsys, monkeypatch):
    from attnkit.cli.main import main

    monkeypatch.setenv("ATTNKIT_PROGRESS_EVERY", "0")
    args = ["train", "seq2seq", "--data", "reverse", "--out", str(tmp_path / "r"), "--steps", "3", "--batch-size",
            "8", "--d-model", "8", "--embed-dim", "4", "--attention-dim", "8", "--train-size", "40",
            "--valid-size", "4", "--eval-every", "2", "--min-len", "2", "--max-len", "4"]
    assert main(args) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split("  ")[0] for line in err if line.startswith("train ")] == \
        ["train 1/3 (33%)", "train 2/3 (67%)", "train 3/3 (100%)"]
    assert sum(line.startswith("eval step ") for line in err) == 2
    assert all("eta " in line for line in err if line.startswith("train "))


# ---------------------------------------------------------------------------------------------- time budget


class Regression(torch.nn.Module):
    config = None

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def training_step(self, batch):
        x, y = batch  # (B, 3), (B,)
        return torch.nn.functional.mse_loss(self.linear(x).squeeze(-1), y), {}


class Stream(list):
    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def slow_evaluate(model) -> dict[str, float]:
    time.sleep(0.6)  # an evaluation that costs far more than a step
    return {"loss": 1.0}


def _trainer(budget: float, started: float | None = None) -> tuple[Trainer, TrainConfig]:
    x = torch.randn(8, 3)
    config = TrainConfig(steps=10**7, eval_every=10**7, progress=False, device="cpu", time_budget=budget)
    return Trainer(Regression(), config, Stream([(x, x.sum(-1))]), evaluate=slow_evaluate, started=started), config


def test_time_budget_holds_counting_the_last_evaluation():
    budget = 3.0  # until an evaluation is timed the trainer keeps 0.75 s for it: enough for this one
    trainer, config = _trainer(budget)
    start = time.perf_counter()
    result = trainer.fit()
    wall = time.perf_counter() - start
    assert result.stop_reason == "time_budget" and result.steps >= 1
    assert wall <= budget + 0.5, wall  # training and the last evaluation in all (0.5 s: slack for a busy machine)
    assert budget - 0.75 - 0.5 <= wall, wall  # and it trained until the reserve was reached
    assert config.time_budget == budget  # nothing changes the trainer's config


def test_time_budget_counts_time_before_fit():
    # 9.5 s of a 10 s budget are gone before training: one step, then the last evaluation, and stop
    trainer, _ = _trainer(10.0, started=time.perf_counter() - 9.5)
    start = time.perf_counter()
    result = trainer.fit()
    assert (result.steps, result.stop_reason) == (1, "time_budget")
    assert time.perf_counter() - start < 0.6 + 0.5


def test_prepared_run_hands_its_start_to_the_trainer():
    x = torch.randn(8, 3)
    config = TrainConfig(steps=10**7, eval_every=10**7, progress=False, device="cpu", time_budget=10.0)
    run = PreparedRun(Regression(), config, Stream([(x, x.sum(-1))]), slow_evaluate, "regression",
                      started=time.perf_counter() - 9.5)
    assert (run.fit().steps, config.time_budget) == (1, 10.0)


def test_time_budget_by_hand():
    # deadline = started + seconds - spent (a resumed run has spent 4 s of its 10)
    assert TimeBudget(10.0, started=100.0, spent=4.0).deadline == 106.0
    b = TimeBudget(10.0, started=0.0)
    assert b.reserve() == 2.5  # FIRST_RESERVE of the budget until an evaluation is timed
    assert (b.out_of_time(7.4), b.out_of_time(7.5)) == (False, True)
    b.step_took(1.0)
    b.step_took(0.5)  # running average: 0.8 * 1.0 + 0.2 * 0.5
    assert b.step == pytest.approx(0.9)
    b.ended(evaluation=2.0, saving=0.3)
    b.ended(evaluation=1.0, saving=0.1)  # the slowest of each is kept
    assert b.reserve() == pytest.approx(1.1 * 2.0 + 0.3)
    assert (b.out_of_time(6.5), b.out_of_time(6.6)) == (False, True)  # 6.6 + 0.9 + 2.5 = 10.0


def test_saving_estimate_is_a_floor_of_the_reserve():
    b = TimeBudget(1e-3, started=0.0)
    b.estimate_saving(torch.nn.Linear(64, 64))
    assert b.saving > 0 and b.reserve() == max(0.25e-3, b.saving)
