"""Bounds, messages, Ctrl-C and silent traps: one table per promise of SECURITY.md (issue 23).

* ``OVERSIZED_CONFIGS``: a ``config.json`` of every model type with a size above ``SIZE_LIMITS`` is refused by
  ``attnkit.load`` before anything is built, in one line naming the file and the key, in well under a second.
* ``OVERSIZED_OPTIONS``: every command refuses an option outside its bounds when the command line is parsed
  (exit 2, one line, nothing written); ``test_every_numeric_option_has_bounds_in_help`` walks every command.
* ``FILE_ERRORS``: every loader names the file it could not read and says what to do (no parser's bare text,
  no "not found" for a directory, no advice to unpickle).
* ``CTRL_C_DELAYS``: the command sent SIGINT from its first instant exits 130 with one line, never a traceback
  from attnkit's code or the libraries it imports.
* ``API_TRAPS``: the warnings of the API belong to the user's call, and written files follow the umask.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import typer

import attnkit
from attnkit.cli import _options
from attnkit.cli.main import _register, app, main
from attnkit.errors import CheckpointError
from attnkit.models import GPT, Bert, GPTConfig
from attnkit.models.bert import BertConfig
from attnkit.models.captioner import Captioner, CaptionerConfig
from attnkit.models.classifier import AttentionClassifier, ClassifierConfig
from attnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from attnkit.models.transformer import Transformer, TransformerConfig

SRC = str(Path(attnkit.__file__).parents[1])
TINY = ["--steps", "2", "--batch-size", "8", "--embed-dim", "4", "--attention-dim", "8", "--d-model", "8",
        "--train-size", "32", "--valid-size", "4", "--eval-every", "2", "--quiet", "--device", "cpu"]


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("attnkit: error:") and "Traceback" not in err, err
    return " ".join(lines[-1].split())


# ----------------------------------------------------------------------------------------------------------
# Model configs above the size limits
# ----------------------------------------------------------------------------------------------------------

def _tiny_models() -> dict[str, Callable[[Path], object]]:
    return {
        "seq2seq": lambda d: Seq2Seq(Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=6, embed_dim=4, hidden_dim=4,
                                                   attention_dim=4)).save(d),
        "transformer": lambda d: Transformer(TransformerConfig(src_vocab_size=5, tgt_vocab_size=6, d_model=8,
                                                               num_heads=2, encoder_layers=1, decoder_layers=1,
                                                               ff_dim=8)).save(d),
        "captioner": lambda d: Captioner(CaptionerConfig(vocab_size=9, encoder="small-cnn", image_size=32, grid=2,
                                                         cnn_channels=8, annotation_dim=8, embed_dim=8, hidden_dim=8,
                                                         attention_dim=8)).save(d),
        "classifier": lambda d: AttentionClassifier(ClassifierConfig(vocab_size=30, embed_dim=4, d_model=6,
                                                                     ff_dim=3)).save(d),
        "gpt": lambda d: GPT(GPTConfig(vocab_size=50, n_positions=16, n_embd=8, n_layer=1, n_head=2)).save_pretrained(d),
        "bert": lambda d: Bert(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=8, max_position_embeddings=16)).save_pretrained(d),
    }


# (model type, key in config.json (attnkit's layout: under "config"), absurd value)
OVERSIZED_CONFIGS = [
    ("captioner", "image_size", 96000),   # issue 23: 6 GB before any check
    ("captioner", "grid", 10**5),
    ("captioner", "vocab_size", 10**8),
    ("captioner", "hidden_dim", 10**6),
    ("seq2seq", "src_vocab_size", 10**10),
    ("seq2seq", "hidden_dim", 10**7),
    ("seq2seq", "max_src_len", 10**9),
    ("transformer", "d_model", 10**6),
    ("transformer", "encoder_layers", 10**5),
    ("transformer", "max_tgt_len", 10**9),
    ("transformer", "ff_dim", 10**7),
    ("classifier", "vocab_size", 10**9),
    ("classifier", "max_len", 10**8),
    ("classifier", "ff_dim", 10**7),
    ("gpt", "n_positions", 10**9),
    ("gpt", "n_embd", 10**6),
    ("gpt", "n_layer", 10**6),
    ("gpt", "vocab_size", 10**10),
    ("bert", "max_position_embeddings", 10**9),
    ("bert", "intermediate_size", 10**8),
    ("bert", "num_hidden_layers", 10**5),
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    out = {}
    for name, save in _tiny_models().items():
        save(root / name)
        out[name] = root / name
    return out


@pytest.mark.parametrize(("model_type", "key", "value"), OVERSIZED_CONFIGS,
                         ids=[f"{m}-{k}" for m, k, _ in OVERSIZED_CONFIGS])
def test_oversized_config_is_refused_before_building(saved, tmp_path, model_type, key, value):
    directory = tmp_path / model_type
    shutil.copytree(saved[model_type], directory)
    meta = json.loads((directory / "config.json").read_text())
    (meta if model_type in ("gpt", "bert") else meta["config"])[key] = value
    (directory / "config.json").write_text(json.dumps(meta))
    started = time.perf_counter()
    with pytest.raises(CheckpointError) as info:
        attnkit.load(directory)
    assert time.perf_counter() - started < 5
    message = str(info.value)
    assert str(directory / "config.json") in message and f"key {key!r} is {value}" in message, message
    assert "\n" not in message


def test_size_limits_admit_real_models():
    """The limits sit far above real checkpoints: GPT-2 XL, BERT large, the paper's captioner."""
    from attnkit.models._checks import SIZE_LIMITS, check_config_sizes

    check_config_sizes(GPTConfig(vocab_size=50257, n_positions=1024, n_embd=1600, n_layer=48, n_head=25), "x")
    check_config_sizes(BertConfig(vocab_size=30522, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                  intermediate_size=4096), "x")
    check_config_sizes(CaptionerConfig(vocab_size=10000, image_size=224), "x")
    assert SIZE_LIMITS["image_size"] ** 2 * 3 * 4 <= 256 * 2**20  # one float32 image: at most 256 MB


