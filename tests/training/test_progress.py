"""Progress off a terminal (periodic one-line records with an ETA) and the time budget that holds.

References: a fake clock whose ticks are known, so each record's step count, elapsed time and ETA are worked
out by hand; for the budget, the bound the guard enforces (the run, its last evaluation included, ends
within the budget), next to the same run without the guard, which overruns by an evaluation.
"""

from __future__ import annotations

import io
import time

import pytest
import torch
from rich.console import Console

from attnkit.recipes.common import BudgetGuard, PreparedRun
from attnkit.training import TrainConfig
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


def _run(budget: float) -> tuple[PreparedRun, TrainConfig]:
    x = torch.randn(8, 3)
    config = TrainConfig(steps=10**7, eval_every=10**7, progress=False, device="cpu", time_budget=budget)
    return PreparedRun(Regression(), config, Stream([(x, x.sum(-1))]), slow_evaluate, "regression"), config


def test_time_budget_holds_counting_the_last_evaluation():
    budget = 3.0  # until an evaluation is timed the guard keeps 0.75 s for it: enough for this one
    run, config = _run(budget)
    start = time.perf_counter()
    result = run.fit()
    wall = time.perf_counter() - start
    assert result.stop_reason == "time_budget" and result.steps >= 1
    assert wall <= budget + 0.5, wall  # training and the last evaluation in all (0.5 s: slack for a busy machine)
    assert config.time_budget == budget  # the caller's config is left alone
    # the same run with the trainer alone overruns by the last evaluation: what the guard is for
    plain, _ = _run(budget)
    start = time.perf_counter()
    Trainer(plain.model, plain.config, plain.stream, evaluate=slow_evaluate).fit()
    assert time.perf_counter() - start >= budget + 0.6


def test_budget_guard_counts_time_before_fit():
    guard = BudgetGuard(TrainConfig(time_budget=10.0), started=time.perf_counter() - 9.5)
    guard.eval_cost, guard.evaluated = 1.0, True  # an evaluation no longer fits in the 0.5 s left
    guard.before_step()
    assert guard.config.time_budget < 1e-6
    roomy = BudgetGuard(TrainConfig(time_budget=10.0))
    roomy.before_step()
    assert roomy.config.time_budget == 10.0
    early = BudgetGuard(TrainConfig(time_budget=10.0), started=time.perf_counter() - 7.6)
    early.before_step()  # no evaluation timed yet: a quarter of the budget (2.5 s) is kept for it
    assert early.config.time_budget < 1e-6


@pytest.mark.parametrize("world, stream", [("1", "_GuardedStream"), ("2", "Stream")])
def test_the_guard_only_in_one_process(world, stream, monkeypatch):
    # several processes: the trainer's own (rank 0, broadcast) budget check only, every rank the same
    monkeypatch.setenv("WORLD_SIZE", world)
    run, _ = _run(60.0)
    monkeypatch.setattr("attnkit.recipes.common.Trainer.fit", lambda self: type(self.train_data).__name__)
    assert run.fit() == stream
