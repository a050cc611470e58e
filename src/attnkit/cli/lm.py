"""``attnkit train gpt``, ``attnkit train bert`` and ``attnkit generate``.

A training run on a UTF-8 text file writes into ``--out DIR``::

    DIR/run.json            how the data was made (text file, seed, block size / max length, split)
    DIR/model/              the best model so far: a Hugging Face directory with tokenizer.json that
                            attnkit.load, GPT.from_pretrained / BertForPreTraining.from_pretrained and
                            transformers all read
    DIR/checkpoint/         everything --resume needs
    DIR/train_log.jsonl     one JSON record per log / evaluation

Every input problem (missing, empty or non-UTF-8 file, text too short, bad option value) is reported
before anything is written.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import torch
import typer
from rich.console import Console

from attnkit.cli.main import app, train_app
from attnkit.data.text import (
    BERT_SPECIAL_TOKENS,
    EOS_TOKEN,
    BlockStream,
    SentencePairStream,
    encode_documents,
    encode_text,
    eval_blocks,
    load_tokenizer,
    read_text,
    split_documents,
    split_sentences,
    train_byte_bpe,
    train_wordpiece,
    unknown_pieces,
)
from attnkit.errors import InputError
from attnkit.models.bert import BertConfig, mask_tokens
from attnkit.models.gpt import GPT, GPTConfig
from attnkit.models.hub import read_config
from attnkit.models.lm_adapters import BertPretrainingModel, GPTLanguageModel
from attnkit.training import TrainConfig, Trainer, TrainResult
from attnkit.training.runtime import resolve_device, seed_everything

RUN_FILE = "run.json"
MAX_EVAL_BATCHES = 50
console = Console(stderr=True)


@dataclass
class TextRunSpec:
    """How a language-model run's data is made; saved as ``run.json`` (``--resume`` reads it back)."""

    model: str = "gpt"  # gpt | bert
    text: str = ""  # the text file
    seed: int = 0  # data order, masks and initialisation
    length: int = 128  # GPT block size / BERT longest pair (tokens, specials included)
    valid_fraction: float = 0.1  # trailing part of the text held out for validation
    mlm_probability: float = 0.15  # BERT: share of tokens chosen for the masked LM

    @classmethod
    def read(cls, path: Path) -> TextRunSpec | None:
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in fields(cls)}})


# ----------------------------------------------------------------------------------------------------------
# Shared checks
# ----------------------------------------------------------------------------------------------------------


def _check_out(out: Path, resume: bool) -> None:
    ckpt = out / "checkpoint"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file. Expected a directory")
    if resume and not ckpt.is_dir():
        raise InputError(f"--resume: {str(out)!r} has no checkpoint/ to resume from")
    if not resume and ckpt.exists():
        raise InputError(
            f"{str(out)!r} already holds a run; pass --resume to continue it or choose another --out"
        )


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


def _check_common(
    layers: int,
    heads: int,
    width: int,
    steps: int,
    batch_size: int,
    lr: float,
    dropout: float,
    valid_fraction: float,
    threads: int | None,
) -> None:
    _need(layers >= 1, f"--layers must be >= 1. Received: {layers}")
    _need(heads >= 1, f"--heads must be >= 1. Received: {heads}")
    _need(
        width >= 1 and width % heads == 0,
        f"--width must be a positive multiple of --heads. Received: --width {width}, --heads {heads}",
    )
    _need(steps >= 1, f"--steps must be >= 1. Received: {steps}")
    _need(batch_size >= 1, f"--batch-size must be >= 1. Received: {batch_size}")
    _need(lr > 0, f"--lr must be > 0. Received: {lr}")
    _need(0.0 <= dropout < 1.0, f"--dropout must be in [0, 1). Received: {dropout}")
    _need(0.0 <= valid_fraction <= 0.5, f"--valid-fraction must be in [0, 0.5]. Received: {valid_fraction}")
    _need(threads is None or threads >= 1, f"--threads must be >= 1. Received: {threads}")
    if threads is not None:
        torch.set_num_threads(threads)


