"""``attnkit train gpt``, ``attnkit train bert`` and ``attnkit generate`` end to end, in tmp dirs.

References: an untrained model's loss is about ln(V) (uniform guess); a memorised line must come back
word for word; the saved directories must give ``transformers``' GPT2LMHeadModel / BertForPreTraining
the same logits as attnkit's models (peer library with the same weights).
"""

from __future__ import annotations

import json
import math
import random
import runpy
import sys
from pathlib import Path

import pytest
import torch
import typer

from attnkit.cli.main import app, main

PATTERN = "the quick brown fox jumps over the lazy dog."
FAST = ["--quiet", "--threads", "1", "--dropout", "0", "--warmup", "10"]
GPT_SMALL = [
    "--layers",
    "2",
    "--heads",
    "2",
    "--d-model",
    "64",
    "--block-size",
    "32",
    "--vocab-size",
    "300",
    "--batch-size",
    "16",
    "--lr",
    "3e-3",
    *FAST,
]
BERT_SMALL = [
    "--layers",
    "2",
    "--heads",
    "2",
    "--d-model",
    "64",
    "--max-len",
    "32",
    "--vocab-size",
    "200",
    "--batch-size",
    "32",
    "--lr",
    "2e-3",
    *FAST,
]


def write_corpus(path: Path, lines: int = 300) -> Path:
    """Generated sentences, every third line the same memorable one."""
    rng = random.Random(0)
    subj = ["the cat", "a dog", "my friend", "the teacher", "a bird", "the child"]
    verb = ["sees", "likes", "finds", "follows", "draws", "hears"]
    obj = ["the ball", "a tree", "the river", "a small house", "the moon", "an old boat"]
    text = [
        PATTERN if i % 3 == 0 else f"{rng.choice(subj)} {rng.choice(verb)} {rng.choice(obj)}."
        for i in range(lines)
    ]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def log_records(run: Path, event: str) -> list[dict]:
    lines = (run / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("attnkit: error: "), err
    return err


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("text") / "corpus.txt")


