"""GPT: a decoder-only causal language model with the GPT-2 architecture (Radford et al. 2019).

    x_0 = W_te[ids] + W_pe[positions]
    x_l = PreNormBlock(x_{l-1}, causal=True)        l = 1 .. L   (attnkit.models.blocks)
    logits = LN_f(x_L) W_te^T                        output matrix tied to the token embeddings

Generation runs through ``attnkit.decoding`` (greedy, a sampling policy or beam search), with one
:class:`attnkit.layers.KVCache` per block; batched prompts of different lengths are padded on the left.
Reads and writes Hugging Face GPT-2 directories (:class:`attnkit.models.hub.PretrainedModel`).

Shape legend: B batch, T positions of this call, P cached positions, S = P + T key positions,
V vocabulary, D width (``n_embd``), H heads, Dh head width, L layers; N = B (or B*K) rows of a decoding state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.decoding.beam import decode
from attnkit.decoding.greedy import argmax, sampling
from attnkit.functional.kinds import resolve_kind
from attnkit.kernels import Dropout, Linear, next_token_loss
from attnkit.layers.kv_cache import KVCache
from attnkit.models import hub
from attnkit.models._checks import check_ids, check_padding_mask, checked_new_tokens
from attnkit.models.blocks import ACTIVATIONS, PreNormBlock, init_weights, new_caches, run_blocks
from attnkit.models.outputs import CausalLMOutput


@dataclass
class GPTConfig:
    """Hyper-parameters of :class:`GPT`; field names are those of ``transformers.GPT2Config``."""

    vocab_size: int = 50257  # V, number of token ids
    n_positions: int = 1024  # longest sequence (size of the position table)
    n_embd: int = 768  # D, model width
    n_layer: int = 12  # L, number of blocks
    n_head: int = 12  # H, attention heads per block (D % H == 0)
    n_inner: int | None = None  # feed-forward width; None = 4 * D
    activation_function: str = "gelu_new"  # a key of attnkit.models.blocks.ACTIVATIONS
    resid_pdrop: float = 0.1  # dropout on each block's attention and feed-forward outputs
    embd_pdrop: float = 0.1  # dropout on the summed embeddings
    attn_pdrop: float = 0.1  # dropout on attention weights
    layer_norm_epsilon: float = 1e-5  # LayerNorm eps
    initializer_range: float = 0.02  # std of the normal initialisation
    tie_word_embeddings: bool = True  # output matrix = token embedding matrix
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None  # fills finished rows in generate (else eos_token_id)
    # attnkit only: a kind's name (full, sliding_window, block_sparse, linear, performer) or its options dict,
    # e.g. {"name": "performer", "num_features": 32, "seed": 1} (attnkit.functional.kinds.kind_options writes one)
    attention_kind: str | dict = "full"
    attention_window: int | None = None  # keys on each side for attention_kind="sliding_window"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Expected GPTConfig.{name} a positive int. Received: {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"Expected n_embd divisible by n_head. Received: n_embd={self.n_embd}, n_head={self.n_head}"
            )
        if self.activation_function not in ACTIVATIONS:
            raise ValueError(
                f"Expected activation_function in {sorted(ACTIVATIONS)}. Received: {self.activation_function!r}"
            )
        resolve_kind(self.attention_kind, self.attention_window)  # a clear error now, not at the first block

    @classmethod
    def from_hf_dict(cls, config: dict) -> GPTConfig:
        """Build from a ``transformers`` GPT-2 ``config.json`` dict (unknown keys are ignored; settings attnkit
        does not implement raise ``CheckpointError``): :func:`attnkit.models.hub.gpt_config_from_hf`."""
        return hub.gpt_config_from_hf(cls, config)

    def to_hf_dict(self) -> dict:
        """The ``config.json`` dict ``transformers`` reads as a ``GPT2LMHeadModel``."""
        return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], **asdict(self)}


class GPT(hub.PretrainedModel):
    """GPT-2 causal language model.

    Args:
        config: a :class:`GPTConfig`.

    Call arguments (``forward``):
        input_ids: ``(B, T)`` token ids in ``[0, V)``.
        attention_mask: ``(B, S)`` bool or 0/1, True = real token (left padding allowed); None = all
            real. Positions are counted over real tokens: ``cumsum(mask) - 1``.
        position_ids: ``(B, T)``; default from ``attention_mask`` or ``P .. P + T - 1``.
        labels: ``(B, T)`` targets, usually ``input_ids``; ``logits[:, t]`` is scored against
            ``labels[:, t + 1]``; -100 is ignored.
        past_key_values: the list of per-layer :class:`KVCache` of an earlier call (P cached positions).
        use_cache: return the (updated or new) caches in ``past_key_values``.
        output_attentions, output_hidden_states: also return per-layer weights / hidden states.

    Returns:
        :class:`CausalLMOutput` with ``logits (B, T, V)``.

    Example:
        >>> model = GPT(GPTConfig(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2))
        >>> model(torch.tensor([[1, 2, 3]])).logits.shape
        torch.Size([1, 3, 50])
        >>> model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=4).shape
        torch.Size([1, 7])
    """

    model_type = "gpt2"  # as transformers spells it: the directory is a Hugging Face GPT-2 directory
    config_class = GPTConfig
    hf_model_types = ("gpt2",)
    special_tokens = {"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                      "pad_token": "<|endoftext|>"}

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.n_positions, c.n_embd)
        self.drop = Dropout(c.embd_pdrop)
        self.blocks = nn.ModuleList(
            PreNormBlock(c.n_embd, c.n_head, c.n_inner or 4 * c.n_embd, c.activation_function, dropout=c.resid_pdrop,
                         attention_dropout=c.attn_pdrop, eps=c.layer_norm_epsilon, kind=c.attention_kind,
                         window=c.attention_window)
            for _ in range(c.n_layer)
        )
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.lm_head = Linear(c.n_embd, c.vocab_size, bias=False)
        init_weights(self, c.initializer_range)
        for block in self.blocks:  # projections into the residual stream: std / sqrt(2 L)
            std = c.initializer_range / math.sqrt(2 * c.n_layer)
            nn.init.normal_(block.self_attn.output_dense.weight, std=std)
            nn.init.normal_(block.ff.fc_out.weight, std=std)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.wte.weight

    # ------------------------------------------------------------------ forward

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, position_ids: Tensor | None = None,
                labels: Tensor | None = None, past_key_values: list[KVCache] | None = None, use_cache: bool = False,
                output_attentions: bool = False, output_hidden_states: bool = False) -> CausalLMOutput:
        c = self.config
        check_ids(input_ids, "input_ids", c.vocab_size)
        B, T = input_ids.shape
        past = past_key_values[0].length if past_key_values else 0
        if past + T > c.n_positions:
            raise ValueError(f"Expected at most n_positions={c.n_positions} positions. "
                             f"Received: {past} cached + {T} new = {past + T}")
        if past == 0:
            self.warn_if_padding_and_no_attention_mask(input_ids, attention_mask)
        key_mask = None if attention_mask is None else check_padding_mask(attention_mask, B, past + T)  # (B, S)
        if position_ids is None:
            position_ids = _positions(key_mask, past, T, input_ids.device)
        caches = past_key_values if past_key_values is not None else (new_caches(c.n_layer) if use_cache else None)
        x = self.drop(self.wte(input_ids) + self.wpe(position_ids))  # (B, T, D)
        x, hidden, weights, _ = run_blocks(
            self.blocks, x, caches, output_hidden_states, causal=True,
            key_mask=None if key_mask is None else key_mask[:, past:], return_weights=output_attentions)
        x = self.ln_f(x)
        logits = self.lm_head(x)  # (B, T, V)
        return CausalLMOutput(logits=logits, loss=None if labels is None else next_token_loss(logits, labels),
                              past_key_values=caches if use_cache else None,
                              hidden_states=(*hidden, x) if output_hidden_states else None,
                              attentions=weights if output_attentions else None)

    # ------------------------------------------------------------------ generation

    @torch.inference_mode()
    def generate(self, input_ids: Tensor, max_new_tokens: int | None = None, do_sample: bool = False,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 eos_token_id: int | None = None, attention_mask: Tensor | None = None,
                 generator: torch.Generator | None = None, *, max_length: int | None = None, num_beams: int = 1,
                 pad_token_id: int | None = None, length_penalty: float = 1.0) -> Tensor:
        """Continue each prompt through :mod:`attnkit.decoding`, reusing cached keys and values; the arguments
        are those of ``transformers``' ``generate``.

        Greedy (``argmax``) by default; ``do_sample`` samples with :func:`attnkit.decoding.greedy.sampling`
        (``temperature``, ``top_k``, ``top_p``); ``num_beams > 1`` runs :func:`attnkit.decoding.beam.beam_search`
        (hypotheses ranked by ``log p / new_tokens ** length_penalty``, the end token counted, as in
        ``transformers``). Rows that produced ``eos_token_id`` are filled with ``pad_token_id`` (default
        ``config.pad_token_id``, else the eos id); generation stops early only once every row has produced it.

        Args:
            input_ids: ``(B, T)`` prompts; batch prompts of different lengths by padding on the left and
                passing ``attention_mask`` ``(B, T)`` (True/1 = real token).
            max_new_tokens: tokens to add after the prompt. Or ``max_length``: the whole length, prompt
                included (``T + new``); when both are given ``max_new_tokens`` takes precedence, with a
                warning, as in ``transformers``. One of them is required.
            num_beams: beam size ``K`` (1: greedy or sampling; beams do not combine with ``do_sample``).
            generator: optional ``torch.Generator`` for reproducible sampling.

        Returns:
            ``(B, T + N)`` ids, prompt first, with ``N = max_new_tokens`` (fewer only at eos).

        Example:
            >>> model = GPT(GPTConfig(vocab_size=11, n_positions=16, n_embd=8, n_layer=1, n_head=2))
            >>> prompt = torch.tensor([[1, 2, 3]])
            >>> tuple(model.generate(prompt, max_length=7, num_beams=2).shape)  # max_length counts the prompt
            (1, 7)
            >>> tuple(model.generate(prompt, max_new_tokens=4).shape)
            (1, 7)
        """
        c = self.config
        max_new_tokens = checked_new_tokens(input_ids, attention_mask, max_new_tokens, max_length, eos_token_id,
                                            num_beams, do_sample, c.vocab_size, c.n_positions, c.pad_token_id)
        sampler = sampling(temperature if do_sample else 1.0, top_k, top_p, generator)  # checks them
        B, T = input_ids.shape
        if max_new_tokens == 0:
            return input_ids.clone()
        pad = next(i for i in (pad_token_id, c.pad_token_id, eos_token_id, 0) if i is not None)
        was_training = self.training
        self.eval()
        try:
            state = self._prefill(input_ids, attention_mask, capacity=T + max_new_tokens)
            out = decode(self._step, state, batch_size=B, sos_id=input_ids[:, -1], eos_id=eos_token_id,
                         max_len=max_new_tokens, beam_size=num_beams, pad_id=pad, length_penalty=length_penalty,
                         device=input_ids.device, policy=sampler if do_sample else argmax)
            return torch.cat([input_ids, out.tokens], dim=1)
        finally:
            self.train(was_training)

    def generate_text(self, prompt: str | list[str], max_new_tokens: int = 20, *, do_sample: bool = False,
                      temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                      stop_at_eos: bool = True, return_full_text: bool = True,
                      generator: torch.Generator | None = None) -> str | list[str]:
        """Text in, text out, with the model's tokenizer: what ``transformers``' ``pipeline("text-generation")``
        gives. Prompts are encoded (a batch padded on the left), continued by :meth:`generate` (greedy, or sampled
        with ``do_sample``), and decoded.

        Args:
            prompt: one text or a list of texts.
            stop_at_eos: stop a text at the tokenizer's end token (``config.eos_token_id`` first), as
                ``transformers`` does; False always produces ``max_new_tokens`` tokens.
            return_full_text: prompt + continuation (the pipeline's default); False: the continuation only.

        Returns:
            One string for one prompt, else a list of strings.

        Example:
            >>> from attnkit.data.lm_tokenizers import train_byte_bpe
            >>> tok = train_byte_bpe(["the cat sat on the mat"], vocab_size=300)
            >>> model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_positions=32, n_embd=16, n_layer=1, n_head=2))
            >>> model.tokenizer = tok
            >>> out = model.generate_text(["the cat", "a"], max_new_tokens=3)
            >>> len(out), out[0].startswith("the cat")
            (2, True)
        """
        from attnkit.data.batch_encoding import encode_inputs  # data sits below models

        tok = self.tokenizer
        if tok is None:
            raise ValueError("Expected a model with a tokenizer (model.tokenizer) for generate_text. Received: None; "
                             "load one with GPT.from_pretrained(dir), or use generate(input_ids, ...)")
        texts = [prompt] if isinstance(prompt, str) else list(prompt)
        eos = self.config.eos_token_id if self.config.eos_token_id is not None else tok.eos_id
        fill = next(i for i in (tok.pad_id, eos, 0) if i is not None)
        enc = encode_inputs(tok, texts, padding=True, padding_side="left", pad_id=fill, return_tensors="pt")
        ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)  # (B, T)
        out = self.generate(ids, max_new_tokens, do_sample=do_sample, temperature=temperature, top_k=top_k,
                            top_p=top_p, eos_token_id=eos if stop_at_eos else None, attention_mask=mask,
                            generator=generator)  # (B, T + N)
        prompts = [r[m.bool()].tolist() for r, m in zip(ids, mask, strict=True)]  # without the padding
        news = out[:, ids.shape[1]:].tolist()
        if stop_at_eos and eos is not None:
            news = [n[: n.index(eos)] if eos in n else n for n in news]
        texts_out = [tok.decode(p + n if return_full_text else n) for p, n in zip(prompts, news, strict=True)]
        return texts_out[0] if isinstance(prompt, str) else texts_out

    def _prefill(self, input_ids: Tensor, attention_mask: Tensor | None, capacity: int) -> dict[str, Any]:
        """Cache the keys and values of every prompt token but the last; the state of :meth:`_step`."""
        B, T = input_ids.shape
        key_mask = None if attention_mask is None else check_padding_mask(attention_mask, B, T)  # (B, T)
        positions = _positions(key_mask, 0, T, input_ids.device).expand(B, T)  # (B, T)
        caches = new_caches(self.config.n_layer, capacity)
        if T > 1:
            x = self.wte(input_ids[:, :-1]) + self.wpe(positions[:, :-1])  # (B, T - 1, D)
            run_blocks(self.blocks, x, caches, causal=True, key_mask=None if key_mask is None else key_mask[:, :-1])
        return {"caches": caches, "position": positions[:, -1],
                "key_mask": None if key_mask is None else key_mask[:, -1:]}

    def _step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any], None]:
        """The ``attnkit.decoding`` step: feed ``tokens (N,)`` at ``state["position"]``; log-probabilities
        of the next token ``(N, V)``."""
        x = self.wte(tokens[:, None]) + self.wpe(state["position"][:, None])  # (N, 1, D); eval: no dropout
        x, _, _, _ = run_blocks(self.blocks, x, state["caches"], causal=True, key_mask=state["key_mask"])
        logits = self.lm_head(self.ln_f(x[:, 0]))  # (N, V)
        new = {"caches": state["caches"], "position": state["position"] + 1, "key_mask": None}
        return torch.log_softmax(logits.float(), dim=-1), new, None

    # ------------------------------------------------------------------ training

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, Any]]:
        """Loss of one batch for ``attnkit.training.Trainer``: ``batch`` is ``(B, T)`` ids or has
        ``input_ids``; the mean next-token cross-entropy, and stats with next-token ``correct``/``total``
        counts and ``tokens = B * T``."""
        ids = batch if isinstance(batch, Tensor) else batch.input_ids  # (B, T)
        out = self(ids, labels=ids)
        with torch.no_grad():
            correct = (out.logits[:, :-1].argmax(-1) == ids[:, 1:]).sum()
        return out.loss, {"correct": correct, "total": ids[:, 1:].numel(), "tokens": ids.numel()}

    @torch.no_grad()
    def evaluate_batches(self, batches: Iterable[Any]) -> dict[str, float]:
        """Mean next-token ``loss`` (per predicted token), ``perplexity = exp(loss)`` and ``accuracy``."""
        total_loss, correct, total = 0.0, 0, 0
        for batch in batches:
            ids = (batch if isinstance(batch, Tensor) else batch.input_ids).to(self.device)  # (B, T)
            logits, target = self(ids).logits[:, :-1], ids[:, 1:]  # (B, T - 1, V), (B, T - 1)
            total_loss += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                reduction="sum"))
            correct += int((logits.argmax(-1) == target).sum())
            total += target.numel()
        loss = total_loss / max(total, 1)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "accuracy": correct / max(total, 1)}

    # ------------------------------------------------------------------ checkpoints

    def hf_tensors(self) -> dict[str, Tensor]:
        """The weights under ``transformers`` GPT-2 names (the tied output matrix left out)."""
        return hub.gpt_hf_tensors(self)

    def load_hf_tensors(self, tensors: dict[str, Tensor], where: str = "checkpoint") -> None:
        """Copy tensors with ``transformers`` GPT-2 names (``GPT2LMHeadModel`` or ``GPT2Model``) into this model."""
        hub.load_gpt_hf_tensors(self, tensors, where)


def _positions(key_mask: Tensor | None, past: int, T: int, device: torch.device) -> Tensor:
    """Positions of this call's tokens: ``(1, T)`` ``P .. P + T - 1``, or counted over real tokens
    ``(B, T)`` when a padding mask ``(B, P + T)`` is given."""
    if key_mask is None:
        return torch.arange(past, past + T, device=device)[None]  # (1, T)
    return (key_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past:]  # (B, T)

