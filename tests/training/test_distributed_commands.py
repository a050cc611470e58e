"""Every ``attnkit train`` command under 2 processes equals 1 process, on epochs that do not divide evenly,
and only rank 0 writes or prints.

One row per command: 2 ranks with ``--batch-size 4`` (gloo on CPU, launched here with the environment
``torchrun`` sets) against 1 process with ``--batch-size 8``, on a data size whose epoch ends with a
smaller batch (the row counts each run trained on are recorded and checked: some batch is split unevenly
or leaves rank 1 with no row at all). Checked for each command:

- the final weights (``checkpoint/model.safetensors``) agree with the one-process run: to 1e-8 in float64
  (the default dtype is set to float64 in every process; reached: 1e-15 to 3e-10, what is left is the order
  of float sums: DDP adds the ranks' gradients, one process adds rows, and Adam divides by sqrt(v), which
  enlarges the rounding of gradients near 0). The captioner casts its image features to float32, so it runs
  in float32: 1e-4 there (reached: 2.6e-5; float32 rounding of the same sums, ~1e-7 relative per step,
  enlarged by Adam the same way);
- rank 1 wrote nothing in ``--out`` (an audit hook records every open for writing, rename, mkdir, remove
  in that process) and the directory holds the same names as the one-process run's;
- rank 1 printed nothing (its stdout and stderr are captured), rank 0 printed the results.

``train bert`` is checked for the last two only: its loss adds a mean over masked tokens and a mean over
sentence pairs, which one weight per rank cannot both make exact.

Dropout is 0 and the captioner's doubly stochastic penalty too: dropout masks are drawn per process, and the
penalty is a mean over images while the rank weighting counts words. The captioner uses the frozen,
pretrained EfficientNet-Lite0 (its features are computed once): ``small-cnn`` trains BatchNorm layers, whose
batch statistics are each rank's own rows under DDP, as dropout masks are.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

import attnkit.training.rank_split as rank_split
from attnkit.cli.main import main
from tests.training.ranks import free_port, run_ranks

PER_RANK, WORLD = 4, 2
DEADLINE = 150.0  # seconds for both ranks together (start-up included); a stuck rank fails the test
COMMON = ["--steps", "6", "--eval-every", "3", "--lr", "0.01", "--warmup", "2", "--quiet", "--device", "cpu", "--threads", "1", "--dropout", "0"]
WORDS = "the quick brown fox jumps over lazy dog a cat sat on mat".split()


def _commands(data: Path) -> dict[str, tuple[list[str], torch.dtype, float | None]]:
    """command -> (arguments without --out / --batch-size, dtype, tolerance on the weights)."""
    f64, f32 = torch.float64, torch.float32
    return {
        "seq2seq": (["train", "seq2seq", "--data", "reverse", "--max-len", "6", "--train-size", "33",  # 8 8 8 8 1
                     "--valid-size", "8", "--embed-dim", "8", "--attention-dim", "8", "--d-model", "8"], f64, 1e-8),
        "transformer": (["train", "transformer", "--data", "reverse", "--max-len", "5", "--min-len", "2",  # 8 8 5
                         "--train-size", "21", "--valid-size", "8", "--d-model", "8", "--heads", "2", "--layers", "1",
                         "--ff-dim", "16"], f64, 1e-8),
        "gpt": (["train", "gpt", "--data", str(data / "text.txt"), "--layers", "1", "--heads", "2", "--d-model", "16",
                 "--block-size", "16", "--vocab-size", "280"], f64, 1e-8),
        "classifier": (["train", "classifier", "--data", str(data / "news.csv"), "--min-frequency", "1",
                        "--embed-dim", "8", "--d-model", "8", "--ff-dim", "8", "--max-len", "12"], f64, 1e-8),
        "captioner": (["train", "captioner", "--data", "scenes", "--encoder", "efficientnet-lite0", "--image-size", "32",
                       "--d-model", "16", "--embed-dim", "8", "--train-size", "9", "--valid-size", "4",  # 8 1
                       "--test-size", "4", "--penalty", "0"], f32, 3e-4),
        # float32 features of real photographs: Adam turns float noise in near-zero gradients into steps of
        # about lr; measured 1.2e-4 on one weight of |w| 0.09 while the optimizer states agree to 5e-6
        # BERT's loss is a mean over masked tokens plus a mean over pairs: one weight per rank cannot make both
        # exact, so only the writes and prints are checked (tolerance None)
        "bert": (["train", "bert", "--data", str(data / "sentences.txt"), "--layers", "1", "--heads", "2",
                  "--d-model", "16", "--max-len", "16", "--vocab-size", "120"], f32, None),
    }


RESULTS = {"seq2seq": "done:", "transformer": "done:", "gpt": "done:", "classifier": "test accuracy",
           "captioner": "held-out test scenes", "bert": "done:"}
"""A line of results rank 0 prints (and rank 1 must not)."""


def _write_data(root: Path) -> Path:
    rng = random.Random(0)
    (root / "text.txt").write_text(" ".join(rng.choice(WORDS) for _ in range(160)) + "\n", encoding="utf-8")
    rows = [f"{' '.join(rng.choice(WORDS) for _ in range(6))},{'ab'[i % 2]}" for i in range(27)]
    lines = [" ".join(rng.choice(WORDS) for _ in range(5)) + "." + ("\n" if i % 8 == 7 else "") for i in range(40)]
    (root / "sentences.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "news.csv").write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return root


# ----------------------------------------------------------------------------------------------------------
# what a rank writes: every write-like event of the process (python's audit hooks)
# ----------------------------------------------------------------------------------------------------------

WRITE_EVENTS = {"os.rename", "os.mkdir", "os.remove", "os.rmdir", "os.symlink", "os.link", "shutil.rmtree",
                "os.truncate", "os.chmod", "os.utime", "shutil.move", "shutil.copyfile"}


def _paths(args: tuple) -> list[str]:
    out = []
    for a in args:
        if isinstance(a, (str, bytes, os.PathLike)):
            out.append(os.path.abspath(os.fsdecode(a)))
    return out


def _watch_writes(root: str, seen: list[str]):
    """An audit hook recording ``event path`` for every write under ``root``."""

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if not writing or not isinstance(path, (str, bytes, os.PathLike)):
                return
            names = _paths((path,))
        elif event in WRITE_EVENTS:
            names = _paths(args)
        else:
            return
        seen.extend(f"{event} {n}" for n in names if n == root or n.startswith(root + os.sep))

    return hook


# ----------------------------------------------------------------------------------------------------------
# the two ranks
# ----------------------------------------------------------------------------------------------------------


def _rank(rank: int, port: int, args: list[str], dtype: torch.dtype, out: str, report: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), ATTNKIT_DIST_TIMEOUT=os.environ.get("ATTNKIT_DIST_TIMEOUT", "120"))
    torch.set_num_threads(1)
    torch.set_default_dtype(dtype)
    writes: list[str] = []
    sys.addaudithook(_watch_writes(os.path.abspath(out), writes))
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main([*args, "--batch-size", str(PER_RANK), "--out", out])
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    Path(report, f"rank{rank}.json").write_text(json.dumps({"code": code, "stdout": stdout.getvalue(),
                                                            "stderr": stderr.getvalue(), "writes": writes}))


def _two_ranks(args: list[str], dtype: torch.dtype, out: Path, report: Path) -> list[dict]:
    report.mkdir()
    run_ranks(_rank, (free_port(), args, dtype, str(out), str(report)), nprocs=WORLD, deadline=DEADLINE)
    return [json.loads((report / f"rank{r}.json").read_text()) for r in range(WORLD)]


def _one_process(args: list[str], dtype: torch.dtype, out: Path, monkeypatch) -> list[int]:
    """Train in this process with the global batch; returns the row count of every batch it trained on."""
    rows: list[int] = []
    split = rank_split.split_for_rank

    def recording(batch, rank, world_size):
        rows.append(rank_split.batch_rows(batch))
        return split(batch, rank, world_size)

    monkeypatch.setattr(rank_split, "split_for_rank", recording)
    threads, default = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(1)  # as the ranks: the same kernels
    torch.set_default_dtype(dtype)
    try:
        assert main([*args, "--batch-size", str(PER_RANK * WORLD), "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
        torch.set_default_dtype(default)
    return rows


pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="needs torch.distributed with gloo")


@pytest.mark.parametrize("command", ["seq2seq", "transformer", "gpt", "classifier", "captioner", "bert"])
def test_two_processes_equal_one_on_a_ragged_epoch_and_only_rank_0_writes_or_prints(command, tmp_path,
                                                                                     monkeypatch):
    args, dtype, tol = _commands(_write_data(tmp_path))[command]
    args = [*args, *COMMON]
    rows = _one_process(args, dtype, tmp_path / "one", monkeypatch)
    ranks = _two_ranks(args, dtype, tmp_path / "two", tmp_path / "ranks")

    # the data does not divide evenly: some batch is smaller than 8 rows and splits unevenly (or not at all)
    global_batch = PER_RANK * WORLD
    assert any(r < global_batch and r % WORLD for r in rows), f"no ragged batch among {rows}"

    assert [r["code"] for r in ranks] == [0, 0], ranks
    assert ranks[1]["stdout"] == "" and ranks[1]["stderr"] == "", ranks[1]  # rank 1 prints nothing
    assert RESULTS[command] in ranks[0]["stderr"], ranks[0]
    assert ranks[1]["writes"] == [], ranks[1]["writes"]  # rank 1 writes nothing in --out
    assert ranks[0]["writes"], "the audit hook saw no write of rank 0"  # the hook does see writes
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())

    two = load_file(str(tmp_path / "two" / "checkpoint" / "model.safetensors"))
    one = load_file(str(tmp_path / "one" / "checkpoint" / "model.safetensors"))
    assert two.keys() == one.keys() and all(v.dtype == dtype for v in one.values() if v.is_floating_point())
    if tol is None:
        return
    worst = max(float((two[k].double() - one[k].double()).abs().max()) for k in one)
    print(f"{command}: largest weight difference 2 x {PER_RANK} vs 1 x {global_batch}: {worst:.3g} (rows {rows})")
    assert worst <= tol, f"{command}: largest weight difference {worst:.3g} > {tol}"
