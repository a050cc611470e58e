"""attnkit.storage: atomic files and directories, recovery, config JSON, safetensors checks, the registry."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
import torch
from safetensors.torch import save_file

import attnkit.storage as storage
from attnkit.errors import CheckpointError
from attnkit.storage import (
    atomic_directory,
    atomic_file,
    atomic_write_bytes,
    atomic_write_text,
    check_state_dict,
    config_from_dict,
    config_to_dict,
    read_json,
    read_model_config,
    read_safetensors,
    recover_directory,
    register_model,
    split_shared,
    write_json,
)


def _names(directory):
    return sorted(p.name for p in directory.iterdir())


# ---------------------------------------------------------------------------------------------- files


def test_failed_file_write_keeps_the_old_content_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_file(path) as f:
            f.write("new, half")
            assert path.read_text() == "old"          # the new text is not visible while writing
            raise RuntimeError("killed")
    assert path.read_text() == "old" and _names(tmp_path) == ["a.txt"]


def test_failed_first_write_creates_nothing(tmp_path):
    with pytest.raises(OSError):
        with atomic_file(tmp_path / "sub" / "b.bin", "wb") as f:
            f.write(b"\x00")
            raise OSError("disk full")
    assert _names(tmp_path / "sub") == []


def test_bytes_text_and_json_round_trip(tmp_path):
    atomic_write_bytes(tmp_path / "x.bin", bytes(range(7)))
    atomic_write_text(tmp_path / "deep" / "x.txt", "ünïcode\n")
    write_json(tmp_path / "x.json", {"b": [1, 2], "a": None}, sort_keys=True)
    assert (tmp_path / "x.bin").read_bytes() == bytes(range(7))
    assert (tmp_path / "deep" / "x.txt").read_text(encoding="utf-8") == "ünïcode\n"
    assert (tmp_path / "x.json").read_text() == '{\n  "a": null,\n  "b": [\n    1,\n    2\n  ]\n}\n'
    assert read_json(tmp_path / "x.json") == {"a": None, "b": [1, 2]}


def test_bad_mode_and_bad_json_are_named(tmp_path):
    with pytest.raises(ValueError, match="Expected mode 'w' or 'wb'. Received: 'a'"):
        with atomic_file(tmp_path / "x", "a"):
            pass
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(CheckpointError, match="bad.json is not valid JSON"):
        read_json(tmp_path / "bad.json")


# ---------------------------------------------------------------------------------------------- directories


def test_directory_is_replaced_only_when_complete(tmp_path):
    target = tmp_path / "d"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text("new, half")
            raise RuntimeError("killed")
    assert (target / "a.txt").read_text() == "old" and _names(tmp_path) == ["d"]
    with atomic_directory(target) as tmp:
        (tmp / "b.txt").write_text("new")
    assert _names(target) == ["b.txt"] and _names(tmp_path) == ["d"]


def test_keep_others_replaces_files_one_by_one(tmp_path):
    target = tmp_path / "hf"
    target.mkdir()
    (target / "README.md").write_text("mine")
    (target / "config.json").write_text("old")
    with atomic_directory(target, keep_others=True) as tmp:
        (tmp / "config.json").write_text("new")
    assert _names(target) == ["README.md", "config.json"] and (target / "config.json").read_text() == "new"
    assert _names(tmp_path) == ["hf"]
    with atomic_directory(tmp_path / "fresh", keep_others=True) as tmp:  # no directory yet: renamed in whole
        (tmp / "a").write_text("1")
    assert _names(tmp_path / "fresh") == ["a"]


def test_a_file_in_the_way_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="Expected a directory path. Received: .*is a file"):
        with atomic_directory(tmp_path / "f"):
            pass
    assert (tmp_path / "f").read_text() == "x"


def test_kill_between_the_renames_is_recovered_and_stale_directories_removed(tmp_path):
    target = tmp_path / "ckpt"
    # what a kill leaves right after "old -> .ckpt.old-*" and before "tmp -> ckpt"
    (tmp_path / ".ckpt.old-0001").mkdir()
    (tmp_path / ".ckpt.old-0001" / "state.json").write_text("complete")
    (tmp_path / ".ckpt.tmp-0002").mkdir()
    assert recover_directory(target) is True
    assert (target / "state.json").read_text() == "complete"
    assert recover_directory(target) is False               # nothing to do once it exists
    with atomic_directory(target) as tmp:
        (tmp / "state.json").write_text("next")
    assert _names(tmp_path) == ["ckpt"] and (target / "state.json").read_text() == "next"


def test_recover_without_old_directory_does_nothing(tmp_path):
    assert recover_directory(tmp_path / "none") is False
    assert _names(tmp_path) == []


# ---------------------------------------------------------------------------------------------- config JSON


@dataclass
class Inner:
    sizes: tuple[int, ...] = (1, 2)


@dataclass
class Outer:
    width: int = 8
    inner: Inner = field(default_factory=Inner)
    pair: tuple = (3, 4)
    name: str | None = None


def test_config_round_trips_through_json_with_tuples_and_nesting(tmp_path):
    cfg = Outer(width=5, inner=Inner(sizes=(7, 8, 9)), pair=(0, 1), name="x")
    write_json(tmp_path / "c.json", config_to_dict(cfg))
    assert config_from_dict(Outer, read_json(tmp_path / "c.json")) == cfg
    assert config_from_dict(Outer, {"width": 2}) == Outer(width=2)    # missing fields: defaults


def test_config_errors_name_the_problem():
    with pytest.raises(CheckpointError, match=r"does not know: \['depth'\]"):
        config_from_dict(Outer, {"depth": 3})
    with pytest.raises(CheckpointError, match="must be a JSON object. Received: list"):
        config_from_dict(Outer, [1])
    with pytest.raises(TypeError, match="Expected a @dataclass config instance. Received: dict"):
        config_to_dict({"width": 1})


def test_read_model_config_checks_directory_file_and_fields(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_model_config(tmp_path / "none")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="is not a directory"):
        read_model_config(tmp_path / "file")
    with pytest.raises(CheckpointError, match="incomplete: config.json is missing"):
        read_model_config(tmp_path)
    write_json(tmp_path / "config.json", {"model_type": 3})
    with pytest.raises(CheckpointError, match="string 'model_type' and an object 'config'"):
        read_model_config(tmp_path)
    write_json(tmp_path / "config.json", {"model_type": "k", "config": {"a": 1}})
    assert read_model_config(tmp_path) == {"model_type": "k", "config": {"a": 1}}


# ---------------------------------------------------------------------------------------------- weights


def test_tied_weights_are_written_once_and_read_back_shared(tmp_path):
    embed = torch.arange(15.0).reshape(5, 3)
    state = {"embed": embed, "head": embed, "bias": torch.ones(5), "empty": torch.zeros(0)}
    unique, tied = split_shared(state)
    assert sorted(unique) == ["bias", "embed", "empty"] and tied == {"head": "embed"}
    save_file(unique, str(tmp_path / "w.safetensors"))
    found = read_safetensors(tmp_path / "w.safetensors", tied=tied)
    assert sorted(found) == ["bias", "embed", "empty", "head"]
    assert torch.equal(found["head"], embed) and found["head"].data_ptr() == found["embed"].data_ptr()


def test_unreadable_weights_and_mismatches_are_listed(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        read_safetensors(tmp_path / "w.safetensors")
    expected = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    found = {"a": torch.zeros(3, 2), "c": torch.zeros(1)}
    with pytest.raises(CheckpointError) as err:
        check_state_dict(expected, found, "here")
    assert str(err.value) == ("weights in here do not match the config: missing tensors ['b'], unexpected "
                              "tensors ['c'], shape mismatches [a: checkpoint (3, 2) vs model (2, 3)]")
    check_state_dict(expected, {k: v.clone() for k, v in expected.items()}, "here")  # a match passes


# ---------------------------------------------------------------------------------------------- registry


def test_registry_checks_model_type_config_and_duplicates():
    with pytest.raises(TypeError, match="non-empty str `model_type`"):
        register_model(type("NoKind", (), {}))
    with pytest.raises(TypeError, match="`config_class` to be a @dataclass"):
        register_model(type("NoConfig", (), {"model_type": "test-storage-noconfig"}))
    first = register_model(type("First", (), {"model_type": "test-storage-dup", "config_class": Inner}))
    assert storage.model_class("test-storage-dup") is first
    with pytest.raises(ValueError, match="already registered"):
        register_model(type("Second", (), {"model_type": "test-storage-dup", "config_class": Inner}))
    with pytest.raises(CheckpointError, match="unknown model_type 'test-storage-none'"):
        storage.model_class("test-storage-none")
    del storage.MODEL_REGISTRY["test-storage-dup"]


# -- files follow the user's umask; nested states without pickle (issue 11 / issue 13) -----------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    import stat

    import matplotlib.pyplot as plt

    from attnkit.storage import atomic_directory, atomic_write_text
    from attnkit.viz.plots import save_figure

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_directory(tmp_path / "d") as tmp:
            (tmp / "f").write_text("y")
        fig = plt.figure(figsize=(1, 1))
        save_figure(fig, tmp_path / "p.png")
        plt.close(fig)
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "a.txt") == 0o666 & ~umask       # as open() would create it
    assert mode(tmp_path / "p.png") == 0o666 & ~umask
    assert mode(tmp_path / "d") == 0o777 & ~umask           # as mkdir() would create it


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path):
    from attnkit.storage.state import read_state, write_state

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    write_state(tmp_path, "optimizer", opt.state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optimizer.json", "optimizer.safetensors"]
    back = read_state(tmp_path, "optimizer")
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    fresh.load_state_dict(back)  # accepted by torch: same structure, int keys and tuples restored
    assert fresh.param_groups[0]["betas"] == (0.8, 0.9) and fresh.param_groups[0]["lr"] == 0.1
    for k, v in opt.state_dict()["state"].items():
        for name, t in v.items():
            assert torch.equal(t, back["state"][k][name]), name


def test_a_state_with_an_object_is_refused_at_write_time(tmp_path):
    from attnkit.storage.state import encode_state

    with pytest.raises(TypeError, match="Received: .*Path"):
        encode_state({"where": tmp_path})


def test_keep_last_k_checkpoints(tmp_path):
    from attnkit.training import TrainConfig, Trainer, load_checkpoint
    from attnkit.training.checkpoint import previous_checkpoints
    from tests.training.tiny import TinyStream, tiny_model

    cfg = TrainConfig(steps=10, eval_every=2, progress=False, device="cpu", out_dir=str(tmp_path), keep_checkpoints=3)
    Trainer(tiny_model(), cfg, TinyStream()).fit()
    kept = previous_checkpoints(tmp_path / "checkpoint")
    assert [p.name for p in kept] == ["checkpoint-00000006", "checkpoint-00000008"]
    assert [load_checkpoint(p).step for p in kept] == [6, 8] and load_checkpoint(tmp_path / "checkpoint").step == 10
