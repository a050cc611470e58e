"""Nothing escapes, nothing is lost: the four write mechanisms of issue 23, tried from every command and loader.

One table per mechanism, each row a command (or a library call) it applies to:

- ``LINK_CASES``: a symbolic link planted at a name the command writes (a derived overlay name, a report,
  a model directory, a log) is replaced by the new file; the file it pointed to is untouched.
- ``COLLISION_CASES``: two outputs that would share a name get distinct names (the CLI) or ``InputError``
  (the one writer inside ``written_once``), never a silent overwrite.
- ``NAME_CASES``: names read from files attnkit did not write (tokenizer names in ``config.json``, shards
  of a weights index, images of a captions file) that leave their directory are refused with one line
  naming the file and the entry, through the library and through the CLI.
- ``OUT_CASES``: every command with ``--out`` refuses a directory that holds the user's files, and with
  ``--overwrite`` refuses to replace a file in one of its own directories that attnkit did not write;
  ``RERUN_CASES``: a re-run into the command's own earlier output replaces it.
- ``LOCK_CASES``: while another process holds a directory's lock, every command with ``--out`` on it
  exits 2 with one line naming it; a killed holder leaves nothing stuck; two real runs started together
  end with one run in the directory.

Each CLI row also checks: the exit code, one ``attnkit: error:`` line and no traceback, and that every file
outside the command's outputs kept its bytes and modification time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import attnkit
from attnkit.cli.main import main
from attnkit.errors import InputError
from attnkit.storage import (
    LOCK_FILE,
    atomic_directory,
    atomic_write_text,
    lock_directory,
    release_directories,
    write_figure,
    write_image,
    write_json,
    write_safetensors,
    written_once,
)
from attnkit.training import load_checkpoint

TINY = ["--steps", "2", "--batch-size", "8", "--embed-dim", "4", "--attention-dim", "8", "--d-model", "8",
        "--train-size", "32", "--valid-size", "4", "--eval-every", "2", "--quiet", "--device", "cpu"]
TRAIN = ["train", "seq2seq", "--data", "reverse", "--max-len", "5", *TINY]
SRC = str(Path(__file__).resolve().parents[1] / "src")
VICTIM = "keep me\n"


def _run(args: list) -> int:
    return main([str(a) for a in args])


def _snapshot(root: Path, skip: str | None = None) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and not (skip and str(p).startswith(skip))}


def _captioner(directory: Path) -> Path:
    from attnkit.data.tokenize import Tokenizer
    from attnkit.models.captioner import Captioner, CaptionerConfig

    torch.manual_seed(1)
    tok = Tokenizer.train(["a red ball left of a cat"], scheme="word")
    model = Captioner(CaptionerConfig(vocab_size=tok.vocab_size, encoder="small-cnn", image_size=32, grid=2,
                                      cnn_channels=8, annotation_dim=6, embed_dim=5, hidden_dim=7, attention_dim=4,
                                      max_len=5))
    model.tokenizers = {"target": tok}
    return model.save(directory)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A finished seq2seq run, a captioner, pictures, a text file, a victim outside every output."""
    root = tmp_path_factory.mktemp("trust")
    assert _run([*TRAIN, "--out", root / "run"]) == 0
    _captioner(root / "cap")
    pic = (np.arange(40 * 48 * 3) % 251).astype(np.uint8).reshape(40, 48, 3)
    for folder in ("a", "b"):
        (root / folder).mkdir()
        Image.fromarray(pic).save(root / folder / "x.png")
    (root / "victim").mkdir()
    (root / "victim" / "precious.txt").write_text(VICTIM)
    (root / "text.txt").write_text("the cat sat on the mat. the dog sat on the log.\n" * 20)
    (root / "news.csv").write_text("text,label\n" + "".join(f"good film {i},pos\nbad plot {i},neg\n" for i in range(20)))
    return root


def _words(ws: Path) -> list[str]:
    return attnkit.load(ws / "cap").caption_words([str(ws / "a" / "x.png")])[0].words


# ------------------------------------------------------------------------------------------------------------
# 1. One writer: a link at an output name is replaced, never followed
# ------------------------------------------------------------------------------------------------------------

