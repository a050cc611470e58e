"""The adapters of attnkit's model kinds (see ``attnkit.viz.adapters``): public model APIs in, records out.

Shape legend: L layers, H heads, T input tokens, T_out output tokens, V vocabulary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from attnkit.errors import InputError
from attnkit.viz.adapters import check_length, hf_backend, plain_ids, register_adapter, self_attention_run
from attnkit.viz.record import AttentionRecord


def _tokenizer(model: Any, name: str) -> Any:
    tok = getattr(model, "tokenizers", {}).get(name)
    if tok is None:
        raise InputError(f"this {model.model_type} model has no {name!r} tokenizer (tokenizer.json); attnkit viz needs it "
                         f"to read text")
    return tok


@register_adapter("bert")
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


@register_adapter("gpt2")
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


@register_adapter("seq2seq", grad=False)
def seq2seq_record(model: Any, text: str, image: Any, grad: bool) -> AttentionRecord:
    """RNN encoder-decoder: ``translate(return_alignments=True)``; one alignment, no per-layer weights."""
    tokens, out_text, alignment, rows = _translation(model, text)
    return AttentionRecord("seq2seq", tokens, out_tokens=rows, alignment=alignment, output=out_text)


@register_adapter("transformer")
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


@register_adapter("classifier")
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

    with torch.set_grad_enabled(grad):
        out = model(x, output_attentions=True)
        weights = out.attentions or ()
        grads = torch.autograd.grad(target(out), weights, allow_unused=True) if grad and weights else None
    prob, pred = model.probabilities(out.logits.detach()).max(-1)
    label = f"{model.config.labels[int(pred[0])]} (p={float(prob[0]):.2f})"
    attn = tuple(w[0].detach().float().cpu() for w in weights) or None
    if grads is not None:
        grads = tuple((torch.zeros_like(w) if g is None else g)[0].detach().float().cpu()
                      for g, w in zip(grads, weights, strict=True))
    word = None if out.word_weights is None else out.word_weights[0].detach().float().cpu()
    return AttentionRecord("classifier", tok.tokens(ids), attn, grads, token_weights=word, output=label)


@register_adapter("captioner", image="required", grad=False)
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