# ----------------------------------------------------------------------------------------------------------
# Options out of bounds, per command
# ----------------------------------------------------------------------------------------------------------

# (id, arguments ({tmp}: an empty directory), text of the one-line message)
OVERSIZED_OPTIONS = [
    ("train-seq2seq-d-model", ["train", "seq2seq", "--d-model", "100000"], "--d-model must be <= 65536"),
    ("train-seq2seq-steps", ["train", "seq2seq", "--steps", "10000000000"], "--steps must be <= 1000000000"),
    ("train-seq2seq-batch", ["train", "seq2seq", "--batch-size", "1000000"], "--batch-size must be <= 65536"),
    ("train-transformer-layers", ["train", "transformer", "--layers", "5000"], "--layers must be <= 1024"),
    ("train-transformer-ff-dim", ["train", "transformer", "--ff-dim", "10000000"], "--ff-dim must be <= 65536"),
    ("train-gpt-block-size", ["train", "gpt", "--block-size", "1000000000"], "--block-size must be <= 131072"),
    ("train-gpt-heads", ["train", "gpt", "--heads", "100000"], "--heads must be <= 1024"),
    ("train-bert-vocab", ["train", "bert", "--vocab-size", "100000000"], "--vocab-size must be <= 1048576"),
    ("train-bert-mlm", ["train", "bert", "--mlm-probability", "1.5"], "--mlm-probability must be <= 1"),
    ("train-captioner-image-size", ["train", "captioner", "--image-size", "96000"], "--image-size must be <= 4096"),
    ("train-classifier-max-len", ["train", "classifier", "--max-len", "1000000000"], "--max-len must be <= 131072"),
    ("train-seq2seq-seed", ["train", "seq2seq", "--seed", "-1"], "--seed must be >= 0"),
    ("train-gpt-dropout-nan", ["train", "gpt", "--dropout", "nan"], "--dropout must be a finite number >= 0"),
    ("train-gpt-time-budget", ["train", "gpt", "--time-budget", "1e12"], "--time-budget must be <= 1e+07"),
    ("translate-beam", ["translate", "{tmp}", "abc", "--beam", "100000"], "--beam must be <= 256"),
    ("translate-threads", ["translate", "{tmp}", "abc", "--threads", "100000"], "--threads must be <= 1024"),
    ("generate-max-new-tokens", ["generate", "{tmp}", "abc", "--max-new-tokens", "1000000000"],
     "--max-new-tokens must be <= 131072"),
    ("generate-temperature", ["generate", "{tmp}", "abc", "--temperature", "inf"], "--temperature must be a finite"),
    ("generate-top-p", ["generate", "{tmp}", "abc", "--top-p", "0"], "--top-p must be a finite number > 0"),
    ("evaluate-size", ["evaluate", "{tmp}", "--size", "-4"], "--size must be >= 0"),
    ("caption-beam", ["caption", "{tmp}", "x.png", "--beam", "0"], "--beam must be >= 1"),
    ("classify-top-k", ["classify", "{tmp}", "abc", "--top-k", "100000000"], "--top-k must be <= 1048576"),
    ("demo-steps", ["demo", "--steps", "0"], "--steps must be >= 1"),
    ("experiment-length-train-size", ["experiment", "length", "--train-size", "10000000000"],
     "--train-size must be <= 1000000000"),
    ("experiment-efficiency-window", ["experiment", "efficiency", "--window", "1000000000"],
     "--window must be <= 131072"),
]