@pytest.fixture(scope="module")
def gpt_run(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpt") / "run"
    code = main(
        [
            "train",
            "gpt",
            "--data",
            str(corpus),
            "--out",
            str(out),
            "--steps",
            "150",
            "--eval-every",
            "50",
            *GPT_SMALL,
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def bert_run(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bert") / "run"
    code = main(
        [
            "train",
            "bert",
            "--data",
            str(corpus),
            "--out",
            str(out),
            "--steps",
            "200",
            "--eval-every",
            "25",
            *BERT_SMALL,
        ]
    )
    assert code == 0
    return out


# ---------------------------------------------------------------------------------------------- GPT


def test_gpt_training_loss_falls(gpt_run):
    train = log_records(gpt_run, "train")
    vocab = json.loads((gpt_run / "model" / "config.json").read_text())["vocab_size"]
    assert [r["step"] for r in train] == [50, 100, 150]
    losses = [r["loss"] for r in train]
    assert losses[0] > losses[1] > losses[2]
    assert losses[-1] < 0.25 * math.log(vocab)  # far below the uniform guess ln(V)
    evals = log_records(gpt_run, "eval")
    assert evals[-1]["loss"] < evals[0]["loss"] and "perplexity" in evals[-1]
    assert {"model", "checkpoint", "run.json", "train_log.jsonl"} <= {p.name for p in gpt_run.iterdir()}
    assert (gpt_run / "model" / "tokenizer.json").is_file()


def test_generate_reproduces_the_memorised_line(gpt_run, capsys):
    capsys.readouterr()
    assert main(["generate", str(gpt_run), "the quick brown", "--max-new-tokens", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(PATTERN.removeprefix("the quick brown")), out


def test_generate_sampling_is_reproducible_by_seed(gpt_run, capsys):
    runs = []
    for seed in (1, 1, 2, 3, 4):
        capsys.readouterr()
        args = [
            "generate",
            str(gpt_run / "model"),
            "a dog",
            "--sample",
            "--temperature",
            "1.5",
            "--top-k",
            "50",
            "--max-new-tokens",
            "20",
            "--seed",
            str(seed),
        ]
        assert main(args) == 0
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1]
    assert len(set(runs[1:])) > 1  # different seeds: not all the same text


def test_saved_gpt_matches_transformers(gpt_run):
    transformers = pytest.importorskip("transformers")
    import attnkit
    from attnkit.models.gpt import GPT

    ours = GPT.from_pretrained(gpt_run / "model")
    theirs = transformers.GPT2LMHeadModel.from_pretrained(gpt_run / "model").eval()
    ids = torch.tensor([ours.tokenizer.encode(PATTERN)])
    with torch.no_grad():
        assert torch.allclose(ours(ids).logits, theirs(ids).logits, atol=1e-4)
    loaded = attnkit.load(gpt_run / "model")
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, theirs(ids).logits, atol=1e-4)
    assert loaded.tokenizer.decode(ids[0].tolist()) == PATTERN


def test_gpt_resume_equals_one_run(corpus, tmp_path):
    common = ["--data", str(corpus), "--schedule", "constant", "--eval-every", "10", *GPT_SMALL]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", "gpt", "--out", str(one), "--steps", "20", *common]) == 0
    assert main(["train", "gpt", "--out", str(two), "--steps", "10", *common]) == 0
    assert main(["train", "gpt", "--out", str(two), "--steps", "20", "--resume", *common]) == 0
    from safetensors.torch import load_file

    a, b = (
        load_file(one / "checkpoint" / "model.safetensors"),
        load_file(two / "checkpoint" / "model.safetensors"),
    )
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert [r["event"] for r in map(json.loads, (two / "train_log.jsonl").read_text().splitlines())][:3] == [
        "start",
        "train",
        "eval",
    ] and log_records(two, "resume")


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "checkpoint" / "model.safetensors")


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_gpt_runs_are_deterministic_by_seed(corpus, tmp_path):
    args = ["train", "gpt", "--data", str(corpus), "--steps", "5", "--eval-every", "5", *GPT_SMALL]
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert main([*args, "--out", str(tmp_path / name), "--seed", seed]) == 0
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not _same(_weights(tmp_path / "a"), _weights(tmp_path / "c"))


# ---------------------------------------------------------------------------------------------- BERT


def test_bert_mlm_loss_falls_and_accuracy_reported(bert_run):
    evals = log_records(bert_run, "eval")
    vocab = json.loads((bert_run / "model" / "config.json").read_text())["vocab_size"]
    assert len(evals) == 8
    first, last = evals[0], evals[-1]
    assert last["mlm_loss"] < first["mlm_loss"] - 0.5
    assert last["mlm_loss"] < 0.5 * math.log(vocab)  # well below the uniform guess ln(V)
    assert last["mlm_accuracy"] > 0.3 and 0.0 <= last["nsp_accuracy"] <= 1.0
    assert all("accuracy" in r for r in log_records(bert_run, "train"))  # MLM accuracy in the training log


def test_bert_summary_line_reports_mlm_accuracy(corpus, tmp_path, capsys):
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "bert",
                "--data",
                str(corpus),
                "--out",
                str(tmp_path / "b"),
                "--steps",
                "4",
                "--eval-every",
                "2",
                *BERT_SMALL,
            ]
        )
        == 0
    )
    assert "MLM accuracy" in capsys.readouterr().err


def test_bert_runs_with_a_saved_tokenizer_are_deterministic_by_seed(bert_run, corpus, tmp_path):
    args = ["train", "bert", "--data", str(corpus), "--steps", "5", "--eval-every", "5", *BERT_SMALL]
    args += ["--tokenizer", str(bert_run / "model")]
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert main([*args, "--out", str(tmp_path / name), "--seed", seed]) == 0
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not _same(_weights(tmp_path / "a"), _weights(tmp_path / "c"))
    saved = (bert_run / "model" / "tokenizer.json").read_text(encoding="utf-8")
    assert (tmp_path / "a" / "model" / "tokenizer.json").read_text(encoding="utf-8") == saved


def test_bert_refuses_a_tokenizer_without_its_special_tokens(gpt_run, corpus, tmp_path, capsys):
    capsys.readouterr()
    args = [
        "train",
        "bert",
        "--data",
        str(corpus),
        "--out",
        str(tmp_path / "r"),
        "--tokenizer",
        str(gpt_run / "model"),
    ]
    assert main([*args, "--quiet"]) == 2
    assert "lacks the special tokens ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']" in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_saved_bert_matches_transformers(bert_run):
    transformers = pytest.importorskip("transformers")
    from attnkit.models.bert_heads import BertForPreTraining

    ours = BertForPreTraining.load(bert_run / "model")
    theirs = transformers.BertForPreTraining.from_pretrained(bert_run / "model").eval()
    tok = transformers.AutoTokenizer.from_pretrained(bert_run / "model")
    enc = tok(
        ["the cat sees", "a dog likes the moon"], ["a tree.", "the river"], padding=True, return_tensors="pt"
    )
    assert enc.input_ids.tolist()[0] == ours.tokenizer.encode("the cat sees", "a tree.") + [0] * (
        enc.input_ids.shape[1] - len(ours.tokenizer.encode("the cat sees", "a tree."))
    )
    with torch.no_grad():
        mine = ours(enc.input_ids, enc.attention_mask.bool(), enc.token_type_ids)
        ref = theirs(**enc)
    real = enc.attention_mask.bool()
    assert torch.allclose(mine.prediction_logits[real], ref.prediction_logits[real], atol=1e-4)
    assert torch.allclose(mine.seq_relationship_logits, ref.seq_relationship_logits, atol=1e-4)


