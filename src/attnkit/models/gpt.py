"""GPT: a decoder-only causal language model with the GPT-2 architecture (Radford et al. 2019).

``x_0 = W_te[ids] + W_pe[positions]``; ``L`` pre-LN blocks ``x = x + Attn(LN(x))``,
``x = x + FFN(LN(x))`` with causal self-attention; ``logits = LN_f(x_L) W_te^T`` (output matrix tied
to the token embeddings). Loads and saves Hugging Face GPT-2 directories (see :mod:`.hub`), keeps a
preallocated key/value cache for generation, and generates batched prompts with left padding.

Shape legend: B batch, T positions of this call, S key positions (cached + new), P cached
positions, V vocabulary, E width, H heads, D head size, L layers, N new tokens.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from attnkit.errors import CheckpointError
from attnkit.models import hub
from attnkit.models.base import KitModel, register_model
from attnkit.models.blocks import (
    ACTIVATIONS,
    Dropout,
    FeedForward,
    Linear,
    PreLNBlock,
    SelfAttention,
    StaticKVCache,
    init_weights,
    scaled_residual_std,
)
from attnkit.models.outputs import CausalLMOutput


@dataclass
class GPTConfig:
    """Hyper-parameters of :class:`GPT`; field names are those of ``transformers.GPT2Config``."""

    vocab_size: int = 50257  # V, number of token ids
    n_positions: int = 1024  # longest sequence (size of the position table)
    n_embd: int = 768  # E, model width
    n_layer: int = 12  # L, number of blocks
    n_head: int = 12  # H, attention heads per block (E % H == 0)
    n_inner: int | None = None  # feed-forward width; None = 4 * E
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

    @classmethod
    def from_hf_dict(cls, config: dict) -> GPTConfig:
        """Build from a ``transformers`` GPT-2 ``config.json`` dict (unknown keys are ignored;
        settings attnkit does not implement raise ``CheckpointError``)."""
        for key, unsupported in (
            ("add_cross_attention", True),
            ("scale_attn_by_inverse_layer_idx", True),
            ("scale_attn_weights", False),
        ):
            if config.get(key) == unsupported:
                raise CheckpointError(f"config.json: unsupported GPT-2 option {key}={unsupported}")
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in config.items() if k in names})
        except ValueError as e:
            raise CheckpointError(f"config.json: {e}") from e

    def to_hf_dict(self) -> dict:
        """The ``config.json`` dict ``transformers`` reads as a ``GPT2LMHeadModel``."""
        return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], **asdict(self)}


def _check_ids(input_ids: object, vocab_size: int, name: str = "input_ids") -> Tensor:
    if not isinstance(input_ids, Tensor):
        raise TypeError(f"Expected `{name}` a torch.Tensor. Received: {type(input_ids).__name__}")
    if input_ids.dim() != 2:
        raise ValueError(f"Expected `{name}` of shape (B, T). Received: shape {tuple(input_ids.shape)}")
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise TypeError(f"Expected `{name}` of an integer dtype. Received: {input_ids.dtype}")
    if input_ids.numel():
        lo, hi = int(input_ids.min()), int(input_ids.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(
                f"Expected token ids in [0, {vocab_size}) (vocab_size). Received: `{name}` with ids in [{lo}, {hi}]"
            )
    return input_ids


def _check_mask(attention_mask: Tensor, batch: int, length: int) -> Tensor:
    if not isinstance(attention_mask, Tensor):
        raise TypeError(f"Expected `attention_mask` a torch.Tensor. Received: {type(attention_mask).__name__}")
    if tuple(attention_mask.shape) != (batch, length):
        raise ValueError(
            f"Expected `attention_mask` of shape (B, P + T) = {(batch, length)}. "
            f"Received: {tuple(attention_mask.shape)}"
        )
    return attention_mask.bool()


def _attn_masks(key_mask: Tensor | None, t: int, s: int, device: torch.device) -> tuple[Tensor | None, bool]:
    """Mask for T queries that are the last T of S positions: ``(attn_mask, causal)``.

    Without padding and without cached positions the fused ``causal=True`` path is used; otherwise
    an explicit bool mask ``(B or 1, 1, T, S)``: causal (bottom-right aligned) and real keys only."""
    if key_mask is None:
        if s == t:
            return None, True
        if t == 1:
            return None, False
        return torch.ones(t, s, dtype=torch.bool, device=device).tril(s - t)[None, None], False  # (1, 1, T, S)
    mask = key_mask[:, None, None, :s]  # (B, 1, 1, S)
    if t > 1:
        mask = mask & torch.ones(t, s, dtype=torch.bool, device=device).tril(s - t)  # (B, 1, T, S)
    return mask, False


def next_token_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of each position's logits against the next position's label.

    ``loss = -mean_t log softmax(logits[:, t])[labels[:, t + 1]]`` over the pairs whose label is not
    -100; equal to ``F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))``,
    computed without copying the shifted logits (the last position gets the ignored label instead)
    and with a backward pass that turns the saved log-probabilities into the gradient in place,
    ``softmax - onehot``, instead of allocating two more ``(B * T, V)`` tensors.

    Args:
        logits: ``(B, T, V)``.
        labels: ``(B, T)`` integer ids in ``[0, V)`` or -100 (ignored).

    Returns:
        A scalar (NaN when every label is ignored, as ``F.cross_entropy``).

    Example:
        >>> logits, labels = torch.randn(2, 4, 7), torch.tensor([[1, 2, 3, 4], [5, 6, -100, 0]])
        >>> ref = F.cross_entropy(logits[:, :-1].reshape(-1, 7), labels[:, 1:].reshape(-1))
        >>> bool(torch.allclose(next_token_loss(logits, labels), ref))
        True
    """
    B, T, V = logits.shape
    if labels.numel():
        bad = (labels != -100) & ((labels < 0) | (labels >= V))
        if bool(bad.any()):
            raise ValueError(f"Expected labels in [0, {V}) (vocab_size) or -100. Received: {labels[bad][0].item()}")
    target = F.pad(labels[:, 1:], (0, 1), value=-100).reshape(B * T)  # (B * T,): next token, -100 at the end
    return _NextTokenCrossEntropy.apply(logits.reshape(B * T, V), target)