# (id, arguments ({ws}, {out}), the output names where links are planted (callable of ws for derived names))
LINK_CASES = [
    ("caption-overlay-word-picture", ["caption", "{ws}/cap", "{ws}/a/x.png", "--overlay", "{out}/o.png"],
     lambda ws: [f"o-01-{_words(ws)[0]}.png"]),
    ("caption-overlay-grid", ["caption", "{ws}/cap", "{ws}/a/x.png", "--overlay", "{out}/o.png"], ["o.png"]),
    ("caption-overlay-several-images", ["caption", "{ws}/cap", "{ws}/a/x.png", "{ws}/b/x.png", "--overlay",
                                        "{out}/o.png"], ["o-1-x.png", "o-2-x.png"]),
    ("translate-png", ["translate", "{ws}/run", "abc", "--png", "{out}/al.png"], ["al.png"]),
    ("translate-png-several", ["translate", "{ws}/run", "abc", "cba", "--png", "{out}/al.png"],
     ["al_1.png", "al_2.png"]),
    ("evaluate-json", ["evaluate", "{ws}/run", "--json", "{out}/scores.json"], ["scores.json"]),
    ("viz-pictures-and-explorer", ["viz", "{ws}/run", "abc", "--out", "{out}", "--overwrite"],
     ["alignment.png", "explorer.html"]),
    ("train-run-json-and-log", [*TRAIN, "--out", "{out}", "--overwrite"], ["run.json", "train_log.jsonl"]),
    ("train-model-directory", [*TRAIN, "--out", "{out}", "--overwrite"], ["model", "checkpoint"]),
    ("train-lock-file", [*TRAIN, "--out", "{out}", "--overwrite"], [LOCK_FILE]),
    ("demo-model-pictures-and-summaries", ["demo", "--quick", "--steps", "2", "--no-contrast", "--out", "{out}",
                                           "--overwrite"], ["model", "alignment_1.png", "summary.json", "summary.md"]),
    ("classifier-report", ["train", "classifier", "--data", "{ws}/news.csv", "--steps", "2", "--batch-size", "4",
                           "--eval-every", "2", "--quiet", "--device", "cpu", "--out", "{out}",
                           "--overwrite"], ["report.json"]),
]


@pytest.mark.parametrize(("case", "args", "links"), LINK_CASES, ids=[c[0] for c in LINK_CASES])
def test_a_link_at_an_output_name_is_replaced_not_followed(ws, tmp_path, capsys, case, args, links):
    out = tmp_path / "out"
    out.mkdir()
    names = links(ws) if callable(links) else links
    for name in names:  # a file and a directory to aim at, outside every output
        target = ws / "victim" if name in ("model", "checkpoint") else ws / "victim" / "precious.txt"
        (out / name).symlink_to(target)
    before = _snapshot(ws, skip=str(tmp_path))
    code = _run([a.replace("{ws}", str(ws)).replace("{out}", str(out)) for a in args])
    err = capsys.readouterr().err
    assert code == 0, err
    assert _snapshot(ws, skip=str(tmp_path)) == before, f"{case} wrote through a link"
    for name in names:  # the lock file itself is removed when the command ends
        assert not (out / name).is_symlink() and ((out / name).exists() or name == LOCK_FILE), name


def _fig():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1))
    plt.close(fig)
    return fig


def _save_model(path: Path) -> None:
    from attnkit.storage.state import write_state  # noqa: F401  (the import checks the module loads)

    attnkit.load(path.parents[1] / "run" / "model").save(path)


# (id, call writing at ``path``, the name the call writes, relative to the link's folder)
API_LINK_CASES = [
    ("atomic-write-text", lambda ws, p: atomic_write_text(p / "f.txt", "new"), "f.txt"),
    ("write-json", lambda ws, p: write_json(p / "f.json", {"a": 1}), "f.json"),
    ("write-figure", lambda ws, p: write_figure(_fig(), p / "f.png"), "f.png"),
    ("write-image", lambda ws, p: write_image(Image.new("RGB", (2, 2)), p / "f.png"), "f.png"),
    ("write-safetensors", lambda ws, p: write_safetensors({"w": torch.ones(2)}, p / "f.safetensors"),
     "f.safetensors"),
    ("model-save-directory", lambda ws, p: attnkit.load(ws / "run" / "model").save(p / "m"), "m"),
    ("tokenizer-save", lambda ws, p: attnkit.load(ws / "run" / "model").tokenizers["source"].save(p / "t.json"),
     "t.json"),
    ("write-state", lambda ws, p: __import__("attnkit.storage.state", fromlist=["write_state"]).write_state(
        p, "opt", {"x": torch.zeros(2)}), "opt.safetensors"),
    ("append-log", lambda ws, p: __import__("attnkit.training.run_state", fromlist=["append_log"]).append_log(
        p, {"step": 1}), "train_log.jsonl"),
    ("save-figure", lambda ws, p: __import__("attnkit.viz.plots", fromlist=["save_figure"]).save_figure(
        _fig(), p / "f.svg"), "f.svg"),
    ("save-pretrained-file-in-directory", lambda ws, p: _gpt().save_pretrained(p), "config.json"),
    ("save-pretrained-directory", lambda ws, p: _gpt().save_pretrained(p / "m"), "m"),
]


