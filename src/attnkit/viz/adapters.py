"""One small adapter per model type: (model, text, image) -> :class:`AttentionRecord`, through public APIs only.

``ADAPTERS`` maps a model's ``model_type`` to an :class:`Adapter`; ``record_for`` picks it. A new
model type plugs in with ``@register_adapter("model_type", image="required")`` on a function
``(model, text, image, grad) -> AttentionRecord``; the CLI, the pictures and the HTML explorer then work
for it unchanged. Every adapter refuses an input longer than the model's positions (``InputError``).

    model_type     weights shown                                  grad target y
    bert (+ heads) ``output_attentions``: L x (H, T, T)           norm of the mean last hidden state (or top logit)
    gpt2           ``output_attentions``: L x (H, T, T) causal    logit of the predicted next token
    transformer    encoder self-attention + the alignment         log-probability of the translation
    seq2seq        the alignment (T_out, S) only                  (none)
    classifier     self-attention (if any) + word weights (T,)    logit of the predicted class
    captioner      weights over image regions (T_out, R)          (none)

Example:
    >>> import torch
    >>> from attnkit.data import Tokenizer
    >>> from attnkit.models.bert import Bert, BertConfig
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
from typing import Any

import torch
from torch import Tensor

from attnkit.errors import InputError
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


ADAPTERS: dict[str, Adapter] = {}


def register_adapter(model_type: str, image: str = "never", grad: bool = True) -> Callable[[AdapterFn], AdapterFn]:
    """Decorator: ``ADAPTERS[model_type] = Adapter(fn, image, grad)``."""
    if image not in ("never", "required"):
        raise ValueError(f"Expected image 'never' or 'required'. Received: {image!r}")

    def add(fn: AdapterFn) -> AdapterFn:
        ADAPTERS[model_type] = Adapter(fn, image, grad)
        return fn

    return add


def adapter_for(model: Any) -> Adapter:
    """The adapter of ``model.model_type``."""
    model_type = getattr(model, "model_type", None)
    if model_type not in ADAPTERS:
        raise InputError(f"attnkit viz does not know model_type {model_type!r}. Expected one of: {sorted(ADAPTERS)}")
    return ADAPTERS[model_type]


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


# -- helpers ------------------------------------------------------------------------------------------------
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
    with respect to every layer's weights. Returns ``(output, per-layer (H, T, T), per-layer grads or None)``."""
    with torch.set_grad_enabled(grad):
        out = forward(True)
        weights = pick(out)  # L x (1, H, T, T)
        grads = torch.autograd.grad(target(out), weights, allow_unused=True) if grad else None
    attn = tuple(w[0].detach().float().cpu() for w in weights)
    if grads is not None:
        grads = tuple((torch.zeros_like(w) if g is None else g)[0].detach().float().cpu()
                      for g, w in zip(grads, weights, strict=True))
    return out, attn, grads


# Adapters for the model types in attnkit.models are registered on import.
from attnkit.viz import _kinds  # noqa: E402, F401

__all__ = ["ADAPTERS", "Adapter", "adapter_for", "check_length", "hf_backend", "plain_ids", "record_for", "register_adapter",
           "self_attention_run"]