def _warmup(warmup: int, steps: int) -> int:
    """``warmup``, or ``steps // 10`` when it lasts the whole run (it would never reach the peak rate)."""
    _need(warmup >= 0, f"--warmup must be >= 0. Received: {warmup}")
    return steps // 10 if warmup >= steps else warmup


def _start(out: Path, spec: TextRunSpec, warmup: int, used: int) -> None:
    """Called once every input is checked: the first output and the first file written."""
    if used != warmup:
        console.print(f"[yellow]note:[/] --warmup {warmup} is not shorter than --steps; using {used}")
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_FILE).write_text(json.dumps(asdict(spec), indent=2) + "\n", encoding="utf-8")


def _spec_for(out: Path, resume: bool, fresh: TextRunSpec) -> TextRunSpec:
    if not resume:
        return fresh
    spec = TextRunSpec.read(out / RUN_FILE)
    if spec is None:
        raise InputError(f"--resume: {str(out)!r} has no {RUN_FILE}")
    if spec.model != fresh.model:
        raise InputError(f"--resume: the run in {str(out)!r} trains {spec.model!r}, not {fresh.model!r}")
    spec.text = fresh.text  # the same text may have moved; the data stream checks it is the same
    return spec


def _resumed(model_cls: type[GPTLanguageModel] | type[BertPretrainingModel], out: Path) -> Any:
    """The model (with its tokenizer) saved in ``out/checkpoint``."""
    model = model_cls.load(out / "checkpoint")
    if model.tokenizer is None:
        raise InputError(f"--resume: {str(out / 'checkpoint')!r} has no tokenizer.json")
    return model


def _fit(model: Any, config: TrainConfig, stream: Any, valid: list) -> TrainResult:
    """Train ``model`` on ``stream``; evaluate on the ``valid`` batches when there are any."""
    evaluate = (lambda m: m.evaluate_batches(valid)) if valid else None
    return Trainer(model, config, stream, evaluate=evaluate).fit()


def _done(result: TrainResult, best: str | None) -> str:
    """Start of the closing line: steps, time, stop reason, then ``best`` (or the final training loss)."""
    done = f"done: {result.steps} steps in {result.elapsed:.1f} s ({result.stop_reason}); "
    if best is not None:
        done += best
    elif result.final_loss is not None:
        done += f"final training loss {result.final_loss:.4f}; "
    return done


# ----------------------------------------------------------------------------------------------------------
# attnkit train gpt
# ----------------------------------------------------------------------------------------------------------