def _gpt():
    from attnkit.data.lm_tokenizers import train_byte_bpe
    from attnkit.models.gpt import GPT, GPTConfig

    bpe = train_byte_bpe(["ana va al cine"] * 3, vocab_size=300)
    model = GPT(GPTConfig(vocab_size=bpe.vocab_size, n_positions=8, n_embd=4, n_layer=1, n_head=1))
    model.tokenizer = bpe
    return model


@pytest.mark.parametrize(("case", "call", "name"), API_LINK_CASES, ids=[c[0] for c in API_LINK_CASES])
def test_library_writes_replace_a_link_at_their_name(ws, tmp_path, case, call, name):
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(ws / "victim" if name == "m" else ws / "victim" / "precious.txt")
    before = _snapshot(ws, skip=str(tmp_path))
    call(ws, out)
    assert _snapshot(ws, skip=str(tmp_path)) == before
    assert not (out / name).is_symlink() and (out / name).exists()


# ------------------------------------------------------------------------------------------------------------
# 2. Never onto a name the same command already wrote
# ------------------------------------------------------------------------------------------------------------

COLLISION_CASES = [
    ("write-text-twice", lambda p: (atomic_write_text(p / "a", "1"), atomic_write_text(p / "a", "2"))),
    ("write-json-twice", lambda p: (write_json(p / "a.json", 1), write_json(p / "a.json", 2))),
    ("write-figure-twice", lambda p: (write_figure(_fig(), p / "a.png"), write_figure(_fig(), p / "a.png"))),
    ("write-image-twice", lambda p: (write_image(Image.new("RGB", (2, 2)), p / "a.png"),
                                     write_image(Image.new("RGB", (3, 3)), p / "a.png"))),
    ("write-safetensors-twice", lambda p: (write_safetensors({"w": torch.ones(1)}, p / "w.st"),
                                           write_safetensors({"w": torch.zeros(1)}, p / "w.st"))),
    ("directory-twice", lambda p: _two_directories(p)),
    ("same-name-by-another-spelling", lambda p: (atomic_write_text(p / "a", "1"),
                                                 atomic_write_text(p / "sub" / ".." / "a", "2"))),
]


def _two_directories(p: Path) -> None:
    for _ in range(2):
        with atomic_directory(p / "dd") as tmp:
            (tmp / "x").mkdir()


@pytest.mark.parametrize(("case", "call"), COLLISION_CASES, ids=[c[0] for c in COLLISION_CASES])
def test_the_writer_refuses_a_name_written_twice_by_one_command(tmp_path, case, call):
    (tmp_path / "sub").mkdir()
    with written_once(), pytest.raises(InputError, match="already written by this command"):
        call(tmp_path)


def test_outputs_kept_current_on_purpose_may_be_written_again(tmp_path):
    """A cache or a progress report updated as a command goes (``updating``) is not a collision."""
    from attnkit.functional.tuning import save_winner

    with written_once():
        save_winner(tmp_path / "tuning.json", "a", {"fused": 1.0, "reference": 2.0})
        save_winner(tmp_path / "tuning.json", "b", {"fused": 3.0, "reference": 2.0})
    assert set(json.loads((tmp_path / "tuning.json").read_text())["machines"].popitem()[1]) == {"a", "b"}


