"""The records that turn a model's outputs into pictures: (model, text, image) -> ``AttentionRecord``.

``RECORDS`` maps a model's ``model_type`` to an :class:`Adapter`: one small function per model, through the
model's public API only; ``record_for`` picks it. The pictures and the HTML explorer (``attnkit.viz``) read
only the record, never a model. A new model plugs in with a line in ``RECORDS`` and a function
``(model, text, image, grad) -> AttentionRecord``. Every adapter refuses an input longer than the model's
positions (``InputError``).

    model_type     weights shown                                  grad target y
    bert (+ heads) ``output_attentions``: L x (H, T, T)           norm of the mean last hidden state (or top logit)
    gpt2           ``output_attentions``: L x (H, T, T) causal    logit of the predicted next token
    transformer    encoder self-attention + the alignment         log-probability of the translation
    seq2seq        the alignment (T_out, S) only                  (none)
    classifier     self-attention (if any) + word weights (T,)    logit of the predicted class
    captioner      weights over image regions (T_out, R)          (none)

Shape legend: L layers, H heads, T input tokens, T_out output tokens, S source tokens, R image regions.

Example:
    >>> import torch
    >>> from attnkit.data import Tokenizer
    >>> from attnkit.models.bert import BertConfig
    >>> model = Bert(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
    ...                         intermediate_size=16)).eval()
    >>> model.tokenizer = Tokenizer.train(["a b c"], scheme="char")
    >>> rec = record_for(model, "abc")
    >>> rec.tokens, rec.num_layers, tuple(rec.attentions[0].shape)
    (['<sos>', 'a', 'b', 'c', '<eos>'], 2, (2, 5, 5))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attnkit.errors import InputError
from attnkit.models.bert import Bert
from attnkit.models.captioner import Captioner
from attnkit.models.classifier import AttentionClassifier
from attnkit.models.gpt import GPT
from attnkit.models.seq2seq import Seq2Seq
from attnkit.models.transformer import Transformer
from attnkit.viz.record import AttentionRecord

AdapterFn = Callable[[Any, str, Any, bool], AttentionRecord]


@dataclass(frozen=True)
class Adapter:
    """How to get an :class:`AttentionRecord` from one model type.

    Attributes:
        run: ``(model, text, image, grad) -> AttentionRecord``; ``grad`` asks for ``record.gradients``.
        image: ``"never"`` (text models: an image is refused) or ``"required"`` (the captioner).
        grad: whether ``--method grad`` is supported.
    """

    run: AdapterFn
    image: str = "never"
    grad: bool = True

    def __post_init__(self) -> None:
        if self.image not in ("never", "required"):
            raise ValueError(f"Expected image 'never' or 'required'. Received: {self.image!r}")


def adapter_for(model: Any) -> Adapter:
    """The adapter of ``model.model_type``."""
    model_type = getattr(model, "model_type", None)
    if model_type not in RECORDS:
        raise InputError(f"attnkit viz does not know model_type {model_type!r}. Expected one of: {sorted(RECORDS)}")
    return RECORDS[model_type]


def record_for(model: Any, text: str, image: Any = None, grad: bool = False) -> AttentionRecord:
    """The attention of ``model`` on ``text`` (and ``image`` for the captioner), in eval mode.

    Raises:
        InputError: unknown model_type, an image for a text model or none for the captioner, an input longer than
            the model's positions, ``grad`` for a model without it.
    """
    adapter = adapter_for(model)
    model_type = getattr(model, "model_type", "?")
    if adapter.image == "never" and image is not None:
        raise InputError(f"a {model_type} model reads text only: expected no --image. Received: an image")
    if adapter.image == "required" and image is None:
        raise InputError(f"a {model_type} model describes an image: expected --image PATH. Received: none")
    if grad and not adapter.grad:
        raise InputError(f"--method grad needs per-layer self-attention, which a {model_type} model does not have. "
                         f"Expected --method raw")
    if not isinstance(text, str):
        raise InputError(f"Expected the input to be a string. Received: {type(text).__name__}")
    model.eval()
    return adapter.run(model, text, image, grad)


# -- helpers the adapters share ---------------------------------------------------------------------------
def check_length(n: int, limit: int, what: str) -> None:
    """``InputError`` when an input of ``n`` tokens exceeds the model's ``limit`` positions."""
    if n > limit:
        raise InputError(f"the input has {n} tokens but the model takes at most {limit} ({what}). "
                         f"Expected a shorter input")


