"""``torch.compile`` for any attnkit model, with a clear fallback when it cannot work on this machine.

``torch.compile`` compiles lazily, at the first call: a missing C++ compiler (inductor's CPU backend
needs one), an unsupported Python or a failure inside inductor surfaces there, as a long traceback.
:func:`compile_model` checks what it can up front, and wraps the module so that a compilation failure
at a call becomes one warning (``CompileFallbackWarning``, naming the cause) after which the module runs
eagerly, or, with ``strict=True``, one ``CompileUnavailable`` error whose message is a single line.

Inside the compiled call attnkit's eager fast paths (:mod:`attnkit.kernels`, e.g. the oneDNN linear
layers) are switched off: inductor cannot lower the oneDNN operator (a ``LoweringException``) and does its
own fusion instead; the eager fallback keeps them on.

The wrapper keeps the module's parameters and state-dict keys unchanged (the compiled object is not a
registered sub-module), so saving, loading and optimisers see the plain model.

Limitation: the compiled backward pass is built when the forward is compiled, so a failure there is
caught too; a failure that only appears in a later recompilation (a new input shape) is caught the same
way at that call.

Example:
    >>> import torch
    >>> layer = compile_model(torch.nn.Linear(3, 2), backend="eager")
    >>> layer(torch.ones(4, 3)).shape, sorted(layer.state_dict())
    (torch.Size([4, 2]), ['module.bias', 'module.weight'])
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from typing import Any

import torch
from torch import nn

from attnkit.kernels import fast_paths

__all__ = ["CompileFallbackWarning", "CompileUnavailable", "CompiledModule", "compile_model", "compile_unavailable_reason"]


class CompileUnavailable(RuntimeError):
    """``torch.compile`` cannot work here (raised by ``compile_model(..., strict=True)``)."""


class CompileFallbackWarning(UserWarning):
    """``torch.compile`` failed; the module runs without it."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = next((line.strip() for line in text if line.strip()), "")
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


def compile_unavailable_reason(backend: str = "inductor") -> str | None:
    """Why ``torch.compile(backend=backend)`` cannot work here, or None when nothing known stops it.

    Checks: ``torch.compile`` exists, TorchDynamo supports this Python, and (inductor) a C++ compiler
    is on the PATH (``$CXX``, ``c++``, ``g++`` or ``clang++``).

    Example:
        >>> compile_unavailable_reason("eager") is None
        True
    """
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile (it needs torch >= 2.0)"
    try:
        import torch._dynamo as dynamo  # noqa: PLC0415

        if hasattr(dynamo, "is_dynamo_supported") and not dynamo.is_dynamo_supported():
            return f"TorchDynamo does not support Python {sys.version.split()[0]} with torch {torch.__version__}"
    except Exception as exc:  # noqa: BLE001 -- an import failure of dynamo itself is the reason
        return f"TorchDynamo cannot be imported: {_one_line(exc)}"
    if backend == "inductor":
        names = [os.environ.get("CXX", ""), "c++", "g++", "clang++"]
        if not any(name and shutil.which(name) for name in names):
            return "inductor needs a C++ compiler and none was found (set $CXX or install g++)"
    return None


class CompiledModule(nn.Module):
    """``module`` called through ``torch.compile``, falling back to eager at the first compile failure.

    Args:
        module: any ``nn.Module``.
        backend, mode, dynamic: passed to ``torch.compile``.
        strict: raise ``CompileUnavailable`` (one line) instead of warning and falling back.

    Attributes:
        fallback_reason: None while compiled; the one-line cause once it fell back to eager.

    Example:
        >>> import torch
        >>> m = CompiledModule(torch.nn.Linear(2, 2), backend="eager")
        >>> m(torch.ones(1, 2)).shape, m.fallback_reason
        (torch.Size([1, 2]), None)
    """

    def __init__(self, module: nn.Module, *, backend: str = "inductor", mode: str | None = None,
                 dynamic: bool | None = None, strict: bool = False) -> None:
        super().__init__()
        self.module = module
        self.strict = strict
        self.fallback_reason: str | None = None
        # not a registered sub-module: parameters and state-dict keys stay the plain module's
        object.__setattr__(self, "_compiled", torch.compile(module, backend=backend, mode=mode, dynamic=dynamic))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.fallback_reason is None:
            try:
                with fast_paths(False):  # inductor cannot lower attnkit's oneDNN linear; it fuses on its own
                    return self._compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 -- decide below whether the model or compile failed
                compile_error = exc
            out = self.module(*args, **kwargs)  # a genuine error of the model raises here, unchanged
            reason = _one_line(compile_error)
            if self.strict:
                raise CompileUnavailable(f"torch.compile failed on {type(self.module).__name__}: {reason}") from None
            self.fallback_reason = reason
            warnings.warn(f"torch.compile failed on {type(self.module).__name__} ({reason}); running it without "
                          "compilation", CompileFallbackWarning, stacklevel=2)
            return out
        return self.module(*args, **kwargs)


def compile_model(module: nn.Module, *, backend: str = "inductor", mode: str | None = None,
                  dynamic: bool | None = None, strict: bool = False) -> nn.Module:
    """Compile ``module`` with ``torch.compile`` when that can work here.

    Args:
        module: any ``nn.Module`` (an attnkit model, layer or the trainer's step module).
        backend: ``torch.compile`` backend ("inductor" compiles to C++/OpenMP on CPU; "eager" only traces).
        mode: ``torch.compile`` mode (None, "reduce-overhead", "max-autotune").
        dynamic: ``torch.compile``'s dynamic-shape setting (None: decide after a recompilation).
        strict: raise ``CompileUnavailable`` with a one-line message instead of warning and falling back.

    Returns:
        A :class:`CompiledModule` wrapping ``module``, or ``module`` itself (after a
        ``CompileFallbackWarning``) when compilation is known not to work here.

    Example:
        >>> import torch
        >>> compile_model(torch.nn.Linear(2, 2), backend="eager").fallback_reason is None
        True
    """
    reason = compile_unavailable_reason(backend)
    if reason is not None:
        if strict:
            raise CompileUnavailable(f"torch.compile is not available here: {reason}")
        warnings.warn(f"torch.compile is not available here ({reason}); running without compilation",
                      CompileFallbackWarning, stacklevel=2)
        return module
    return CompiledModule(module, backend=backend, mode=mode, dynamic=dynamic, strict=strict)