# (id, images, how many overlay pictures must exist afterwards: words + 1 per image)
CLI_COLLISION_CASES = [
    ("caption-same-file-name-in-two-folders", ["{ws}/a/x.png", "{ws}/b/x.png"], 2),
    ("caption-same-file-twice", ["{ws}/a/x.png", "{ws}/a/x.png"], 2),
]


@pytest.mark.parametrize(("case", "images", "count"), CLI_COLLISION_CASES, ids=[c[0] for c in CLI_COLLISION_CASES])
def test_caption_gives_each_input_its_own_overlays(ws, tmp_path, capsys, case, images, count):
    code = _run(["caption", ws / "cap", *[i.replace("{ws}", str(ws)) for i in images], "--overlay", tmp_path / "o.png"])
    assert code == 0, capsys.readouterr().err
    assert len(list(tmp_path.glob("*.png"))) == count * (len(_words(ws)) + 1)


# ------------------------------------------------------------------------------------------------------------
# 3. Names read from files stay in their directory
# ------------------------------------------------------------------------------------------------------------


def _model_with_tokenizers(ws: Path, tmp: Path, names, plant: Callable[[Path], None] = lambda d: None) -> Path:
    d = tmp / "model"
    shutil.copytree(ws / "run" / "model", d)
    meta = json.loads((d / "config.json").read_text())
    meta["tokenizers"] = names
    (d / "config.json").write_text(json.dumps(meta))
    (tmp / "outside_tok.json").write_text((d / "tokenizer_source.json").read_text())
    (d / "tokenizer__").mkdir()  # so that tokenizer__/../.. really leads out
    shutil.copy(d / "tokenizer_source.json", d / "source.json")
    plant(d)
    return d


def _linked_tokenizer(d: Path) -> None:
    (d / "tokenizer_source.json").unlink()
    (d / "tokenizer_source.json").symlink_to(d.parent / "outside_tok.json")


def _directory_tokenizer(d: Path) -> None:
    (d / "tokenizer_source.json").unlink()
    (d / "tokenizer_source.json").mkdir()


def _sharded(ws: Path, tmp: Path, shard: str, plant: Callable[[Path], None] = lambda d: None) -> Path:
    from safetensors.torch import save_file

    d = tmp / "hf"
    d.mkdir()
    save_file({"a": torch.ones(2)}, str(tmp / "outside.safetensors"))
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": shard}}))
    plant(d)
    return d


def _captions(ws: Path, tmp: Path, name: str, plant: Callable[[Path], None] = lambda d: None) -> Path:
    d = tmp / "flickr"
    d.mkdir()
    Image.new("RGB", (20, 20), "red").save(d / "a.png")
    Image.new("RGB", (20, 20), "blue").save(tmp / "outside.png")
    (d / "captions.txt").write_text(f"a.png\ta red square\n{name}\ta blue square\n")
    plant(d)
    return d / "captions.txt"


def _read_weights(d: Path):
    from attnkit.models.hub import read_weights

    return read_weights(d)


def _read_captions(path: Path):
    from attnkit.data.captions import read_captions

    return read_captions(path)