def plain_ids(tok: Any, text: str) -> tuple[list[int], list[str]]:
    """Ids of ``text`` with the tokenizer's special tokens, and display tokens, with any fixed padding or
    truncation of its ``tokenizer.json`` turned off (a Hugging Face BERT file pads every input to 128)."""
    from tokenizers import Tokenizer as HFTokenizer

    if getattr(tok, "seq2seq", False):  # attnkit's own <sos> ... <eos> convention: the wrapper adds them
        ids = tok.encode(text)
        return ids, tok.tokens(ids)
    free = HFTokenizer.from_str(hf_backend(tok).to_str())
    free.no_padding()
    free.no_truncation()
    ids = list(free.encode(text).ids)
    byte_level = type(free.model).__name__ == "BPE" and "ByteLevel" in type(free.pre_tokenizer).__name__
    tokens = [free.decode([i], skip_special_tokens=False) if byte_level else free.id_to_token(i) for i in ids]
    return ids, tokens


def hf_backend(tok: Any) -> Any:
    """The Hugging Face ``tokenizers.Tokenizer`` of attnkit's wrapper (``tok.backend``, a property or a method)."""
    from tokenizers import Tokenizer as HFTokenizer

    if isinstance(tok, HFTokenizer):
        return tok
    backend = getattr(tok, "backend", None)
    return backend if isinstance(backend, HFTokenizer) else backend()


def self_attention_run(forward: Callable[[bool], Any], target: Callable[[Any], Tensor], grad: bool,
                       pick: Callable[[Any], tuple[Tensor, ...]] = lambda out: out.attentions
                       ) -> tuple[Any, tuple[Tensor, ...], tuple[Tensor, ...] | None]:
    """Run ``forward(output_attentions)`` once; with ``grad`` keep the graph and differentiate ``target(out)``
    with respect to every layer's weights (none: no gradients). Returns ``(output, per-layer (H, T, T),
    per-layer grads or None)``."""
    with torch.set_grad_enabled(grad):
        out = forward(True)
        weights = pick(out)  # L x (1, H, T, T)
        grads = torch.autograd.grad(target(out), weights, allow_unused=True) if grad and weights else None
    attn = tuple(w[0].detach().float().cpu() for w in weights)
    if grads is not None:
        grads = tuple((torch.zeros_like(w) if g is None else g)[0].detach().float().cpu()
                      for g, w in zip(grads, weights, strict=True))
    return out, attn, grads


# -- one adapter per model type ---------------------------------------------------------------------------
def _tokenizer(model: Any, name: str) -> Any:
    tok = getattr(model, "tokenizers", {}).get(name)
    if tok is None:
        raise InputError(f"this {model.model_type} model has no {name!r} tokenizer (tokenizer.json); attnkit viz needs it "
                         f"to read text")
    return tok


def bert_record(model: Any, text: str, image: Any, grad: bool) -> AttentionRecord:
    """BERT and its heads: ``model(ids, output_attentions=True).attentions``; y = top logit or hidden-state norm."""
    ids, tokens = plain_ids(_tokenizer(model, "text"), text)
    check_length(len(ids), model.config.max_position_embeddings, "max_position_embeddings")
    x = torch.tensor([ids], device=_device(model))  # (1, T)

    def target(out: Any) -> Tensor:
        logits = getattr(out, "logits", None)
        if logits is not None:  # classifier (B, C) or masked LM (B, T, V): the top logit at [CLS] / of the class
            return (logits[0, 0] if logits.dim() == 3 else logits[0]).max()
        return out.last_hidden_state[0].mean(0).norm()

    out, attn, grads = self_attention_run(lambda oa: model(x, output_attentions=oa), target, grad)
    note = "grad: y = the top logit" if getattr(out, "logits", None) is not None else \
        "grad: y = norm of the mean last hidden state"
    return AttentionRecord("bert", tokens, attn, grads, notes=[note] if grad else [])