# ---------------------------------------------------------------------------------------------- bad input


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("año\n".encode("latin-1"))
    short = tmp_path / "short.txt"
    short.write_text("one line only\n", encoding="utf-8")
    return {
        "missing": (tmp_path / "nope.txt", "does not exist"),
        "empty": (empty, "is empty"),
        "latin1": (latin, "line 1: not valid UTF-8: byte 0xf1"),
        "short": (short, "text too short"),
    }


@pytest.mark.parametrize("model", ["gpt", "bert"])
@pytest.mark.parametrize("case", ["missing", "empty", "latin1", "short"])
def test_bad_text_exits_2_with_one_line_and_writes_nothing(model, case, tmp_path, capsys):
    path, message = _bad_files(tmp_path)[case]
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["train", model, "--data", str(path), "--out", str(out), "--steps", "5", "--quiet"]) == 2
    assert message in one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--d-model", "30", "--heads", "4"],
            "--d-model must be a positive multiple of --heads. Received: --d-model 30",
        ),
        (["--vocab-size", "100"], "--vocab-size must be >= 257 for byte-level BPE"),
        (["--block-size", "1"], "--block-size must be >= 2. Received: 1"),
        (["--valid-fraction", "0.9"], "--valid-fraction must be in [0, 0.5]. Received: 0.9"),
        (["--schedule", "wobbly"], "schedule: expected one of"),
    ],
)
def test_bad_gpt_options(corpus, tmp_path, capsys, args, message):
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["train", "gpt", "--data", str(corpus), "--out", str(out), "--quiet", *args]) == 2
    assert message in one_line_error(capsys)
    assert not out.exists()


def test_existing_run_needs_resume(gpt_run, corpus, capsys):
    before = (gpt_run / "train_log.jsonl").read_bytes()
    capsys.readouterr()
    assert (
        main(["train", "gpt", "--data", str(corpus), "--out", str(gpt_run), "--steps", "5", "--quiet"]) == 2
    )
    assert "already holds a run; pass --resume" in one_line_error(capsys)
    assert (gpt_run / "train_log.jsonl").read_bytes() == before


def test_generate_refuses_a_bert_and_missing_dirs(bert_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["generate", str(bert_run), "hello"]) == 2
    assert "holds a 'bert' model, not a GPT" in one_line_error(capsys)
    assert main(["generate", str(tmp_path / "nothing"), "hello"]) == 2
    assert "does not exist" in one_line_error(capsys)
    (tmp_path / "empty_dir").mkdir()
    assert main(["generate", str(tmp_path / "empty_dir"), "hello"]) == 2
    assert "holds no model: expected config.json" in one_line_error(capsys)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--max-new-tokens", "40"],
            "prompt (3 tokens) + --max-new-tokens 40 = 43 is more than the model's context of 32",
        ),
        (["--max-new-tokens", "0"], "--max-new-tokens must be >= 1. Received: 0"),
        (["--sample", "--temperature", "0"], "--temperature must be a finite number > 0. Received: 0.0"),
        (["--sample", "--top-p", "1.5"], "--top-p must be <= 1. Received: 1.5"),
    ],
)
def test_generate_bad_options(gpt_run, capsys, args, message):
    capsys.readouterr()
    assert main(["generate", str(gpt_run), "the quick brown", *args]) == 2
    assert message in one_line_error(capsys)