OUT_TOK = "_/../../outside_tok"  # tokenizer_<name>.json -> model/tokenizer__/../../outside_tok.json
# (id, build(ws, tmp) -> the path to open, the loader, the CLI arguments ({path}), the file and entry named)
NAME_CASES = [
    ("tokenizer-name-with-dotdot", lambda ws, t: _model_with_tokenizers(ws, t, ["source", OUT_TOK]), attnkit.load,
     ["translate", "{path}", "abc"], ["config.json", "outside_tok"]),
    ("tokenizer-name-dotdot-back-inside", lambda ws, t: _model_with_tokenizers(ws, t, ["source", "_/../source"]),
     attnkit.load, ["translate", "{path}", "abc"], ["config.json", "must be a name inside"]),
    ("tokenizer-file-linked-outside", lambda ws, t: _model_with_tokenizers(ws, t, ["source", "target"],
                                                                           _linked_tokenizer), attnkit.load,
     ["translate", "{path}", "abc"], ["config.json", "tokenizer_source.json", "symbolic link"]),
    ("tokenizer-file-is-a-directory", lambda ws, t: _model_with_tokenizers(ws, t, ["source", "target"],
                                                                           _directory_tokenizer), attnkit.load,
     ["translate", "{path}", "abc"], ["tokenizer_source.json"]),
    ("tokenizer-names-not-a-list", lambda ws, t: _model_with_tokenizers(ws, t, "source"), attnkit.load,
     ["translate", "{path}", "abc"], ["config.json", "must be a list"]),
    ("tokenizer-name-not-a-string", lambda ws, t: _model_with_tokenizers(ws, t, ["source", 7]), attnkit.load,
     ["translate", "{path}", "abc"], ["config.json", "must be a list"]),
    ("shard-name-with-dotdot", lambda ws, t: _sharded(ws, t, "../outside.safetensors"), _read_weights, None,
     ["model.safetensors.index.json", "../outside.safetensors"]),
    ("shard-name-absolute", lambda ws, t: _sharded(ws, t, f"{t}/outside.safetensors"), _read_weights, None,
     ["model.safetensors.index.json", "must be a name inside"]),
    ("shard-linked-outside", lambda ws, t: _sharded(ws, t, "s.safetensors", lambda d: (d / "s.safetensors").symlink_to(
        d.parent / "outside.safetensors")), _read_weights, None, ["index.json", "symbolic link"]),
    ("shard-is-a-directory", lambda ws, t: _sharded(ws, t, "s", lambda d: (d / "s").mkdir()), _read_weights, None,
     ["index.json", "not a regular file"]),
    ("captions-image-with-dotdot", lambda ws, t: _captions(ws, t, "../outside.png"), _read_captions,
     ["train", "captioner", "--data", "{path}", "--encoder", "small-cnn", "--image-size", "32", "--steps", "2",
      "--quiet", "--out", "{path}.run"], ["captions.txt line 2", "../outside.png"]),
    ("captions-image-absolute", lambda ws, t: _captions(ws, t, f"{t}/outside.png"), _read_captions,
     ["train", "captioner", "--data", "{path}", "--encoder", "small-cnn", "--image-size", "32", "--steps", "2",
      "--quiet", "--out", "{path}.run"], ["captions.txt line 2", "must be a name inside"]),
    ("captions-image-linked-outside", lambda ws, t: _captions(ws, t, "b.png", lambda d: (d / "b.png").symlink_to(
        d.parent / "outside.png")), _read_captions,
     ["train", "captioner", "--data", "{path}", "--encoder", "small-cnn", "--image-size", "32", "--steps", "2",
      "--quiet", "--out", "{path}.run"], ["captions.txt line 2", "symbolic link"]),
]


@pytest.mark.parametrize(("case", "build", "loader", "args", "parts"), NAME_CASES, ids=[c[0] for c in NAME_CASES])
def test_a_name_read_from_a_file_stays_in_its_directory(ws, tmp_path, capsys, case, build, loader, args, parts):
    path = build(ws, tmp_path)
    with pytest.raises(InputError) as info:
        loader(path)
    assert all(p in str(info.value) for p in parts), str(info.value)
    if args is not None:  # the same refusal through the CLI: exit 2, one line, nothing written
        before = _snapshot(tmp_path)
        code = _run([a.replace("{path}", str(path)) for a in args])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err, err
        assert err.strip().startswith("attnkit: error:") and len(err.strip().splitlines()) == 1, err
        assert all(p in err for p in parts), err
        assert _snapshot(tmp_path) == before and not Path(f"{path}.run").exists()


# ------------------------------------------------------------------------------------------------------------
# 4. One --out guard: a user's directory is refused; --overwrite replaces only attnkit's own files
# ------------------------------------------------------------------------------------------------------------

LM = ["--steps", "2", "--quiet", "--device", "cpu"]
# (id, arguments ({ws}, {out}): each writes into --out)
OUT_COMMANDS = [
    ("train-seq2seq", TRAIN),
    ("train-transformer", ["train", "transformer", "--data", "reverse", "--steps", "2", "--quiet"]),
    ("train-gpt", ["train", "gpt", "--data", "{ws}/text.txt", *LM]),
    ("train-bert", ["train", "bert", "--data", "{ws}/text.txt", *LM]),
    ("train-classifier", ["train", "classifier", "--data", "{ws}/news.csv", *LM]),
    ("train-captioner", ["train", "captioner", "--data", "scenes", "--encoder", "small-cnn", *LM]),
    ("demo", ["demo", "--quick"]),
    ("viz", ["viz", "{ws}/run", "abc"]),
    ("experiment-length", ["experiment", "length", "--quick"]),
    ("experiment-efficiency", ["experiment", "efficiency", "--quick"]),
    ("experiment-faithfulness", ["experiment", "faithfulness", "--quick"]),
    ("viz-explain", ["viz", "{ws}/run", "abc", "--explain", "attention"]),
    ("bench", ["bench", "functional", "--quick"]),
    ("lesson-positions", ["lesson", "positions", "--length", "8", "--dim", "4"]),
    ("lesson-cost", ["lesson", "cost", "--max-length", "64", "--time-budget", "1", "--memory-max", "0"]),
    ("lesson-scores", ["lesson", "scores", "uno dos tres"]),
]