@train_app.command("gpt")
def train_gpt(
    text: Path = typer.Option(
        ..., "--text", help="UTF-8 text file to learn (any text; the whole file is one token stream)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run directory: model/, checkpoint/, run.json, train_log.jsonl."
    ),
    layers: int = typer.Option(4, "--layers", help="Transformer blocks L."),
    heads: int = typer.Option(4, "--heads", help="Attention heads H per block (--width must be a multiple)."),
    width: int = typer.Option(128, "--width", help="Model width E (embedding and hidden size)."),
    block_size: int = typer.Option(
        128,
        "--block-size",
        help="Tokens per training block; also the longest "
        "context (prompt + generated tokens) the model handles.",
    ),
    vocab_size: int = typer.Option(
        2000,
        "--vocab-size",
        help="Byte-level BPE vocabulary (>= 257: 256 bytes "
        "+ <|endoftext|>; fewer if the text has fewer merges).",
    ),
    tokenizer: Path | None = typer.Option(
        None,
        "--tokenizer",
        help="Use this tokenizer.json (or a directory holding one, e.g. an earlier run's model/) instead of "
        "training one; --vocab-size is then ignored.",
    ),
    dropout: float = typer.Option(
        0.1, "--dropout", help="Dropout on embeddings, attention weights and block outputs."
    ),
    steps: int = typer.Option(2000, "--steps", help="Optimiser steps in total (counting resumed ones)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Blocks per batch."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate of AdamW."),
    schedule: str = typer.Option("cosine", "--schedule", help="constant, warmup, inverse_sqrt or cosine."),
    warmup: int = typer.Option(
        100, "--warmup", help="Linear warmup steps (cut to --steps/10 if longer than the run)."
    ),
    eval_every: int = typer.Option(
        200, "--eval-every", help="Evaluate on the held-out text and checkpoint every N steps."
    ),
    valid_fraction: float = typer.Option(
        0.1,
        "--valid-fraction",
        help="Trailing share of the text held out "
        "for validation (0: none; also none if shorter than a block).",
    ),
    patience: int | None = typer.Option(
        None, "--patience", help="Stop after N evaluations without a lower validation loss."
    ),
    time_budget: float | None = typer.Option(
        None, "--time-budget", help="Stop training after this many seconds."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of block offsets and order, and of initialisation."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --out from its checkpoint (same "
        "text; model, tokenizer and block size come from the run).",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for torch (default: torch's choice)."
    ),
) -> None:
    """Train a small GPT (decoder-only causal LM, GPT-2 architecture) on a text file; save it in --out."""
    out = Path(out)
    _check_out(out, resume)
    _check_common(layers, heads, width, steps, batch_size, lr, dropout, valid_fraction, threads)
    _need(block_size >= 2, f"--block-size must be >= 2. Received: {block_size}")
    _need(
        vocab_size >= 257,
        f"--vocab-size must be >= 257 for byte-level BPE (256 bytes + <|endoftext|>). Received: {vocab_size}",
    )
    used_warmup = _warmup(warmup, steps)
    spec = _spec_for(out, resume, TextRunSpec("gpt", str(text), seed, block_size, valid_fraction))
    raw = read_text(text)
    # 1. tokenizer and model: trained / built fresh, or taken from the checkpoint
    if resume:
        model = _resumed(GPTLanguageModel, out)
    else:
        tok = load_tokenizer(tokenizer) if tokenizer else train_byte_bpe([raw], vocab_size=vocab_size)
        seed_everything(spec.seed)  # the initial weights depend on --seed only
        eos = tok.token_to_id(EOS_TOKEN)
        model = GPTLanguageModel(
            GPTConfig(
                vocab_size=tok.get_vocab_size(),
                n_positions=spec.length,
                n_embd=width,
                n_layer=layers,
                n_head=heads,
                resid_pdrop=dropout,
                embd_pdrop=dropout,
                attn_pdrop=dropout,
                bos_token_id=eos,
                eos_token_id=eos,
            )
        )
        model.tokenizer = tok
    # 2. data: the token stream, its trailing part held out
    ids = encode_text(model.tokenizer, raw)
    n_valid = int(len(ids) * spec.valid_fraction)
    if n_valid < spec.length or len(ids) - n_valid < spec.length:
        n_valid = 0
    train_ids, valid_ids = ids[: len(ids) - n_valid], ids[len(ids) - n_valid :]
    stream = BlockStream(train_ids, block_size=spec.length, batch_size=batch_size, seed=spec.seed)
    valid = eval_blocks(valid_ids, spec.length, batch_size)[:MAX_EVAL_BATCHES] if n_valid else []
    config = TrainConfig(
        steps=steps,
        lr=lr,
        schedule=schedule,
        warmup_steps=used_warmup,
        eval_every=eval_every,
        patience=patience,
        metric="loss",
        mode="min",
        seed=spec.seed,
        out_dir=str(out),
        progress=not quiet,
        device=device,
        time_budget=time_budget,
        resume=resume,
    )
    console.print(
        f"training gpt ({model.config.n_layer} layers, {model.config.n_head} heads, width "
        f"{model.config.n_embd}, {model.num_parameters():,} parameters) on {text}: {len(train_ids):,} "
        f"tokens in blocks of {spec.length}, vocabulary {model.config.vocab_size}"
        + (f"; {len(valid_ids):,} tokens for validation" if valid else "; no validation split")
    )
    # 3. train
    _start(out, spec, warmup, used_warmup)
    result = _fit(model, config, stream, valid)
    best = None
    if result.best_metric is not None:
        best = (
            f"best validation loss {result.best_metric:.4f} "
            f"(perplexity {math.exp(min(result.best_metric, 50)):.2f})"
            f" at step {result.best_step}; "
        )
    console.print(_done(result, best) + f'model in {out / "model"}; try: attnkit generate {out} "..."')


# ----------------------------------------------------------------------------------------------------------
# attnkit train bert
# ----------------------------------------------------------------------------------------------------------


@train_app.command("bert")
def train_bert(
    text: Path = typer.Option(
        ...,
        "--text",
        help="UTF-8 text file: one sentence (or segment) per line, blank lines between documents.",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run directory: model/, checkpoint/, run.json, train_log.jsonl."
    ),
    layers: int = typer.Option(4, "--layers", help="Encoder layers L."),
    heads: int = typer.Option(4, "--heads", help="Attention heads H per layer (--width must be a multiple)."),
    width: int = typer.Option(128, "--width", help="Hidden size E (the feed-forward width is 4 E)."),
    max_len: int = typer.Option(
        64,
        "--max-len",
        help="Longest [CLS] A [SEP] B [SEP] in tokens; longer pairs are cut, longest sentence first.",
    ),
    vocab_size: int = typer.Option(
        2000,
        "--vocab-size",
        help="WordPiece vocabulary, 5 special tokens included (fewer if the text has fewer pieces).",
    ),
    tokenizer: Path | None = typer.Option(
        None,
        "--tokenizer",
        help="Use this tokenizer.json (or a directory holding one, e.g. an earlier run's model/) instead of "
        "training one; it needs [PAD] [UNK] [CLS] [SEP] [MASK]. WordPiece training is not reproducible "
        "when merge counts tie (a tokenizers library issue): reuse a vocabulary to repeat a run exactly.",
    ),
    lowercase: bool = typer.Option(
        True, "--lowercase/--cased", help="Lower-case the text (uncased BERT) or keep case."
    ),
    mlm_probability: float = typer.Option(
        0.15,
        "--mlm-probability",
        help="Share of tokens the masked LM predicts (of those: 80% [MASK], 10% random, 10% unchanged).",
    ),
    dropout: float = typer.Option(
        0.1, "--dropout", help="Dropout on embeddings, attention weights and layer outputs."
    ),
    steps: int = typer.Option(2000, "--steps", help="Optimiser steps in total (counting resumed ones)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Sentence pairs per batch."),
    lr: float = typer.Option(5e-4, "--lr", help="Peak learning rate of AdamW."),
    schedule: str = typer.Option("cosine", "--schedule", help="constant, warmup, inverse_sqrt or cosine."),
    warmup: int = typer.Option(
        100, "--warmup", help="Linear warmup steps (cut to --steps/10 if longer than the run)."
    ),
    eval_every: int = typer.Option(
        200, "--eval-every", help="Evaluate on the held-out sentences and checkpoint every N steps."
    ),
    valid_fraction: float = typer.Option(
        0.1,
        "--valid-fraction",
        help="Trailing share of the sentences held out for validation (0: none; also none if fewer than 3).",
    ),
    patience: int | None = typer.Option(
        None, "--patience", help="Stop after N evaluations without a lower validation loss."
    ),
    time_budget: float | None = typer.Option(
        None, "--time-budget", help="Stop training after this many seconds."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of sentence pairs, masks, order and initialisation."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --out from its checkpoint (same "
        "text; model, tokenizer and lengths come from the run).",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for torch (default: torch's choice)."
    ),
) -> None:
    """Pretrain a small BERT on a text file with masked LM + next-sentence prediction; save it in --out.

    The log's "accuracy" is the masked-LM accuracy (share of chosen tokens predicted exactly);
    evaluations also report next-sentence accuracy.
    """
    out = Path(out)
    _check_out(out, resume)
    _check_common(layers, heads, width, steps, batch_size, lr, dropout, valid_fraction, threads)
    _need(max_len >= 5, f"--max-len must be >= 5 ([CLS] A [SEP] B [SEP]). Received: {max_len}")
    _need(vocab_size >= 6, f"--vocab-size must be >= 6 (5 special tokens + pieces). Received: {vocab_size}")
    _need(0.0 < mlm_probability < 1.0, f"--mlm-probability must be in (0, 1). Received: {mlm_probability}")
    used_warmup = _warmup(warmup, steps)
    spec = _spec_for(
        out, resume, TextRunSpec("bert", str(text), seed, max_len, valid_fraction, mlm_probability)
    )
    raw = read_text(text)
    documents = split_sentences(raw)
    # 1. tokenizer and model
    if resume:
        model = _resumed(BertPretrainingModel, out)
    else:
        if tokenizer:
            tok = load_tokenizer(tokenizer, required=BERT_SPECIAL_TOKENS)
        else:
            sentences = [s for doc in documents for s in doc]
            tok = train_wordpiece(sentences, vocab_size=vocab_size, lowercase=lowercase)
        seed_everything(spec.seed)  # the initial weights depend on --seed only
        model = BertPretrainingModel(
            BertConfig(
                vocab_size=tok.get_vocab_size(),
                hidden_size=width,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                intermediate_size=4 * width,
                max_position_embeddings=spec.length,
                hidden_dropout_prob=dropout,
                attention_probs_dropout_prob=dropout,
                pad_token_id=tok.token_to_id("[PAD]"),
            )
        )
        model.tokenizer = tok
    tok = model.tokenizer
    # 2. data: sentence pairs with masks; trailing sentences held out
    mask_fn = partial(
        mask_tokens,
        mask_token_id=tok.token_to_id("[MASK]"),
        vocab_size=model.config.vocab_size,
        mlm_probability=spec.mlm_probability,
    )
    encoded = encode_documents(tok, documents)
    train_docs, valid_docs = split_documents(encoded, spec.valid_fraction)
    ids = {
        "cls_id": tok.token_to_id("[CLS]"),
        "sep_id": tok.token_to_id("[SEP]"),
        "pad_id": tok.token_to_id("[PAD]"),
    }
    stream = SentencePairStream(
        train_docs, mask_fn, max_len=spec.length, batch_size=batch_size, seed=spec.seed, **ids
    )
    valid = []
    if valid_docs and sum(len(d) > 1 for d in valid_docs):
        valid = SentencePairStream(
            valid_docs, mask_fn, max_len=spec.length, batch_size=batch_size, seed=spec.seed + 1, **ids
        ).fixed_batches()[:MAX_EVAL_BATCHES]
    config = TrainConfig(
        steps=steps,
        lr=lr,
        schedule=schedule,
        warmup_steps=used_warmup,
        eval_every=eval_every,
        patience=patience,
        metric="loss",
        mode="min",
        seed=spec.seed,
        out_dir=str(out),
        progress=not quiet,
        device=device,
        time_budget=time_budget,
        resume=resume,
    )
    c = model.config
    console.print(
        f"training bert ({c.num_hidden_layers} layers, {c.num_attention_heads} heads, width "
        f"{c.hidden_size}, {model.num_parameters():,} parameters) on {text}: "
        f"{len(stream.sentences):,} sentences, {len(stream.has_next):,} pairs per epoch, vocabulary "
        f"{c.vocab_size}" + (f"; {len(valid)} validation batches" if valid else "; no validation split")
    )
    # 3. train
    _start(out, spec, warmup, used_warmup)
    result = _fit(model, config, stream, valid)
    best = None
    if result.history:
        h = next((h for h in result.history if h["step"] == result.best_step), result.history[-1])
        best = (
            f"validation at step {h['step']}: MLM accuracy {h['mlm_accuracy']:.4f}, MLM loss "
            f"{h['mlm_loss']:.4f}, NSP accuracy {h['nsp_accuracy']:.4f}; "
        )
    console.print(_done(result, best) + f"model in {out / 'model'}")


# ----------------------------------------------------------------------------------------------------------
# attnkit generate
# ----------------------------------------------------------------------------------------------------------


def load_gpt(path: str | Path) -> GPT:
    """The GPT in ``path`` (a run directory of ``attnkit train gpt``, its ``model/``, or any Hugging Face
    GPT-2 directory with ``tokenizer.json``); ``InputError`` for anything else."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"model directory {str(path)!r} does not exist")
    directory = path if (path / "config.json").is_file() else path / "model"
    if not (directory / "config.json").is_file():
        raise InputError(
            f"{str(path)!r} holds no model: expected config.json in it or in {str(path / 'model')!r}"
        )
    config = read_config(directory)
    if config.get("model_type") != "gpt2":
        what = config.get("kind") or config.get("model_type")
        raise InputError(
            f"{str(directory)!r} holds a {what!r} model, not a GPT; `attnkit generate` needs a "
            f"directory written by `attnkit train gpt` or a Hugging Face GPT-2 directory"
        )
    model = GPT.from_pretrained(directory)
    if model.tokenizer is None:
        raise InputError(f"{str(directory)!r} has no tokenizer.json; `attnkit generate` needs the tokenizer")
    return model


@app.command("generate")
def generate_cmd(
    model_dir: Path = typer.Argument(
        ...,
        help="A run directory of `attnkit train gpt` (or its model/), or a "
        "Hugging Face GPT-2 directory with tokenizer.json.",
    ),
    prompt: str = typer.Argument(..., help="Text to continue (empty: start from <|endoftext|>)."),
    max_new_tokens: int = typer.Option(
        50,
        "--max-new-tokens",
        help="Tokens to generate (fewer only when the end-of-text token comes, with --stop-at-eos).",
    ),
    sample: bool = typer.Option(
        False,
        "--sample/--greedy",
        help="Sample from the softmax, or take the most likely token each step (default).",
    ),
    temperature: float = typer.Option(
        1.0, "--temperature", help="With --sample: divide the logits by this (< 1 sharper, > 1 flatter)."
    ),
    top_k: int | None = typer.Option(
        None, "--top-k", help="With --sample: draw only among the K most likely tokens."
    ),
    top_p: float | None = typer.Option(
        None,
        "--top-p",
        help="With --sample: draw only among the most likely "
        "tokens whose probabilities add up to P (nucleus sampling).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of sampling (the same seed gives the same text)."),
    stop_at_eos: bool = typer.Option(
        True, "--stop-at-eos/--no-stop-at-eos", help="Stop at the model's end-of-text token."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
) -> None:
    """Continue PROMPT with a trained GPT and print the continuation."""
    _need(max_new_tokens >= 1, f"--max-new-tokens must be >= 1. Received: {max_new_tokens}")
    _need(temperature > 0, f"--temperature must be > 0. Received: {temperature}")
    _need(top_k is None or top_k >= 1, f"--top-k must be >= 1. Received: {top_k}")
    _need(top_p is None or 0 < top_p <= 1, f"--top-p must be in (0, 1]. Received: {top_p}")
    if not sample and (top_k is not None or top_p is not None or temperature != 1.0):
        console.print("[yellow]note:[/] --temperature/--top-k/--top-p apply only with --sample")
    model = load_gpt(model_dir)
    tok, c = model.tokenizer, model.config
    bad = unknown_pieces(tok, prompt)
    if bad:
        raise InputError(f"the prompt has text the model's tokenizer cannot encode: {bad[:10]}")
    ids = tok.encode(prompt, add_special_tokens=False).ids
    eos = c.eos_token_id if c.eos_token_id is not None else tok.token_to_id(EOS_TOKEN)
    if not ids:
        _need(eos is not None, "empty prompt and no end-of-text token to start from; give a prompt")
        ids = [eos]
    _need(
        len(ids) + max_new_tokens <= c.n_positions,
        f"prompt ({len(ids)} tokens) + --max-new-tokens {max_new_tokens} = {len(ids) + max_new_tokens} "
        f"is more than the model's context of {c.n_positions} tokens; shorten the prompt or lower "
        "--max-new-tokens",
    )
    dev = resolve_device(device)
    model.to(dev)
    generator = torch.Generator(device=dev).manual_seed(seed)
    out = model.generate(
        torch.tensor([ids], device=dev),
        max_new_tokens,
        do_sample=sample,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        eos_token_id=eos if stop_at_eos else None,
        generator=generator,
    )
    new = [i for i in out[0, len(ids) :].tolist() if i != eos]
    full, head = tok.decode(ids + new), tok.decode(ids)
    text = full[len(head) :] if full.startswith(head) else tok.decode(new)
    print(text)