class _NextTokenCrossEntropy(torch.autograd.Function):
    """``-mean over valid rows of log_softmax(logits)[row, target]``; ``logits (M, V)``, ``target (M,)``.

    Backward: ``d logits = (softmax(logits) - onehot(target)) * grad / n_valid`` on valid rows, 0 on
    ignored ones, computed in place in the saved log-probabilities (which a second backward through the
    same graph would need: it raises instead)."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor) -> Tensor:
        logp = torch.log_softmax(logits, dim=-1)  # (M, V)
        valid = target != -100  # (M,)
        safe = target.clamp(min=0)[:, None]  # (M, 1)
        count = valid.sum()
        loss = -(logp.gather(1, safe)[:, 0] * valid).sum() / count
        ctx.save_for_backward(logp, safe, valid, count)
        ctx.used = False
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        if ctx.used:
            raise RuntimeError("GPT's loss does not support a second backward pass through the same graph "
                               "(retain_graph=True); compute F.cross_entropy from the returned logits for that")
        ctx.used = True
        logp, safe, valid, count = ctx.saved_tensors
        d_logits = logp.exp_()  # (M, V) softmax, in place
        d_logits.scatter_add_(1, safe, torch.full(safe.shape, -1.0, dtype=d_logits.dtype, device=d_logits.device))
        d_logits.mul_((valid * (grad / count)).to(d_logits.dtype)[:, None])
        return d_logits, None


@register_model
class GPT(KitModel):
    """GPT-2 causal language model.

    Args:
        config: a :class:`GPTConfig`.

    Call arguments (``forward``):
        input_ids: ``(B, T)`` token ids in ``[0, V)``.
        attention_mask: ``(B, P + T)`` bool or 0/1, True = real token (left padding allowed); None =
            all real. Positions are counted over real tokens: ``cumsum(mask) - 1``.
        position_ids: ``(B, T)``; default from ``attention_mask`` or ``P .. P + T - 1``.
        labels: ``(B, T)`` targets, usually ``input_ids``; ``logits[:, t]`` is scored against
            ``labels[:, t + 1]``; -100 is ignored.
        past_key_values: a :class:`StaticKVCache` from an earlier call (P cached positions).
        use_cache: return the (updated or new) cache in ``past_key_values``.
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

    kind = "gpt"
    config_class = GPTConfig

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.n_positions, c.n_embd)
        self.drop = Dropout(c.embd_pdrop)
        inner = c.n_inner or 4 * c.n_embd
        self.blocks = nn.ModuleList(
            PreLNBlock(
                SelfAttention(c.n_embd, c.n_head, c.attn_pdrop, c.resid_pdrop),
                FeedForward(c.n_embd, inner, c.activation_function, c.resid_pdrop),
                c.n_embd,
                c.layer_norm_epsilon,
            )
            for _ in range(c.n_layer)
        )
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.lm_head = Linear(c.n_embd, c.vocab_size, bias=False)
        init_weights(self, c.initializer_range)
        for block in self.blocks:
            std = scaled_residual_std(c.initializer_range, c.n_layer)
            nn.init.normal_(block.attn.proj.weight, std=std)
            nn.init.normal_(block.mlp.fc_out.weight, std=std)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.wte.weight
        self.tokenizer = None  # a tokenizers.Tokenizer when loaded from a directory with tokenizer.json
        self._tokenizer_files: dict[str, bytes] = {}

    # ------------------------------------------------------------------ forward

    def _body(
        self,
        input_ids: Tensor,
        position_ids: Tensor,
        attn_mask: Tensor | None,
        causal: bool,
        cache: StaticKVCache | None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[Tensor, tuple | None, tuple | None]:
        """Embeddings, blocks, final LayerNorm: ``(B, T) -> (B, T, E)`` (no argument checks)."""
        x = self.drop(self.wte(input_ids) + self.wpe(position_ids))  # (B, T, E)
        hidden, weights = [], []
        for i, block in enumerate(self.blocks):
            if output_hidden_states:
                hidden.append(x)
            x, w = block(
                x, attn_mask=attn_mask, causal=causal, cache=cache, layer=i, output_attentions=output_attentions
            )
            weights.append(w)
        x = self.ln_f(x)
        if cache is not None:
            cache.advance(input_ids.shape[1])
        if output_hidden_states:
            hidden.append(x)
        return x, tuple(hidden) if output_hidden_states else None, tuple(weights) if output_attentions else None

    def _new_cache(self, batch: int, capacity: int, ref: Tensor) -> StaticKVCache:
        c = self.config
        return StaticKVCache(
            c.n_layer, batch, c.n_head, c.n_embd // c.n_head, capacity, device=ref.device, dtype=ref.dtype
        )

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        labels: Tensor | None = None,
        past_key_values: StaticKVCache | None = None,
        use_cache: bool = False,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> CausalLMOutput:
        c = self.config
        _check_ids(input_ids, c.vocab_size)
        B, T = input_ids.shape
        past = past_key_values.length if past_key_values is not None else 0
        if past + T > c.n_positions:
            raise ValueError(
                f"Expected at most n_positions={c.n_positions} positions. "
                f"Received: {past} cached + {T} new = {past + T}"
            )
        key_mask = None
        if attention_mask is not None:
            key_mask = _check_mask(attention_mask, B, past + T)  # (B, S)
        if position_ids is None:
            if key_mask is not None:
                position_ids = (key_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past:]  # (B, T)
            else:
                position_ids = torch.arange(past, past + T, device=input_ids.device)[None]  # (1, T)
        cache = past_key_values
        if cache is None and use_cache:
            cache = self._new_cache(B, T, self.wte.weight)
        attn_mask, causal = _attn_masks(key_mask, T, past + T, input_ids.device)
        x, hidden, weights = self._body(
            input_ids, position_ids, attn_mask, causal, cache, output_attentions, output_hidden_states
        )
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if labels is not None:
            if tuple(labels.shape) != (B, T):
                raise ValueError(f"Expected `labels` of shape {(B, T)}. Received: {tuple(labels.shape)}")
            loss = next_token_loss(logits, labels)
        return CausalLMOutput(
            logits=logits,
            loss=loss,
            past_key_values=cache if use_cache else None,
            hidden_states=hidden,
            attentions=weights,
        )

    # ------------------------------------------------------------------ generation

    @torch.inference_mode()
    def generate(
        self,
        input_ids: Tensor,
        max_new_tokens: int,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_token_id: int | None = None,
        attention_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Continue each prompt by ``max_new_tokens`` tokens, reusing cached keys and values.

        Greedy (``argmax``) unless ``do_sample``; sampling draws from
        ``softmax(logits / temperature)`` restricted to the ``top_k`` best tokens and then to the
        smallest set whose probability reaches ``top_p``. Rows that produced ``eos_token_id`` are
        filled with ``config.pad_token_id`` (or the eos id); generation stops early only once every
        row has produced it.

        Args:
            input_ids: ``(B, T)`` prompts; batch prompts of different lengths by padding on the
                left and passing ``attention_mask``.
            attention_mask: ``(B, T)`` True/1 = real token, False/0 = left padding.
            generator: optional ``torch.Generator`` for reproducible sampling.

        Returns:
            ``(B, T + N)`` ids, prompt first, with ``N = max_new_tokens`` (fewer only at eos).
        """
        c = self.config
        _check_ids(input_ids, c.vocab_size)
        _check_generate_args(max_new_tokens, do_sample, temperature, top_k, top_p, eos_token_id, c.vocab_size)
        B, T = input_ids.shape
        total = T + max_new_tokens
        if T == 0:
            raise ValueError("Expected a prompt of at least one token. Received: input_ids of shape (B, 0)")
        if total > c.n_positions:
            raise ValueError(
                f"Expected prompt + new tokens <= n_positions={c.n_positions}. "
                f"Received: {T} + {max_new_tokens} = {total}"
            )
        device = input_ids.device
        was_training = self.training
        self.eval()
        try:
            out = input_ids.new_empty(B, total)  # (B, T + N)
            out[:, :T] = input_ids
            cache = self._new_cache(B, total, self.wte.weight)
            key_mask = None
            positions = torch.arange(total, device=device)[None]  # (1, T + N)
            if attention_mask is not None:
                key_mask = torch.ones(B, total, dtype=torch.bool, device=device)  # (B, T + N)
                key_mask[:, :T] = _check_mask(attention_mask, B, T)
                positions = (key_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, T + N)
            attn_mask, causal = _attn_masks(key_mask, T, T, device)
            x, _, _ = self._body(input_ids, positions[:, :T], attn_mask, causal, cache)
            logits = self.lm_head(x[:, -1])  # (B, V)
            pad = c.pad_token_id if c.pad_token_id is not None else eos_token_id
            finished = torch.zeros(B, dtype=torch.bool, device=device) if eos_token_id is not None else None
            weights = _DecodeWeights(self)
            end = total
            for step in range(max_new_tokens):
                token = _next_token(logits, do_sample, temperature, top_k, top_p, generator)  # (B,)
                if finished is not None:
                    token = torch.where(finished, pad, token)
                    finished |= token == eos_token_id
                out[:, T + step] = token
                s = T + step + 1
                if s == total or (finished is not None and bool(finished.all())):
                    end = s
                    break
                mask = key_mask[:, None, None, :s] if key_mask is not None else None  # (B, 1, 1, S)
                logits = _decode_step(weights, token, positions[:, s - 1], mask, cache)  # (B, V)
            return out[:, :end]
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ checkpoints

    def _hf_tensors(self) -> dict[str, Tensor]:
        tied = self.config.tie_word_embeddings
        return hub.hf_state(self, hub.GPT_NAMES, skip=lambda k: tied and k == "lm_head.weight")

    def load_hf_tensors(self, tensors: dict[str, Tensor], where: str = "checkpoint") -> None:
        """Copy tensors with ``transformers`` GPT-2 names (``GPT2LMHeadModel`` or ``GPT2Model``)
        into this model; raises ``CheckpointError`` listing missing/unexpected/misshaped tensors."""
        expected = {k: tuple(v.shape) for k, v in self._hf_tensors().items()}
        found = hub.adapt_prefix(tensors, expected, "transformer.")
        tied = self.config.tie_word_embeddings
        hub.match_checkpoint(
            expected,
            found,
            optional=lambda k: False,
            ignorable=lambda k: k.endswith((".attn.bias", ".attn.masked_bias")) or (tied and k == "lm_head.weight"),
            where=where,
            hint=f" (config: n_layer={self.config.n_layer}, n_embd={self.config.n_embd}, "
            f"vocab_size={self.config.vocab_size}, n_positions={self.config.n_positions})",
        )
        ours, _ = hub.convert({k: found[k] for k in expected}, hub.GPT_NAMES, to_hf=False)
        missing, _ = self.load_state_dict(ours, strict=False)
        assert set(missing) <= {"lm_head.weight"}, missing

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> GPT:
        """Load a Hugging Face GPT-2 directory (``config.json``, ``model.safetensors``, and
        ``tokenizer.json`` when present, kept as ``model.tokenizer``). Returns the model in eval mode.

        Example:
            >>> model = GPT.from_pretrained("path/to/gpt2")  # doctest: +SKIP
        """
        config_dict = hub.read_config(path)
        hub.check_model_type(config_dict, ("gpt2",), "GPT", path)
        model = cls(GPTConfig.from_hf_dict(config_dict))
        model.load_hf_tensors(hub.read_weights(path), where=str(path))
        model._tokenizer_files = hub.read_tokenizer_files(path)
        model.tokenizer = hub.load_tokenizer(model._tokenizer_files)
        return model.eval()

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write a Hugging Face GPT-2 directory that ``transformers.GPT2LMHeadModel`` loads
        (atomically; tokenizer files are copied when the model has them)."""
        hub.write_dir(path, self.config.to_hf_dict(), self._hf_tensors(), self._tokenizer_files)

    def summary(self, seq_len: int = 8, batch_size: int = 1, **kwargs) -> str:
        """Print and return a Keras-like table of layers, output shapes and parameter counts for a
        ``(batch_size, seq_len)`` input (see :func:`attnkit.models.summary.summary`)."""
        from attnkit.models.summary import summary

        ids = torch.zeros(batch_size, seq_len, dtype=torch.long, device=self.wte.weight.device)
        return summary(self, ids, **kwargs)


def _check_generate_args(max_new_tokens, do_sample, temperature, top_k, top_p, eos_token_id, vocab_size) -> None:
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"Expected max_new_tokens an int >= 0. Received: {max_new_tokens!r}")
    if do_sample and not temperature > 0:
        raise ValueError(f"Expected temperature > 0. Received: {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"Expected top_k an int >= 1 or None. Received: {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"Expected top_p in (0, 1] or None. Received: {top_p!r}")
    if eos_token_id is not None and not 0 <= eos_token_id < vocab_size:
        raise ValueError(f"Expected eos_token_id in [0, {vocab_size}). Received: {eos_token_id!r}")


def _next_token(
    logits: Tensor,
    do_sample: bool,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> Tensor:
    """Pick one token per row from ``logits`` ``(B, V)``; returns ``(B,)``."""
    if not do_sample:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs  # probability of the better tokens
        sorted_logits = sorted_logits.masked_fill(before >= top_p, float("-inf"))  # keeps the best token
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class _DecodeWeights:
    """The tensors one decoding step reads, gathered once per :meth:`GPT.generate` call so the
    per-token loop does no module attribute look-ups."""

    def __init__(self, model: GPT) -> None:
        c = model.config
        self.n_head, self.head_dim, self.eps = c.n_head, c.n_embd // c.n_head, c.layer_norm_epsilon
        self.wte, self.wpe = model.wte.weight, model.wpe.weight
        self.ln_f = (model.ln_f.weight, model.ln_f.bias)
        self.lm_head = model.lm_head.weight
        self.layers = [
            (
                b.ln_1.weight, b.ln_1.bias, b.attn.qkv.weight, b.attn.qkv.bias, b.attn.proj.weight, b.attn.proj.bias,
                b.ln_2.weight, b.ln_2.bias, b.mlp.fc_in.weight, b.mlp.fc_in.bias, b.mlp.act,
                b.mlp.fc_out.weight, b.mlp.fc_out.bias,
            )
            for b in model.blocks
        ]


def _decode_step(w: _DecodeWeights, token: Tensor, position: Tensor, mask: Tensor | None, cache: StaticKVCache) -> Tensor:
    """One generation step in eval mode: the same computation as ``GPT._body`` for a single new
    position (tests check the two agree), written flat for speed: torch ops only, SDPA called
    directly (no dropout, no weights, mask already built), keys/values appended to ``cache``.

    Args:
        token: ``(B,)`` the last chosen tokens. position: ``(B,)`` or ``(1,)`` their positions.
        mask: ``(B, 1, 1, S)`` real keys, or None when nothing is padded.

    Returns:
        ``(B, V)`` logits of the next token.
    """
    B, E = token.shape[0], w.wte.shape[1]
    H, D, eps = w.n_head, w.head_dim, w.eps
    t = cache.length
    x = (F.embedding(token, w.wte) + F.embedding(position, w.wpe))[:, None]  # (B, 1, E)
    for i, (l1w, l1b, qw, qb, pw, pb, l2w, l2b, f1w, f1b, act, f2w, f2b) in enumerate(w.layers):
        h = F.layer_norm(x, (E,), l1w, l1b, eps)
        q, k, v = F.linear(h, qw, qb).view(B, 3, H, 1, D).unbind(1)  # 3 x (B, H, 1, D)
        keys, values = cache.keys[i], cache.values[i]  # (B, H, capacity, D)
        keys.narrow(2, t, 1).copy_(k)
        values.narrow(2, t, 1).copy_(v)
        y = F.scaled_dot_product_attention(q, keys.narrow(2, 0, t + 1), values.narrow(2, 0, t + 1), attn_mask=mask)
        x = x + F.linear(y.reshape(B, 1, E), pw, pb)  # (B, 1, E)
        h = F.layer_norm(x, (E,), l2w, l2b, eps)
        x = x + F.linear(act(F.linear(h, f1w, f1b)), f2w, f2b)
    cache.advance(1)
    x = F.layer_norm(x[:, 0], (E,), w.ln_f[0], w.ln_f[1], eps)  # (B, E)
    return F.linear(x, w.lm_head)  # (B, V)