def _cli(args: list, ws: Path, out: Path) -> int:
    return _run([a.replace("{ws}", str(ws)).replace("{out}", str(out)) if isinstance(a, str) else a
                 for a in [*args, "--out", "{out}"]])


def _one_line_exit_2(code: int, err: str, *parts: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.strip().startswith("attnkit: error:"), err
    assert len(err.strip().splitlines()) == 1, err
    flat = " ".join(err.split())
    assert all(p in flat for p in parts), err


# Each command twice: a folder of the user's (refused), and --overwrite over a user's file inside one of the
# command's own directories or beside its own files (refused, or the user's file kept).
OUT_CASES = [(f"{name}-users-folder", args, False, "is not empty (it holds model/, notes.txt, summary.md)")
             for name, args in OUT_COMMANDS] + [
    ("demo-overwrite-model-holds-a-users-file", ["demo", "--quick", "--overwrite"], True, "which attnkit did not write"),
    ("train-overwrite-model-holds-a-users-file", [*TRAIN, "--overwrite"], True, "which attnkit did not write"),
    ("viz-overwrite-own-directory-holds-a-users-file", ["viz", "{ws}/run", "abc", "--overwrite"], "heads.png",
     "which attnkit did not write"),
    ("experiment-overwrite-seed-holds-a-users-file", ["experiment", "length", "--quick", "--overwrite"], "seed-0",
     "which attnkit did not write"),
]


@pytest.mark.parametrize(("case", "args", "inside", "message"), OUT_CASES, ids=[c[0] for c in OUT_CASES])
def test_out_that_holds_the_users_files_is_refused(ws, tmp_path, capsys, case, args, inside, message):
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes\n")
    (out / "summary.md").write_text("my summary\n")
    if inside:
        folder = out / ("model" if inside is True else inside)
        folder.mkdir(exist_ok=True)
        (folder / "notes.txt").write_text("mine\n")
    before = _snapshot(tmp_path)
    _one_line_exit_2(_cli(args, ws, out), capsys.readouterr().err, str(out) if not inside else message, message)
    listing = {"model", "notes.txt", "summary.md"} | ({inside} if isinstance(inside, str) else set())
    assert _snapshot(tmp_path) == before and {p.name for p in out.iterdir()} == listing


def test_demo_overwrite_replaces_its_own_files_and_keeps_the_users(ws, tmp_path, capsys):
    """Issue 23: ``demo --quick --out DIR`` deleted DIR/model/notes.txt and overwrote DIR/summary.md."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    (out / "summary.md").write_text("my summary\n")
    assert _run(["demo", "--quick", "--out", out]) == 2
    assert (out / "summary.md").read_text() == "my summary\n"
    assert _run(["demo", "--quick", "--out", out, "--overwrite", "--no-contrast", "--steps", "2"]) == 0
    assert (out / "notes.txt").read_text() == "my notes\n"
    assert (out / "summary.md").read_text() != "my summary\n" and (out / "model" / "config.json").is_file()
    (out / "alignment_1.png").write_bytes(b"old picture")  # its own name, even changed by the user: replaced
    assert _run(["demo", "--quick", "--out", out, "--overwrite", "--no-contrast", "--steps", "2"]) == 0
    assert (out / "alignment_1.png").read_bytes()[:4] == b"\x89PNG" and (out / "notes.txt").is_file()


# A re-run into the command's own earlier output replaces it without --overwrite (``make demo`` twice).
RERUN_CASES = [
    ("viz", ["viz", "{ws}/run", "abc"], "alignment.png"),
    ("lesson-positions", ["lesson", "positions", "--length", "8", "--dim", "4"], "positions.png"),
    ("demo", ["demo", "--quick", "--steps", "2", "--no-contrast"], "summary.md"),
]


@pytest.mark.parametrize(("case", "args", "output"), RERUN_CASES, ids=[c[0] for c in RERUN_CASES])
def test_a_rerun_replaces_the_commands_own_output(ws, tmp_path, capsys, case, args, output):
    out = tmp_path / "out"
    assert _cli(args, ws, out) == 0
    first = (out / output).stat().st_mtime_ns
    assert _cli(args, ws, out) == 0, capsys.readouterr().err
    assert (out / output).stat().st_mtime_ns != first
    (out / "notes.txt").write_text("mine\n")  # no longer only its own output: refused without --overwrite
    capsys.readouterr()
    _one_line_exit_2(_cli(args, ws, out), capsys.readouterr().err, "is not empty", "notes.txt")


# ------------------------------------------------------------------------------------------------------------
# 5. One run per directory: a lock held for the run's life
# ------------------------------------------------------------------------------------------------------------

HOLD = ("import sys, time; from attnkit.storage import lock_directory; lock_directory(sys.argv[1]); "
        "print('locked', flush=True); time.sleep(120)")


def _holder(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdout.readline().strip() == "locked"
    return proc


LOCK_CASES = [(name, args) for name, args in OUT_COMMANDS if name in (
    "train-seq2seq", "train-gpt", "demo", "viz", "experiment-length", "bench")] + [
    ("train-resume", [*TRAIN, "--resume"]),
    ("train-overwrite", [*TRAIN, "--overwrite"]),
    ("demo-overwrite", ["demo", "--quick", "--overwrite"]),
]


@pytest.fixture(scope="module")
def locked(ws, tmp_path_factory):
    """A copy of the finished run, locked by another process for the module's tests."""
    out = tmp_path_factory.mktemp("locked") / "run"
    shutil.copytree(ws / "run", out)
    proc = _holder(out)
    yield out
    proc.kill()
    proc.wait()


@pytest.mark.parametrize(("case", "args"), LOCK_CASES, ids=[c[0] for c in LOCK_CASES])
def test_a_directory_in_use_by_another_run_is_refused(ws, locked, capsys, case, args):
    before = _snapshot(locked)
    code = _cli(args, ws, locked)
    _one_line_exit_2(code, capsys.readouterr().err, str(locked), "in use by another attnkit run")
    assert _snapshot(locked) == before


def test_a_killed_run_leaves_no_lock_behind(ws, tmp_path, capsys):
    out = tmp_path / "run"
    proc = _holder(out)
    assert _cli(TRAIN, ws, out) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _cli(TRAIN, ws, out) == 0, capsys.readouterr().err  # the kernel dropped the lock with the process


def test_two_runs_started_together_leave_one_run(tmp_path):
    """Issue 23: two train runs on one --out ended with run.json and model/ of one, checkpoint/ of the other."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "attnkit", *TRAIN, "--steps", "30", "--eval-every", "10", "--out", str(out)]
    procs = [subprocess.Popen([*args, "--seed", str(seed)], stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": SRC}) for seed in (1, 2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert str(out) in loser and len(loser.strip().splitlines()) == 1, loser
    winner = 1 + [code for code, _ in results].index(0)
    assert json.loads((out / "run.json").read_text())["seed"] == winner
    state = {"step": load_checkpoint(out / "checkpoint").step}
    assert state["step"] == 30


def test_lock_is_released_when_the_command_ends(tmp_path):
    lock_directory(tmp_path / "d")
    release_directories()
    lock_directory(tmp_path / "d")  # taken again at once in this process
    release_directories()
    time.sleep(0)


def test_battery_size():
    """Issue 23 wants >= 120 table-driven cases in the bad-input batteries; this file's tables add these."""
    mine = (len(LINK_CASES) + len(API_LINK_CASES) + len(COLLISION_CASES) + len(CLI_COLLISION_CASES) + len(NAME_CASES)
            + len(OUT_CASES) + len(RERUN_CASES) + len(LOCK_CASES))
    from tests.test_bad_inputs import API_CASES, CLI_CASES

    assert mine >= 60 and mine + len(CLI_CASES) + len(API_CASES) >= 120
