"""A Keras-like ``summary()`` for any ``nn.Module``: its layers, their output shapes on an example
input, and parameter counts.

Output shapes are recorded by forward hooks during one forward pass under ``torch.no_grad()`` in eval
mode (the module's mode is restored afterwards). A parameter shared by several layers (tied input and
output embeddings) shows in each of their rows but counts once in the totals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor, nn


def _shape_of(output: object) -> str:
    """A printable shape for a module output: a tensor, a tuple/list of them, or a dataclass."""
    if isinstance(output, Tensor):
        return str(tuple(output.shape))
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        output = [getattr(output, f.name) for f in dataclasses.fields(output)]
    if isinstance(output, (tuple, list)):
        shapes = [_shape_of(o) for o in output if isinstance(o, Tensor) or dataclasses.is_dataclass(o)]
        return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]" if shapes else "-"
    return "-"


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``module``, each shared tensor counted once.

    Example:
        >>> count_parameters(nn.Linear(3, 4))  # 3 * 4 weights + 4 biases
        16
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def summary(
    model: nn.Module,
    *inputs: object,
    depth: int = 2,
    print_fn: Callable[[str], None] | None = print,
    **kwargs: object,
) -> str:
    """Describe ``model`` as Keras's ``model.summary()`` does.

    Args:
        model: any module.
        *inputs, **kwargs: an example input, passed as ``model(*inputs, **kwargs)``; with none, the
            table shows parameters only.
        depth: show sub-modules up to this many dotted name parts (``blocks.0`` has 2); containers
            (``ModuleList``, ``ModuleDict``) get no row of their own.
        print_fn: called with the text (None = only return it).

    Returns:
        The table as a string: one row per layer ``name (Type) | output shape | parameters``,
        then total, trainable and non-trainable parameter counts.

    Example:
        >>> text = summary(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), torch.zeros(2, 3), print_fn=None)
        >>> "(2, 4)" in text and "Total params: 16" in text
        True
    """
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"Expected depth an int >= 1. Received: {depth!r}")
    rows = [
        (name, m)
        for name, m in model.named_modules()
        if name and name.count(".") < depth and not isinstance(m, (nn.ModuleList, nn.ModuleDict))
    ]
    # 1. one forward pass records each row's output shape
    shapes, model_shape = _output_shapes(model, rows, inputs, kwargs)
    # 2. the table
    text = _table(model, rows, shapes, model_shape)
    if print_fn is not None:
        print_fn(text)
    return text


def _output_shapes(model: nn.Module, rows: list[tuple[str, nn.Module]], inputs: tuple[object, ...],
                   kwargs: dict[str, object]) -> tuple[dict[str, str], str]:
    """``({row name: output shape}, the model's output shape)`` from one no-grad eval-mode pass (none without
    inputs); the model's mode is restored and the hooks removed."""
    shapes: dict[str, str] = {}
    handles = []
    for name, m in rows:
        def hook(_m, _args, output, name=name):
            shapes.setdefault(name, _shape_of(output))

        handles.append(m.register_forward_hook(hook))
    model_shape = "-"
    was_training = model.training
    try:
        if inputs or kwargs:
            model.eval()
            with torch.no_grad():
                model_shape = _shape_of(model(*inputs, **kwargs))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return shapes, model_shape


def _table(model: nn.Module, rows: list[tuple[str, nn.Module]], shapes: dict[str, str], model_shape: str) -> str:
    """The Keras-style text: one line per row, then the parameter totals."""
    header = ("Layer (type)", "Output Shape", "Param #")
    table = [
        ("  " * name.count(".") + f"{name} ({type(m).__name__})", shapes.get(name, "-"), f"{count_parameters(m):,}")
        for name, m in rows
    ]
    w0 = max(len(header[0]), *(len(r[0]) for r in table)) if table else len(header[0])
    w1 = max(len(header[1]), len(model_shape), *(len(r[1]) for r in table)) if table else len(header[1])
    w2 = max(len(header[2]), *(len(r[2]) for r in table)) if table else len(header[2])
    width = w0 + w1 + w2 + 6
    line = lambda a, b, c: f" {a:<{w0}}  {b:<{w1}}  {c:>{w2}}"  # noqa: E731
    total = count_parameters(model)
    trainable = count_parameters(model, trainable_only=True)
    size_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    return "\n".join([
        f'Model: "{type(model).__name__}"',
        "_" * width,
        line(*header),
        "=" * width,
        *(line(*r) for r in table),
        "=" * width,
        f"Output: {model_shape}",
        f"Total params: {total:,} ({size_mb:.2f} MB)",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        "_" * width,
    ])