def gpt_record(model: Any, text: str, image: Any, grad: bool) -> AttentionRecord:
    """GPT: causal weights of the prompt; y = the logit of the predicted next token."""
    ids, tokens = plain_ids(_tokenizer(model, "text"), text)
    if not ids:
        raise InputError("Expected a non-empty input for a GPT model. Received: an empty string")
    check_length(len(ids), model.config.n_positions, "n_positions")
    x = torch.tensor([ids], device=_device(model))  # (1, T)
    out, attn, grads = self_attention_run(lambda oa: model(x, output_attentions=oa),
                                          lambda out: out.logits[0, -1].max(), grad)
    nxt = int(out.logits[0, -1].argmax())
    shown = _decode_one(model, nxt)
    return AttentionRecord("gpt2", tokens, attn, grads, output=f"next token: {shown!r}",
                           notes=[f"grad: y = logit of the next token {shown!r}"] if grad else [])


def _decode_one(model: Any, i: int) -> str:
    tok = model.tokenizers["text"]
    return hf_backend(tok).decode([i], skip_special_tokens=False)


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _translation(model: Any, text: str) -> tuple[list[str], str, Tensor, list[str]]:
    """``(source tokens, output text, alignment (T_out, S), output tokens)`` by ``translate``."""
    source, target = _tokenizer(model, "source"), _tokenizer(model, "target")
    src_ids = source.encode(text)
    check_length(len(src_ids), model.config.max_src_len, "max_src_len")
    ((out_text, alignment),) = model.translate([text], return_alignments=True)
    if alignment is None:
        raise InputError(f"this {model.model_type} model was trained without attention (attention='none'): there is "
                         f"nothing to draw")
    rows = target.tokens(out_text)[1:]  # drop <sos>: rows are the output tokens and the end token
    if len(rows) != alignment.shape[0]:
        rows = [str(i) for i in range(alignment.shape[0])]
    return source.tokens(src_ids), out_text, alignment.float(), rows


def seq2seq_record(model: Any, text: str, image: Any, grad: bool) -> AttentionRecord:
    """RNN encoder-decoder: ``translate(return_alignments=True)``; one alignment, no per-layer weights."""
    tokens, out_text, alignment, rows = _translation(model, text)
    return AttentionRecord("seq2seq", tokens, out_tokens=rows, alignment=alignment, output=out_text)


def transformer_record(model: Any, text: str, image: Any, grad: bool) -> AttentionRecord:
    """Transformer: the alignment of ``translate``, then the encoder's self-attention of the same translation
    (teacher-forced ``forward(..., output_attentions=True)``); y = log-probability of the translation."""
    tokens, out_text, alignment, rows = _translation(model, text)
    src, lengths, _, _ = model.encode_texts([text])  # (1, S), (1,)
    tgt = torch.tensor([_tokenizer(model, "target").encode(out_text)], device=src.device)  # (1, T_out + 1)
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]

    def target(out: Any) -> Tensor:
        return out.logits.log_softmax(-1).gather(-1, tgt_out[..., None]).sum()

    _, attn, grads = self_attention_run(lambda oa: model(src, lengths, tgt_in, output_attentions=oa), target, grad,
                                        pick=lambda out: out.encoder_attentions)
    return AttentionRecord("transformer", tokens, attn, grads, out_tokens=rows, alignment=alignment,
                           output=out_text, notes=["grad: y = log-probability of the translation"] if grad else [])