@pytest.mark.parametrize(("case", "args", "message"), OVERSIZED_OPTIONS, ids=[c[0] for c in OVERSIZED_OPTIONS])
def test_option_out_of_bounds_exits_2_at_parse_time(tmp_path, capsys, case, args, message):
    out = tmp_path / "out"
    has_out = args[0] in ("train", "demo", "experiment")
    code = main([a.replace("{tmp}", str(tmp_path)) for a in args] + (["--out", str(out)] if has_out else []))
    assert code == 2
    assert message in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


def _commands() -> dict[str, object]:
    _register()
    found: dict[str, object] = {}

    def walk(cmd, path):
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, [*path, name])
        if not getattr(cmd, "commands", None):
            found[" ".join(path)] = cmd

    walk(_options.bound_options(typer.main.get_command(app)), [])
    return found


def _numeric_options(cmd) -> list:
    return [p for p in cmd.params if p.param_type_name == "option"
            and getattr(p.type_descriptor, "annotation", None) in (int, float, int | None, float | None)]


@pytest.mark.parametrize("path", sorted(_commands()))
def test_every_numeric_option_has_bounds_in_help(path):
    cmd = _commands()[path]
    for opt in _numeric_options(cmd):
        flag = opt.opts[0]
        assert flag in _options.OPTION_BOUNDS, f"{path}: {flag} has no bounds"
        assert _options.bounds_help(flag) in opt.help, f"{path}: --help of {flag} does not show its bounds"


