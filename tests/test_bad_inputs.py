"""The bad-input battery: malformed inputs across the Python API, the CLI and files, one table each.

Every CLI case asserts the exit code (2: bad input, 1: runtime failure), that the one-line message names
the problem, that no traceback is printed, and that no existing file in the workspace changed (bytes and
modification times compared). Every API case asserts the exception type and that its message names the
problem. The first cases are the regressions of issue 11 ("found when tried").
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import attnkit.functional as AF
from attnkit.cli.main import main
from attnkit.errors import CheckpointError, InputError
from attnkit.io import load
from attnkit.layers import MultiHeadAttention
from attnkit.training import TrainConfig, load_checkpoint

TINY = ["--steps", "2", "--batch-size", "8", "--embed-dim", "4", "--attention-dim", "8", "--d-model", "8",
        "--train-size", "32", "--valid-size", "4", "--eval-every", "2", "--quiet", "--device", "cpu"]
TRAIN = ["train", "seq2seq", "--data", "reverse", "--max-len", "5", *TINY]


def _run(args: list[str | Path]) -> int:
    return main([str(a) for a in args])


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace: a finished run, a copy of its model to damage, a folder of the user's, data files."""
    root = tmp_path_factory.mktemp("ws")
    assert _run([*TRAIN, "--out", root / "run"]) == 0
    (root / "mine" / "model").mkdir(parents=True)                      # e.g. an `attnkit demo` output
    (root / "mine" / "notes.txt").write_text("my notes\n")
    (root / "afile").write_text("not a directory\n")
    files = {
        "notab.tsv": "abc\tcba\nno tab on this line\n",
        "latin1.tsv": "caf\xe9\tcoffee\n".encode("latin-1"),
        "binary.tsv": bytes(range(256)) * 4,
        "empty.tsv": "",
        "long.tsv": "abc\tcba\n" + "x" * 5000 + "\ty\n",
        "notutf8.txt": b"\xff\xfe\x00bad\n",
    }
    for name, content in files.items():
        (root / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    for name, damage in [("badjson", lambda d: (d / "config.json").write_text("{not json")),
                         ("badheader", lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 8 + b"{}junk")),
                         ("truncated", lambda d: _truncate(d / "model.safetensors")),
                         ("notype", lambda d: _edit_config(d, lambda m: m.pop("model_type"))),
                         ("wrongtype", lambda d: _edit_config(d, lambda m: m.update(model_type="gpt2"))),
                         ("hugevocab", lambda d: _edit_config(d, lambda m: m["config"].update(src_vocab_size=10**6))),
                         ("notokenizer", lambda d: (d / "tokenizer_source.json").unlink()),
                         ("noweights", lambda d: (d / "model.safetensors").unlink())]:
        shutil.copytree(root / "run" / "model", root / "models" / name)
        damage(root / "models" / name)
    return root


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_config(directory: Path, change: Callable[[dict], object]) -> None:
    meta = json.loads((directory / "config.json").read_text())
    change(meta)
    (directory / "config.json").write_text(json.dumps(meta))