def classifier_record(model: Any, text: str, image: Any, grad: bool) -> AttentionRecord:
    """AttentionClassifier: ``forward(ids, output_attentions=True)``: self-attention (if any) and word weights."""
    tok = _tokenizer(model, "text")
    ids = tok.encode(text, add_special=False)
    if not ids:
        raise InputError("Expected a non-empty input text. Received: an empty string")
    check_length(len(ids), model.config.max_len, "max_len")
    x = torch.tensor([ids], device=_device(model))  # (1, T)

    def target(out: Any) -> Tensor:
        return out.logits[0].abs().max() if out.logits.shape[-1] == 1 else out.logits[0].max()

    out, attn, grads = self_attention_run(lambda oa: model(x, output_attentions=True), target, grad,
                                          pick=lambda out: out.attentions or ())  # no self-attention: ()
    prob, pred = model.probabilities(out.logits.detach()).max(-1)
    label = f"{model.config.labels[int(pred[0])]} (p={float(prob[0]):.2f})"
    word = None if out.word_weights is None else out.word_weights[0].detach().float().cpu()
    return AttentionRecord("classifier", tok.tokens(ids), attn or None, grads, word_weights=word, output=label)


def captioner_record(model: Any, text: str, image: Any, grad: bool) -> AttentionRecord:
    """Captioner: ``caption_words([image])``: the caption's words and one ``(gh, gw)`` map per word over the
    image as the model saw it (resized to ``image_size`` squared). ``text`` is not read."""
    from PIL import Image

    (described,) = model.caption_words([image])
    maps = described.alignments.float()  # (T_out, gh, gw)
    gh, gw = int(maps.shape[1]), int(maps.shape[2])
    side = min(384, max(int(model.config.image_size), 128))
    seen = np.asarray(Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((side, side), Image.BILINEAR))
    notes = ["the captioner reads only the image; the text argument was not used"] if text.strip() else []
    return AttentionRecord("captioner", [f"r{i}" for i in range(gh * gw)], out_tokens=list(described.words),
                           image=seen, image_attention=maps.reshape(len(described.words), gh * gw),
                           region_grid=(gh, gw), output=described.text, notes=notes)


RECORDS: dict[str, Adapter] = {
    Bert.model_type: Adapter(bert_record),  # Bert and its heads
    GPT.model_type: Adapter(gpt_record),
    Seq2Seq.model_type: Adapter(seq2seq_record, grad=False),
    Transformer.model_type: Adapter(transformer_record),
    AttentionClassifier.model_type: Adapter(classifier_record),
    Captioner.model_type: Adapter(captioner_record, image="required", grad=False),
}
"""``model_type`` -> how to draw that model."""

__all__ = ["RECORDS", "Adapter", "adapter_for", "check_length", "hf_backend", "plain_ids", "record_for",
           "self_attention_run"]


def run_gold(rec: AttentionRecord, text: str, model_dir: Path) -> tuple[Tensor, Tensor] | None:
    """The true links of a translation record, ``(sure, possible)`` on its alignment's grid, when the model's run
    was trained on a built-in task with gold alignments (``run.json`` in ``model_dir`` or its parent, as
    ``attnkit train`` writes it) and the grid is one token per unit of the task; else None.

    Example:
        >>> rec = AttentionRecord("seq2seq", list("<ab>"), alignment=torch.zeros(3, 4), output="ab")
        >>> run_gold(rec, "ab", Path("/nonexistent")) is None   # no run.json: gold links unknown
        True
    """
    from attnkit.recipes.alignment import gold_on_grid
    from attnkit.recipes.seq2seq import RunSpec

    if rec.alignment is None:
        return None
    for folder in (model_dir, model_dir.parent):
        spec = RunSpec.read(folder / "run.json")
        if spec is not None:
            return gold_on_grid(spec.data, text, rec.output, {"output": rec.output, "alignment": rec.alignment})
    return None
