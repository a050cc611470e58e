"""``attnkit.training.compile``: torch.compile with a one-line failure or a warned fallback.

Failures are simulated by replacing ``torch.compile`` with one whose compiled call raises (as inductor does
when it cannot lower an operator), so these tests never wait for a real compilation.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from attnkit.training import compile as compile_mod
from attnkit.training.compile import (
    CompiledModule,
    CompileFallbackWarning,
    CompileUnavailable,
    compile_model,
    compile_unavailable_reason,
)
from attnkit.training.config import TrainConfig
from attnkit.training.trainer import Trainer


def _failing_compile(module, **kwargs):
    def broken(*args, **kw):
        raise RuntimeError("LoweringException: inductor cannot lower op\nlong details")

    return broken


class Regression(torch.nn.Module):
    config = None

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.linear(x).squeeze(-1)

    def training_step(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y), {}


class Stream(list):
    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_compile_failure_warns_once_and_falls_back_to_the_same_numbers(monkeypatch):
    monkeypatch.setattr(torch, "compile", _failing_compile)
    layer = torch.nn.Linear(4, 5)
    wrapped = compile_model(layer)
    x = torch.randn(6, 4)
    with pytest.warns(CompileFallbackWarning, match=r"torch.compile failed on Linear \(RuntimeError: Lowering"):
        out = wrapped(x)
    torch.testing.assert_close(out, x @ layer.weight.T + layer.bias)
    assert wrapped.fallback_reason == "RuntimeError: LoweringException: inductor cannot lower op"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        wrapped(x)
    assert sorted(wrapped.state_dict()) == ["module.bias", "module.weight"]


def test_strict_compile_failure_is_one_line(monkeypatch):
    monkeypatch.setattr(torch, "compile", _failing_compile)
    wrapped = compile_model(torch.nn.Linear(4, 5), strict=True)
    with pytest.raises(CompileUnavailable) as info:
        wrapped(torch.randn(2, 4))
    assert str(info.value) == "torch.compile failed on Linear: RuntimeError: LoweringException: inductor cannot lower op"


def test_a_genuine_model_error_is_raised_unchanged(monkeypatch):
    monkeypatch.setattr(torch, "compile", _failing_compile)
    wrapped = compile_model(torch.nn.Linear(4, 5))
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        wrapped(torch.randn(2, 3))
    assert wrapped.fallback_reason is None


def test_no_cxx_compiler_is_reported_before_compiling(monkeypatch):
    monkeypatch.setattr(compile_mod.shutil, "which", lambda name: None)
    reason = compile_unavailable_reason("inductor")
    assert reason == "inductor needs a C++ compiler and none was found (set $CXX or install g++)"
    layer = torch.nn.Linear(2, 2)
    with pytest.warns(CompileFallbackWarning, match="C\\+\\+ compiler"):
        assert compile_model(layer) is layer
    with pytest.raises(CompileUnavailable, match="^torch.compile is not available here: inductor needs"):
        compile_model(layer, strict=True)


def test_eager_backend_compiles_and_matches():
    layer = torch.nn.Linear(3, 2)
    wrapped = CompiledModule(layer, backend="eager")
    x = torch.randn(5, 3, dtype=torch.float64).float()
    torch.testing.assert_close(wrapped(x), (x.double() @ layer.weight.double().T + layer.bias.double()).float())
    assert wrapped.fallback_reason is None


def test_trainer_compile_flag_trains_like_eager_when_compile_fails(monkeypatch):
    x = torch.randn(8, 3)
    data = Stream([(x, x.sum(-1))])

    def train(compile_flag):
        torch.manual_seed(0)
        model = Regression()
        config = TrainConfig(steps=3, lr=0.1, eval_every=3, progress=False, device="cpu", compile=compile_flag)
        Trainer(model, config, data).fit()
        return model.linear.weight.detach().clone()

    eager = train(False)
    monkeypatch.setattr(torch, "compile", _failing_compile)
    with pytest.warns(CompileFallbackWarning):
        compiled = train(True)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=0)