# (id, arguments with {ws} for the workspace, exit code, text the message must contain)
CLI_CASES = [
    # -- issue 11, found when tried --------------------------------------------------------------------------
    ("out-holds-a-users-folder", [*TRAIN, "--out", "{ws}/mine"], 2, "is not empty (it holds model/, notes.txt)"),
    ("out-holds-a-run", [*TRAIN, "--out", "{ws}/run"], 2, "already holds a run; pass --resume"),
    ("out-is-a-file", [*TRAIN, "--out", "{ws}/afile"], 2, "is a file"),
    ("out-under-a-file", [*TRAIN, "--out", "{ws}/afile/run"], 2, "is a file, not a directory"),
    ("device-cuda-without-cuda", [*TRAIN, "--out", "{ws}/new", "--device", "cuda"], 2, "--device cuda"),
    ("lr-inf", [*TRAIN, "--out", "{ws}/new", "--lr", "inf"], 2, "--lr must be a finite number > 0. Received: inf"),
    ("lr-nan", [*TRAIN, "--out", "{ws}/new", "--lr", "nan"], 2, "--lr must be a finite number > 0. Received: nan"),
    ("resume-other-model-options", [*TRAIN, "--out", "{ws}/run", "--resume", "--d-model", "16"], 2,
     "--d-model 16 (the run has 8)"),
    ("huge-vocab-config", ["translate", "{ws}/models/hugevocab", "abc"], 2, "describes"),
    ("tsv-line-too-long", [*TRAIN[:2], "--data", "{ws}/long.tsv", *TINY, "--out", "{ws}/new"], 2,
     "line 2: malformed line (source of 5000 characters, longer than the limit of 1000)"),
    # -- absurd options ----------------------------------------------------------------------------------------
    ("steps-negative", [*TRAIN, "--out", "{ws}/new", "--steps", "-1"], 2, "--steps must be >= 1. Received: -1"),
    ("steps-zero", [*TRAIN, "--out", "{ws}/new", "--steps", "0"], 2, "--steps must be >= 1"),
    ("lr-negative", [*TRAIN, "--out", "{ws}/new", "--lr", "-0.1"], 2, "--lr must be a finite number > 0"),
    ("batch-size-zero", [*TRAIN, "--out", "{ws}/new", "--batch-size", "0"], 2, "batch"),
    ("eval-every-zero", [*TRAIN, "--out", "{ws}/new", "--eval-every", "0"], 2, "--eval-every must be >= 1"),
    ("patience-zero", [*TRAIN, "--out", "{ws}/new", "--patience", "0"], 2, "--patience must be >= 1"),
    ("time-budget-nan", [*TRAIN, "--out", "{ws}/new", "--time-budget", "nan"], 2, "--time-budget must be"),
    ("warmup-negative", [*TRAIN, "--out", "{ws}/new", "--warmup", "-5"], 2, "--warmup must be >= 0"),
    ("threads-negative", [*TRAIN, "--out", "{ws}/new", "--threads", "-2"], 2, "--threads must be >= 0"),
    ("device-unknown", [*TRAIN, "--out", "{ws}/new", "--device", "tpu"], 2, "unknown device"),
    ("steps-not-a-number", [*TRAIN, "--out", "{ws}/new", "--steps", "many"], 2, "Invalid value for '--steps'"),
    ("unknown-option", [*TRAIN, "--out", "{ws}/new", "--colour", "red"], 2, "--colour"),
    ("unknown-task", [*TRAIN[:2], "--data", "nosuchtask", *TINY, "--out", "{ws}/new"], 2, "nosuchtask"),
    ("on-error-unknown", [*TRAIN, "--out", "{ws}/new", "--on-error", "ignore"], 2, "--on-error must be"),
    ("resume-and-overwrite", [*TRAIN, "--out", "{ws}/run", "--resume", "--overwrite"], 2, "Expected one of them"),
    ("resume-without-a-run", [*TRAIN, "--out", "{ws}/mine", "--resume"], 2, "has no checkpoint/ to resume from"),
    ("unwritable-out", [*TRAIN, "--out", "/sys/attnkit-run"], 2, "cannot write in '/sys'"),
    # -- malformed files ---------------------------------------------------------------------------------------
    ("tsv-without-tab", [*TRAIN[:2], "--data", "{ws}/notab.tsv", *TINY, "--out", "{ws}/new"], 2, "line 2"),
    ("tsv-not-utf8", [*TRAIN[:2], "--data", "{ws}/latin1.tsv", *TINY, "--out", "{ws}/new"], 2, "not valid UTF-8"),
    ("tsv-binary", [*TRAIN[:2], "--data", "{ws}/binary.tsv", *TINY, "--out", "{ws}/new"], 2, "not valid UTF-8"),
    ("tsv-empty", [*TRAIN[:2], "--data", "{ws}/empty.tsv", *TINY, "--out", "{ws}/new"], 2, "no 'source<TAB>target'"),
    ("data-is-a-directory", [*TRAIN[:2], "--data", "{ws}/mine", *TINY, "--out", "{ws}/new"], 2, "mine"),
    ("model-dir-missing", ["translate", "{ws}/nothing", "abc"], 2, "does not exist"),
    ("config-invalid-json", ["translate", "{ws}/models/badjson", "abc"], 2, "is not valid JSON"),
    ("safetensors-bad-header", ["translate", "{ws}/models/badheader", "abc"], 2, "cannot read weights"),
    ("safetensors-truncated", ["translate", "{ws}/models/truncated", "abc"], 2, "cannot read weights"),
    ("config-without-model-type", ["translate", "{ws}/models/notype", "abc"], 2, "string 'model_type'"),
    ("config-of-another-model-type", ["translate", "{ws}/models/wrongtype", "abc"], 2, "'gpt2'"),
    ("tokenizer-missing", ["translate", "{ws}/models/notokenizer", "abc"], 2, "tokenizer"),
    ("weights-missing", ["translate", "{ws}/models/noweights", "abc"], 2, "model.safetensors is missing"),
    ("translate-file-not-utf8", ["translate", "{ws}/run", "--file", "{ws}/notutf8.txt"], 2, "notutf8.txt"),
    ("translate-beam-zero", ["translate", "{ws}/run", "abc", "--beam", "0"], 2, "--beam must be >= 1"),
    ("evaluate-unknown-split", ["evaluate", "{ws}/run", "--split", "dev"], 2, "dev"),
    ("generate-with-a-seq2seq", ["generate", "{ws}/run", "abc"], 2, "not a GPT"),
    # -- inputs the model never saw: answered with a note, not an error ---------------------------------------
    ("unknown-characters", ["translate", "{ws}/run", "☃☃ abc", "--no-heatmap"], 0, "outside the vocabulary"),
    ("input-too-long", ["translate", "{ws}/run", "a" * 600, "--no-heatmap"], 0, "truncated"),
]