def test_translate_file_is_streamed_in_bounded_batches(ws, capsys, monkeypatch):
    """translate --file reads, translates and prints TRANSLATE_BATCH lines at a time (never the whole file)."""
    import attnkit.cli.seq2seq as command

    seen: list[int] = []
    real = command.translate_detailed

    def spy(model, texts, **kw):
        seen.append(len(texts))
        return real(model, texts, **kw)

    monkeypatch.setattr(command, "translate_detailed", spy)
    monkeypatch.setattr(command, "TRANSLATE_BATCH", 4)
    lines = ["abc", "", "cba", "ab"] * 5
    (ws / "many.txt").write_text("\n".join(lines) + "\n")
    assert main(["translate", str(ws / "run"), "--file", str(ws / "many.txt"), "--no-heatmap"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(lines)  # one output line per input line, blank ones included
    assert max(seen) <= 4 and sum(seen) == 15


def test_translate_file_may_be_a_pipe(ws):
    """--file is read once, as a stream: a pipe (``--file <(cmd)``, /dev/stdin) works, blank lines kept."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "attnkit", "translate", str(ws / "run"), "--file", "/dev/stdin",
                           "--no-heatmap"], input="\nabc\n\nab\n", capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 4


# ----------------------------------------------------------------------------------------------------------
# Errors from reading files: name the file, say what to do
# ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A finished seq2seq run and damaged copies of its files."""
    root = tmp_path_factory.mktemp("ws")
    assert main(["train", "seq2seq", "--data", "reverse", "--max-len", "5", *TINY, "--out", str(root / "run")]) == 0
    (root / "adir").mkdir()
    (root / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (root / "fake.png").write_text("not a picture\n")
    (root / "blank.txt").write_text("\n  \n\n")

    def model_copy(name: str, damage: Callable[[Path], object]) -> None:
        shutil.copytree(root / "run" / "model", root / name)
        damage(root / name)

    def run_copy(name: str, damage: Callable[[Path], object]) -> None:
        shutil.copytree(root / "run", root / name)
        damage(root / name)

    def as_dir(path: Path) -> None:
        path.unlink()
        path.mkdir()

    model_copy("pickled", lambda d: (d / "model.safetensors").write_bytes(pickle.dumps({"w": [1.0, 2.0]})))
    model_copy("torchsaved", lambda d: torch.save({"w": torch.zeros(2)}, d / "model.safetensors"))
    model_copy("emptyweights", lambda d: (d / "model.safetensors").write_bytes(b""))
    model_copy("weightsdir", lambda d: as_dir(d / "model.safetensors"))
    model_copy("configdir", lambda d: as_dir(d / "config.json"))
    model_copy("badconfig", lambda d: (d / "config.json").write_text("{not json"))
    model_copy("listconfig", lambda d: (d / "config.json").write_text("[1, 2]"))
    model_copy("latin1config", lambda d: (d / "config.json").write_bytes(b'{"model_type": "caf\xe9"}'))
    model_copy("badtokenizer", lambda d: (d / "tokenizer_source.json").write_text("{oops"))
    run_copy("badrun", lambda d: (d / "run.json").write_text("{"))
    run_copy("listrun", lambda d: (d / "run.json").write_text("[]"))
    run_copy("badstate", lambda d: (d / "checkpoint" / "trainer_state.json").write_text("nope"))
    gpt = root / "gpt"
    GPT(GPTConfig(vocab_size=50, n_positions=16, n_embd=8, n_layer=1, n_head=2)).save_pretrained(gpt)
    shutil.copytree(gpt, root / "gptbadconfig")
    (root / "gptbadconfig" / "config.json").write_text("{")
    shutil.copytree(gpt, root / "gptpickled")
    (root / "gptpickled" / "model.safetensors").write_bytes(pickle.dumps([1, 2, 3]))
    return root


# (id, arguments ({ws}: the workspace), texts the one-line message must hold: the file and what to do)
FILE_ERRORS = [
    ("model-is-a-file", ["translate", "{ws}/run/model/config.json", "abc"],
     ["config.json' is a file", "give the folder"]),
    ("model-dir-is-empty", ["translate", "{ws}/adir", "abc"], ["adir' holds no model", "give a directory"]),
    ("config-is-a-directory", ["translate", "{ws}/configdir", "abc"], ["configdir/config.json is a directory"]),
    ("weights-are-a-directory", ["translate", "{ws}/weightsdir", "abc"],
     ["weightsdir/model.safetensors", "is a directory", "save the model again"]),
    ("pickle-renamed-safetensors", ["translate", "{ws}/pickled", "abc"],
     ["pickled/model.safetensors", "pickle", "never unpickles"]),
    ("torch-save-renamed-safetensors", ["translate", "{ws}/torchsaved", "abc"],
     ["torchsaved/model.safetensors", "pickle", "never unpickles"]),
    ("empty-safetensors", ["translate", "{ws}/emptyweights", "abc"],
     ["emptyweights/model.safetensors", "not a safetensors file", "restore it"]),
    ("config-not-json", ["translate", "{ws}/badconfig", "abc"],
     ["badconfig/config.json is not valid JSON (line 1 column 2", "restore it"]),
    ("config-a-json-list", ["translate", "{ws}/listconfig", "abc"], ["listconfig/config.json", "restore it"]),
    ("config-not-utf8", ["translate", "{ws}/latin1config", "abc"], ["latin1config/config.json is not UTF-8"]),
    ("tokenizer-damaged", ["translate", "{ws}/badtokenizer", "abc"],
     ["badtokenizer/tokenizer_source.json", "restore it"]),
    ("run-json-not-json", ["evaluate", "{ws}/badrun"], ["badrun/run.json is not valid JSON", "restore it"]),
    ("run-json-a-list", ["evaluate", "{ws}/listrun"], ["listrun/run.json must hold a JSON object", "restore it"]),
    ("trainer-state-damaged", ["train", "seq2seq", "--data", "reverse", "--max-len", "5", *TINY, "--steps", "4",
                               "--out", "{ws}/badstate", "--resume"],
     ["badstate/checkpoint/trainer_state.json is not valid JSON", "restore it"]),
    ("hf-config-not-json", ["generate", "{ws}/gptbadconfig", "abc"], ["gptbadconfig/config.json is not valid JSON"]),
    ("hf-pickle-renamed", ["generate", "{ws}/gptpickled", "abc"], ["gptpickled/model.safetensors", "never unpickles"]),
    ("translate-file-is-a-directory", ["translate", "{ws}/run", "--file", "{ws}/adir"],
     ["--file", "adir' is a directory", "give the path of a file"]),
    ("translate-file-missing", ["translate", "{ws}/run", "--file", "{ws}/nothing.txt"],
     ["nothing.txt' does not exist", "check the path"]),
    ("translate-file-not-utf8", ["translate", "{ws}/run", "--file", "{ws}/latin1.txt", "--no-heatmap"],
     ["latin1.txt': line 1: not valid UTF-8", "iconv"]),
    ("evaluate-data-is-a-directory", ["evaluate", "{ws}/run", "--data", "{ws}/adir"],
     ["TSV file", "adir' is a directory"]),
    ("train-data-is-a-directory", ["train", "seq2seq", "--data", "{ws}/adir", *TINY, "--out", "{ws}/new"],
     ["TSV file", "adir' is a directory"]),
    ("train-gpt-text-is-a-directory", ["train", "gpt", "--data", "{ws}/adir", "--steps", "2", "--out", "{ws}/new"],
     ["adir' is a directory", "give the path of a file"]),
    ("argument-not-utf8", ["translate", "{ws}/run", "caf" + chr(0xDCE9)],
     ["argument 3 ('caf\\xe9') is not valid UTF-8", "iconv"]),
    ("caption-image-is-a-directory", ["caption", "{ws}/run", "{ws}/adir"], ["adir"]),
    ("caption-image-not-an-image", ["caption", "{ws}/run", "{ws}/fake.png"], ["fake.png", "give a JPEG, PNG"]),
    ("translate-nothing-in-file", ["translate", "{ws}/run", "--file", "{ws}/blank.txt"], ["nothing to translate"]),
]


@pytest.mark.parametrize(("case", "args", "texts"), FILE_ERRORS, ids=[c[0] for c in FILE_ERRORS])
def test_file_errors_name_the_file_and_say_what_to_do(ws, capsys, case, args, texts):
    code = main([a.replace("{ws}", str(ws)) for a in args])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2, line
    for text in texts:
        assert text.replace("{ws}", str(ws)) in line, line
    assert "weights_only" not in line and "Expecting property name" not in line.split("(")[0]
    assert not (ws / "new").exists()


# ----------------------------------------------------------------------------------------------------------
# Ctrl-C from the first instant
# ----------------------------------------------------------------------------------------------------------

CTRL_C_DELAYS = [(entry, delay) for entry in ("console-script", "python-m")
                 for delay in (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.3, 0.8)]
_ENTRY = {"console-script": ["-c", "import sys; sys.argv[0] = '/venv/bin/attnkit'\n"
                                   "from attnkit.cli.main import main\nsys.exit(main())"],
          "python-m": ["-m", "attnkit"]}


@pytest.mark.parametrize(("entry", "delay"), CTRL_C_DELAYS, ids=[f"{e}-{d}s" for e, d in CTRL_C_DELAYS])
def test_ctrl_c_from_the_first_instant(entry, delay):
    """Before attnkit's first line runs, Python itself is starting (and may die of the signal, or print its own
    start-up message); from that line on: exit 130 and the one line, never a traceback through attnkit, typer or
    torch."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, *_ENTRY[entry], "train", "gpt", "--help"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # the help was printed before the signal came
        return
    if proc.returncode == 130:
        assert err.strip() == "attnkit: error: interrupted", err
    else:  # interrupted while the interpreter itself was starting, before attnkit's first line
        assert proc.returncode in (-signal.SIGINT, 1), err
        for name in ("attnkit", "typer", "click", "torch"):
            assert f"/{name}/" not in err, err


def test_ctrl_c_handler_is_handed_back_after_loading():
    """Once the commands are loaded a running command sees KeyboardInterrupt again (its clean-up runs)."""
    before = signal.getsignal(signal.SIGINT)
    assert main(["--version"]) == 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    signal.signal(signal.SIGINT, before)


# ----------------------------------------------------------------------------------------------------------
# Silent traps of the API
# ----------------------------------------------------------------------------------------------------------

def _summary_leaves_the_padding_warning_to_the_user(tmp_path):
    from attnkit.models import hub

    hub._WARNED.discard("padding")
    bert = Bert(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=8, max_position_embeddings=16)).eval()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bert.summary(print_fn=None)
        assert not seen, [str(w.message) for w in seen]
        bert(torch.tensor([[5, 6, 0]]))  # the user's mistake: padding without a mask
    assert len(seen) == 1 and seen[0].filename == __file__
    hub._WARNED.discard("padding")


def _classify_notes_texts_with_no_known_word(tmp_path):
    from attnkit.data.news import train_word_tokenizer

    tok = train_word_tokenizer(["good film", "bad plot"], min_frequency=1)
    model = AttentionClassifier(ClassifierConfig(labels=("neg", "pos"), vocab_size=tok.vocab_size, embed_dim=4,
                                                 d_model=6, ff_dim=3), tok)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        model.classify(["good plot", "xyz qwe rty"])
    assert len(seen) == 1 and "text(s) [1] hold no word the model knows" in str(seen[0].message)
    assert seen[0].filename == __file__


def _generate_warns_on_right_padding_without_mask(tmp_path):
    gpt = GPT(GPTConfig(vocab_size=50, n_positions=16, n_embd=8, n_layer=1, n_head=2, pad_token_id=0)).eval()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        gpt.generate(torch.tensor([[5, 6, 7], [5, 0, 0]]), max_new_tokens=2)
        gpt.generate(torch.tensor([[0, 6, 7], [5, 6, 7]]), max_new_tokens=2)  # left padding: silent here
    right = [w for w in seen if "generate: prompt(s) [1]" in str(w.message)]
    assert len(right) == 1 and right[0].filename == __file__, [str(w.message) for w in seen]


def _written_mode(write: Callable[[Path], object], tmp_path: Path) -> set[int]:
    old = os.umask(0o027)
    try:
        write(tmp_path / "out")
    finally:
        os.umask(old)
    return {p.stat().st_mode & 0o777 for p in (tmp_path / "out").rglob("*") if p.is_file()}


def _model_save_follows_umask(tmp_path):
    assert _written_mode(_tiny_models()["seq2seq"], tmp_path) == {0o640}


def _save_pretrained_follows_umask(tmp_path):
    assert _written_mode(_tiny_models()["gpt"], tmp_path) == {0o640}


def _state_files_follow_umask(tmp_path):
    from attnkit.storage.state import write_state

    def write(d: Path) -> None:
        d.mkdir()
        write_state(d, "rng", {"torch": torch.zeros(3, dtype=torch.uint8)})

    assert _written_mode(write, tmp_path) == {0o640}


API_TRAPS = [
    ("bert-summary-keeps-the-users-warning", _summary_leaves_the_padding_warning_to_the_user),
    ("classify-no-known-word", _classify_notes_texts_with_no_known_word),
    ("gpt-generate-right-padding", _generate_warns_on_right_padding_without_mask),
    ("model-save-umask", _model_save_follows_umask),
    ("save-pretrained-umask", _save_pretrained_follows_umask),
    ("checkpoint-state-umask", _state_files_follow_umask),
]


@pytest.mark.parametrize(("case", "check"), API_TRAPS, ids=[c[0] for c in API_TRAPS])
def test_api_trap(tmp_path, case, check):
    check(tmp_path)


def test_classify_cli_notes_unknown_words(ws, capsys, monkeypatch):
    """The command prints the model's note on stderr beside the answer."""
    import attnkit.cli.classify as command

    def fake_load(path):
        from attnkit.data.news import train_word_tokenizer

        tok = train_word_tokenizer(["good film", "bad plot"], min_frequency=1)
        return AttentionClassifier(ClassifierConfig(labels=("neg", "pos"), vocab_size=tok.vocab_size, embed_dim=4,
                                                    d_model=6, ff_dim=3), tok)

    monkeypatch.setattr(command, "load_classifier", fake_load)
    assert main(["classify", str(ws), "xyz qwe rty"]) == 0
    captured = capsys.readouterr()
    assert "note: classify: text(s) [0] hold no word the model knows" in " ".join(captured.err.split())
    assert len(captured.out.splitlines()) == 1


def test_battery_size():
    cases = (len(OVERSIZED_CONFIGS) + len(OVERSIZED_OPTIONS) + len(_commands()) + len(FILE_ERRORS)
             + len(CTRL_C_DELAYS) + len(API_TRAPS))
    assert cases >= 100, cases