def test_generate_prompt_the_tokenizer_cannot_encode(tmp_path, capsys):
    """A GPT-2 directory whose tokenizer has an unknown token (not byte-level) refuses unknown text."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from attnkit.models.gpt import GPT, GPTConfig

    vocab = {"[UNK]": 0, "hello": 1, "world": 2}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    gpt = GPT(GPTConfig(vocab_size=3, n_positions=16, n_embd=8, n_layer=1, n_head=2))
    gpt.save_pretrained(tmp_path / "g")
    tok.save(str(tmp_path / "g" / "tokenizer.json"))
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "g"), "hello mañana"]) == 2
    assert "the prompt has text the model's tokenizer cannot encode: ['mañana']" in one_line_error(capsys)
    assert main(["generate", str(tmp_path / "g"), "hello world", "--max-new-tokens", "3"]) == 0


# ---------------------------------------------------------------------------------------------- help


@pytest.mark.parametrize("path", [["train", "gpt"], ["train", "bert"], ["generate"]])
def test_help_explains_every_option(path, capsys):
    import attnkit.cli.lm  # noqa: F401  (registers the commands)

    command = typer.main.get_command(app)
    ctx = command.context_class(command)  # typer ships its own copy of click: use its classes
    for name in path:
        command = command.get_command(ctx, name)
    undocumented = [p.name for p in command.params if not (p.help or "").strip()]
    assert undocumented == []
    assert (command.help or "").strip()
    capsys.readouterr()
    assert main([*path, "--help"]) == 0
    shown = capsys.readouterr().out
    options = [p for p in command.params if p.param_type_name == "option" and not p.hidden]  # hidden: old spellings
    assert len(options) >= 8
    for p in options:
        assert p.opts[0] in shown


# ---------------------------------------------------------------------------------------------- example


def test_example_gpt_generate_runs(tmp_path, capsys, monkeypatch):
    script = Path(__file__).resolve().parents[2] / "examples" / "gpt_generate.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--steps", "120", "--out", str(tmp_path / "ex")])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "fox jumps over the lazy dog" in out




# ---------------------------------------------------------------------------------------------- evaluate


def test_evaluate_gpt_reports_held_out_perplexity(gpt_run, corpus, tmp_path, capsys):
    from attnkit.models.gpt import GPT

    report = tmp_path / "gpt.json"
    capsys.readouterr()
    assert main(["evaluate", str(gpt_run), "--json", str(report), "--device", "cpu", "--threads", "1"]) == 0
    assert "perplexity" in capsys.readouterr().out
    scores = json.loads(report.read_text())
    # independent recount: the trailing 10% of the token stream in blocks of 32, float64 cross-entropy
    model = GPT.from_pretrained(gpt_run / "model").eval()
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)  # the text is encoded line by line
    ids = [i for line in lines for i in model.tokenizer.encode(line, add_special=False)]
    held = ids[len(ids) - int(len(ids) * 0.1):]
    blocks = torch.tensor(held[: len(held) // 32 * 32]).view(-1, 32)  # (N, 32)
    with torch.no_grad():
        logits = model(blocks).logits.double()[:, :-1]  # (N, 31, V)
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), blocks[:, 1:].reshape(-1))
    assert scores["loss"] == pytest.approx(float(nll), rel=1e-4)
    assert scores["perplexity"] == pytest.approx(math.exp(float(nll)), rel=1e-4)
    best = min(log_records(gpt_run, "eval"), key=lambda r: r["loss"])
    assert scores["loss"] == pytest.approx(best["loss"], rel=1e-4)  # what training validated the best model on


def test_evaluate_bert_reports_masked_lm_accuracy(bert_run, corpus, tmp_path, capsys):
    report, whole = tmp_path / "bert.json", tmp_path / "whole.json"
    capsys.readouterr()
    assert main(["evaluate", str(bert_run / "model"), "--json", str(report)]) == 0
    assert "mlm accuracy" in capsys.readouterr().out
    scores = json.loads(report.read_text())
    best = min(log_records(bert_run, "eval"), key=lambda r: r["loss"])  # the saved model, same batches and masks
    assert scores["mlm_accuracy"] == pytest.approx(best["mlm_accuracy"], abs=1e-6)
    assert 0.3 < scores["mlm_accuracy"] <= 1.0 and 0.0 <= scores["nsp_accuracy"] <= 1.0
    assert main(["evaluate", str(bert_run), "--data", str(corpus), "--json", str(whole)]) == 0
    assert json.loads(whole.read_text())["batches"] > scores["batches"]  # the whole file, not its tail


def test_evaluate_a_run_without_held_out_text_asks_for_data(corpus, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "gpt", "--data", str(corpus), "--out", str(out), "--steps", "2", "--valid-fraction", "0",
                 *GPT_SMALL]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 2
    assert "no held-out text to score" in one_line_error(capsys)