@pytest.mark.parametrize(("case", "args", "code", "message"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(ws, capsys, case, args, code, message):
    before = _snapshot(ws)
    got = _run([a.replace("{ws}", str(ws)) if isinstance(a, str) else a for a in args])
    err = capsys.readouterr().err
    assert got == code, err
    assert message in " ".join(err.split()), err
    assert "Traceback" not in err
    if code:
        assert err.strip().splitlines()[-1].startswith("attnkit: error:") and len(err.strip().splitlines()) <= 3
        assert not (ws / "new").exists()
    assert _snapshot(ws) == before, f"{case} changed a file"


def test_full_disk_while_saving_exits_1_and_keeps_the_old_checkpoint(ws, capsys, monkeypatch):
    """A disk that fills up while the resumed run saves: exit 1 naming the file, the old checkpoint intact."""
    import attnkit.storage.state as state_module

    shutil.copytree(ws / "run", ws / "full")
    before = _snapshot(ws)

    def no_space(tensors, path, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(state_module, "write_safetensors", no_space)
    code = _run([*TRAIN, "--out", ws / "full", "--resume", "--steps", "4"])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and "optimizer" in err and "Traceback" not in err
    monkeypatch.undo()
    after = _snapshot(ws)
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert all(k.startswith("full/") and not k.startswith("full/checkpoint/") for k in changed), changed
    assert load_checkpoint(ws / "full" / "checkpoint").step == 2
    shutil.rmtree(ws / "full")


def test_checkpoint_interrupted_between_its_renames_is_resumed_by_the_cli(ws, capsys):
    """Issue 11: the CLI's --resume check ran before the recovery; now the older checkpoint is put back."""
    shutil.copytree(ws / "run", ws / "cut")
    os.replace(ws / "cut" / "checkpoint", ws / "cut" / ".checkpoint.old-0badc0de")  # killed between renames
    assert _run([*TRAIN, "--out", ws / "cut", "--resume", "--steps", "4"]) == 0
    assert load_checkpoint(ws / "cut" / "checkpoint").step == 4
    shutil.rmtree(ws / "cut")


def test_overwrite_replaces_only_the_run_files(ws, capsys):
    shutil.copytree(ws / "mine", ws / "mine2")
    assert _run([*TRAIN, "--out", ws / "mine2", "--overwrite"]) == 0
    assert (ws / "mine2" / "notes.txt").read_text() == "my notes\n"
    assert (ws / "mine2" / "model" / "config.json").is_file() and (ws / "mine2" / "run.json").is_file()
    shutil.rmtree(ws / "mine2")


def test_ctrl_c_during_training_exits_130_without_traceback(ws, capsys, monkeypatch):
    """Issue 11: typer turned Ctrl-C into a return value the CLI dropped (exit 0)."""
    from attnkit.training.trainer import Trainer

    def interrupted(self, run):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_train_step", interrupted)
    assert _run([*TRAIN, "--out", ws / "stopped"]) == 130
    err = capsys.readouterr().err
    assert "attnkit: error: interrupted" in err and "Traceback" not in err
    shutil.rmtree(ws / "stopped", ignore_errors=True)


def test_ctrl_c_during_start_up_exits_130_without_traceback(ws, capsys, monkeypatch):
    """Ctrl-C while the data and the model are being prepared: exit 130, one line, nothing written."""
    import attnkit.cli.seq2seq as command

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "prepare_seq2seq", interrupted)
    assert _run([*TRAIN, "--out", ws / "stopped"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "attnkit: error: interrupted" and not (ws / "stopped").exists()


def test_ctrl_c_while_torch_loads_exits_130_without_traceback():
    """The console script imports ``attnkit.cli.main`` outside main()'s handlers: that import must not load
    torch (``attnkit`` loads its parts lazily), so Ctrl-C during the slow import lands inside main()."""
    import subprocess
    import sys

    code = ("import builtins, sys\n"
            "import attnkit.cli.main as m\n"
            "assert 'torch' not in sys.modules, 'torch loaded by the import'\n"
            "real = builtins.__import__\n"
            "def ctrl_c_in_torch(name, *a, **k):  # Ctrl-C pressed while torch is being imported\n"
            "    if name == 'torch' or name.startswith('torch.'):\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = ctrl_c_in_torch\n"
            "sys.exit(m.main(['train', 'gpt', '--help']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "attnkit: error: interrupted"


# ----------------------------------------------------------------------------------------------------------
# The Python API and files read by it
# ----------------------------------------------------------------------------------------------------------

Q = torch.randn(2, 3, 4)


def _pickle_with_code_payload(ws: Path) -> Path:
    """A run's checkpoint whose optimiser file is a pickle that would run code when unpickled."""
    d = ws / "evil"
    shutil.copytree(ws / "run" / "checkpoint", d, dirs_exist_ok=True)
    for f in ("optimizer.safetensors", "optimizer.json"):
        (d / f).unlink()

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {ws / 'PWNED'}",))

    torch.save({"state": Payload()}, d / "optimizer.pt")
    return d


API_CASES = [
    ("attention-width-mismatch", lambda ws: AF.attention(Q, torch.randn(2, 5, 6), torch.randn(2, 5, 6)),
     ValueError, "same last dim"),
    ("attention-integer-dtype", lambda ws: AF.attention(Q.long(), Q.long(), Q.long()), TypeError,
     "floating-point"),
    ("attention-float-mask", lambda ws: AF.attention(Q, Q, Q, mask=torch.ones(3, 3)), TypeError, "boolean"),
    ("attention-mismatched-devices", lambda ws: AF.attention(Q, torch.randn(2, 3, 4, device="meta"), Q),
     RuntimeError, "device"),
    ("multi-head-mixed-dtypes", lambda ws: MultiHeadAttention(num_heads=2, key_dim=4)(
        torch.randn(2, 3, 8), torch.randn(2, 3, 8, dtype=torch.float64)), RuntimeError, "dtype"),
    ("train-config-nan-lr", lambda ws: TrainConfig(lr=float("nan")), ValueError, "TrainConfig.lr"),
    ("train-config-negative-steps", lambda ws: TrainConfig(steps=-1), ValueError, "TrainConfig.steps"),
    ("load-missing-dir", lambda ws: load(ws / "nothing"), CheckpointError, "does not exist"),
    ("load-huge-vocab", lambda ws: load(ws / "models" / "hugevocab"), CheckpointError, "parameters"),
    ("load-truncated-weights", lambda ws: load(ws / "models" / "truncated"), CheckpointError, "cannot read"),
    ("checkpoint-missing", lambda ws: load_checkpoint(ws / "mine"), CheckpointError, "incomplete"),
    ("checkpoint-pickle-with-code", lambda ws: load_checkpoint(_pickle_with_code_payload(ws)), CheckpointError,
     "cannot read"),
    ("translate-empty-text", lambda ws: load(ws / "run" / "model").translate([""]), None, None),
    # silent traps of the attention API (issue 23): refused with the right spelling, warned, or bounded
    ("attention-padding-mask-as-pair-mask", lambda ws: AF.attention(
        torch.randn(4, 4, 8), torch.randn(4, 7, 8), torch.randn(4, 7, 8), mask=torch.ones(4, 7, dtype=torch.bool)),
     ValueError, "mask=pad[:, None, :]"),
    ("attention-padding-mask-over-heads", lambda ws: AF.attention(
        torch.randn(4, 2, 5, 8), torch.randn(4, 2, 7, 8), torch.randn(4, 2, 7, 8),
        mask=torch.ones(4, 7, dtype=torch.bool)), ValueError, "mask=pad[:, None, None, :]"),
    ("multi-head-padding-mask-as-attention-mask", lambda ws: MultiHeadAttention(num_heads=2, key_dim=4)(
        torch.randn(4, 4, 8), torch.randn(4, 7, 8), attention_mask=torch.ones(4, 7, dtype=torch.bool)),
     ValueError, "value_mask=pad"),
    ("multi-head-torch-key-padding-mask", lambda ws: MultiHeadAttention(num_heads=2, key_dim=4)(
        torch.randn(2, 3, 8), torch.randn(2, 5, 8), value_mask=torch.tensor([[False] * 5, [False] * 3 + [True] * 2])),
     UserWarning, "value_mask=~key_padding_mask"),
    ("attention-nan-query-row", lambda ws: _nan_only_in_row(AF.attention(  # the fused path keeps SDPA's answer
        torch.randn(2, 3, 4).index_fill(1, torch.tensor([1]), float("nan")), Q, Q, return_weights=True)[0], 1),
     None, None),
    ("attention-window-past-the-input", lambda ws: AF.attention(
        Q, Q, Q, kind="sliding_window", window=10 ** 8), None, None),
    ("attention-block-past-the-input", lambda ws: AF.attention(
        Q, Q, Q, kind=AF.BlockSparseAttention(block_size=10 ** 8)), None, None),
]


def _nan_only_in_row(out: torch.Tensor, row: int) -> None:
    """The answer to a NaN query row: NaN in that row, and only there (as on every path)."""
    nan = torch.isnan(out).any(-1)  # (B, Tq)
    assert nan[:, row].all() and int(nan.sum()) == out.shape[0]


@pytest.mark.parametrize(("case", "call", "error", "message"), API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input(ws, case, call, error, message):
    before = {k: v for k, v in _snapshot(ws).items() if not k.startswith("evil/")}
    if error is None:  # answered, not refused
        call(ws)
    elif issubclass(error, Warning):  # answered, with a warning that names the likely mistake and the fix
        with pytest.warns(error, match=None) as seen:
            call(ws)
        assert any(message in str(w.message) for w in seen)
    else:
        with pytest.raises(error) as info:
            call(ws)
        assert message in str(info.value)
    assert not (ws / "PWNED").exists()  # nothing from a checkpoint ever ran
    assert {k: v for k, v in _snapshot(ws).items() if not k.startswith("evil/")} == before


def test_battery_size():
    assert len(CLI_CASES) + len(API_CASES) + 5 >= 40
    assert isinstance(InputError("x"), ValueError)
