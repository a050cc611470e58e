"""Torch's lazy-module contract for the layers that may learn their input widths at their first call
(``MultiHeadAttention`` and ``AdditiveAttention`` created without widths, as in Keras).

Until it is built, such a layer holds :class:`torch.nn.parameter.UninitializedParameter` placeholders (here
subclasses whose errors say what to pass). Building *materialises* them in place, so the parameter objects
stay the same:

* an optimiser created before the first call trains the built weights (it holds the same objects);
* ``load_state_dict`` into an unbuilt layer first builds it from the shapes in the state dict;
* anything that needs the data or the shape of an unbuilt parameter (counting parameters, ``init``
  functions, ``share_memory``) raises, naming the argument that builds the layer up front.

Placeholders the built layer does not use (e.g. the packed ``in_proj_weight`` when query and value widths
differ) are removed from the layer; an optimiser holding them sees no gradient for them and skips them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

MHA_HINT = ("MultiHeadAttention creates its weights from the input widths: pass query_dim= (and value_dim_in= / "
            "key_dim_in= when they differ) to MultiHeadAttention(...), call layer.build(query_shape, value_shape), "
            "or call the layer once")
ADDITIVE_HINT = "AdditiveAttention creates `scale` from the input width: pass dim= to AdditiveAttention(...), or call the layer once"


class UnbuiltParameter(UninitializedParameter):
    """An ``UninitializedParameter`` whose errors say how to build its layer (``hint``).

    Example:
        >>> p = UnbuiltParameter()
        >>> p.numel()
        Traceback (most recent call last):
        ...
        ValueError: Expected a built layer to use its parameters (numel). Received: an unbuilt layer; call the layer once
    """

    hint = "call the layer once"

    @property
    def shape(self):  # noqa: ANN201  (as the parent's)
        raise RuntimeError(f"Expected a built layer to read a parameter's shape. Received: an unbuilt layer; {self.hint}")

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        try:
            return super().__torch_function__(func, types, args, kwargs)
        except ValueError:
            name = getattr(func, "__name__", str(func))
            raise ValueError(f"Expected a built layer to use its parameters ({name}). Received: an unbuilt layer; "
                             f"{cls.hint}") from None


class UnbuiltMHAParameter(UnbuiltParameter):
    hint = MHA_HINT


class UnbuiltAdditiveParameter(UnbuiltParameter):
    hint = ADDITIVE_HINT


def width(x: int | Sequence[int]) -> int:
    """An input width given as an int or as a Keras shape (its last entry), e.g. ``(None, 5, 8)`` -> 8.

    Example:
        >>> width((None, 5, 8)), width(8)
        (8, 8)
    """
    return x[-1] if isinstance(x, (tuple, list, torch.Size)) else x  # type: ignore[return-value]


def placeholder(kind: type[UnbuiltParameter], device: torch.device | str | None, dtype: torch.dtype | None):
    """A new placeholder of class ``kind``."""
    return kind(device=device, dtype=dtype)


def materialize(module: nn.Module, name: str, shape: tuple[int, ...], *, device: torch.device | str | None = None,
                dtype: torch.dtype | None = None) -> nn.Parameter:
    """The placeholder ``module.<name>`` made a parameter of ``shape`` in place (the same object, so an
    optimiser created earlier keeps training it), or a new parameter when there is no placeholder.
    Values are uninitialised (``torch.empty``): the caller initialises them."""
    p = getattr(module, name, None)
    if isinstance(p, UninitializedParameter):
        p.materialize(shape, device=device if device is not None else p.data.device,
                      dtype=dtype if dtype is not None else p.data.dtype)
        return p
    return nn.Parameter(torch.empty(shape, device=device, dtype=dtype))


def drop_placeholders(module: nn.Module) -> None:
    """Remove the placeholders a built module did not use (they stay out of ``parameters()``/``state_dict``)."""
    for name, p in list(module._parameters.items()):
        if isinstance(p, UninitializedParameter):
            module._parameters[name] = None


def placeholder_device_dtype(module: nn.Module) -> tuple[torch.device | None, torch.dtype | None]:
    """Device and dtype the placeholders of ``module`` were given or moved to (None, None without any)."""
    for p in module.parameters(recurse=True):
        if isinstance(p, UninitializedParameter):
            return p.data.device, p.data.dtype
    return None, None




# ---- MultiHeadAttention ----------------------------------------------------------------------------------

MHA_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")


def add_mha_placeholders(layer: nn.Module, device: torch.device | str | None, dtype: torch.dtype | None) -> None:
    """Give an unbuilt ``MultiHeadAttention`` placeholders for every parameter it may build: the packed and
    the separate input kernels (which ones stay depends on the widths), ``in_proj_bias``, ``output_dense``."""
    names = MHA_WEIGHTS + (("in_proj_bias",) if layer.use_bias else ())
    for name in names:
        setattr(layer, name, UnbuiltMHAParameter(device=device, dtype=dtype))
    out = nn.Linear(1, 1, bias=layer.use_bias, device="meta")
    out.in_features = out.out_features = 0  # unknown until linear() builds it (as nn.LazyLinear shows)
    out.weight = UnbuiltMHAParameter(device=device, dtype=dtype)
    if layer.use_bias:
        out.bias = UnbuiltMHAParameter(device=device, dtype=dtype)
    layer.output_dense = out


def linear(old: nn.Linear | None, in_features: int, out_features: int, bias: bool, *,
           device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> nn.Linear:
    """``old`` (an ``nn.Linear`` of placeholders) materialised to ``(in_features -> out_features)``, or a new
    ``nn.Linear``. Values are left for the caller to initialise."""
    if old is None or not isinstance(old.weight, UninitializedParameter):
        return nn.Linear(in_features, out_features, bias=bias, device=device, dtype=dtype)
    materialize(old, "weight", (out_features, in_features), device=device, dtype=dtype)
    if bias:
        materialize(old, "bias", (out_features,), device=device, dtype=dtype)
    old.in_features, old.out_features = in_features, out_features
    return old


def build_from_state_dict(module: nn.Module, state_dict: dict, prefix: str, *args: object) -> None:
    """``load_state_dict`` pre-hook of ``MultiHeadAttention``: an unbuilt layer is built from the shapes of
    the input kernels in ``state_dict`` (packed ``in_proj_weight`` ``(N, E)``, or ``q/k/v_proj_weight``) before
    the tensors are copied in, as torch's lazy modules do. Without them the load reports missing keys."""
    if module.built:
        return
    packed = state_dict.get(prefix + "in_proj_weight")
    parts = [state_dict.get(prefix + n) for n in ("q_proj_weight", "v_proj_weight", "k_proj_weight")]
    if packed is not None:
        widths = (int(packed.shape[1]),) * 3
    elif all(p is not None for p in parts):
        widths = tuple(int(p.shape[1]) for p in parts)  # (query, value, key)
    else:
        return
    device, dtype = placeholder_device_dtype(module)
    module.build(*widths, device=device, dtype=dtype)


__all__ = ["UnbuiltParameter", "add_mha_placeholders", "build_from_state_dict", "drop_placeholders", "linear",
           "materialize", "placeholder", "placeholder_device_dtype", "width"]
