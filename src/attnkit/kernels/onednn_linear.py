"""Float32 linear layers on oneDNN: ``linear(x, W, b) = x W^T + b``, the function of
``torch.nn.functional.linear`` (its plain twin), computed with oneDNN's kernels shipped inside
PyTorch's CPU builds.

Inputs of fewer than :data:`MIN_ROWS` rows (decoding steps) take ``F.linear``, which has less overhead
per call, or inside :func:`attnkit.kernels.decoding_weights.transposed_weights` a product with a transposed
copy of the weight. The weight gradient ``dW = dy^T x`` needs one operand transposed: when one of ``dy`` and ``x`` is
at least :data:`NARROW` times narrower than the other (a language model's head: ``x`` 256 wide, ``dy``
8192), its transpose is copied and oneDNN computes ``dW^T = x^T dy`` (98 instead of 62 GFLOP/s for that
head on one AVX-512 core); otherwise torch's ``mm`` reads both transposed in place (no copy of a large
``dy``: 97 instead of 74 GFLOP/s for 16384 x 1536 x 512).

On CPUs where torch's default BLAS takes a slow code path (MKL on AMD processors, as on some machines
attnkit is benchmarked on) oneDNN computes the same float32 products about twice as fast; on others the
two are close. Results agree with ``F.linear`` to float32 rounding (a test compares both against
float64). Any other device, dtype, autocast, or the fast paths switched off, goes to ``F.linear``.

Shape legend: ``...`` any leading dims, ``in`` / ``out`` feature sizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.functional import _switch
from attnkit.kernels.decoding_weights import transposed_copy

#: oneDNN's fused linear kernel (shipped inside PyTorch's CPU builds), or None where absent.
_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None


#: Fewest input rows for which oneDNN runs: below it (a decoding step's few rows, a matrix-vector product)
#: torch's default path has less overhead per call.
MIN_ROWS = 64
#: Width ratio from which the weight gradient copies the narrower operand's transpose (see the module docstring).
NARROW = 4


def _onednn_applies(x: Tensor, weight: Tensor) -> bool:
    return (x.dim() >= 2 and x.numel() >= MIN_ROWS * x.shape[-1] > 0 and _switch._ENABLED
            and _ONEDNN_LINEAR is not None and x.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32 and not torch.is_autocast_enabled("cpu"))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x W^T + b`` as ``torch.nn.functional.linear``: ``(..., in) -> (..., out)`` with ``weight (out, in)``.

    On CPU in float32 (fast paths on, outside CPU autocast) the forward and both backward products run
    on oneDNN; otherwise this is ``F.linear``.

    Example:
        >>> x, w, b = torch.randn(2, 3, 4), torch.randn(5, 4), torch.randn(5)
        >>> bool(torch.allclose(linear(x, w, b), x @ w.T + b, atol=1e-6))
        True
    """
    if not _onednn_applies(x, weight):
        if x.dim() >= 2 and x.numel() < MIN_ROWS * x.shape[-1] and (wt := transposed_copy(x, weight)) is not None:
            rows = x.reshape(-1, x.shape[-1])  # (M, in), M < MIN_ROWS: a decoding step
            out = torch.mm(rows, wt) if bias is None else torch.addmm(bias, rows, wt)  # (M, out)
            return out.view(*x.shape[:-1], wt.shape[1])
        return F.linear(x, weight, bias)
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)):
        return _OneDNNLinear.apply(x, weight, bias)
    return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")


def _weight_grad(g: Tensor, x: Tensor) -> Tensor:
    """``dW = g^T x`` for ``g (M, out)``, ``x (M, in)``: ``(out, in)`` (see the module docstring for the layouts)."""
    if g.shape[1] >= NARROW * x.shape[1]:  # dW^T = x^T g: (in, out), returned as its transpose (a view)
        return _ONEDNN_LINEAR(x.t().contiguous(), g.t(), None, "none", [], "").t()
    if x.shape[1] >= NARROW * g.shape[1]:
        return _ONEDNN_LINEAR(g.t().contiguous(), x.t(), None, "none", [], "")
    return torch.mm(g.t(), x)


class _OneDNNLinear(torch.autograd.Function):
    """``y = x W^T + b``; backward ``dx = dy W``, ``dW = dy^T x``, ``db = sum_rows dy``: ``dx`` on oneDNN
    (written as a linear layer, ``dy W = linear(dy, W^T)``), ``dW`` in the layout of :func:`_weight_grad`."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        g = grad.reshape(-1, weight.shape[0])  # (M, out)
        x2 = x.reshape(-1, weight.shape[1])  # (M, in)
        # with create_graph=True (grad mode on here) the products are torch's differentiable ones
        differentiable = torch.is_grad_enabled()
        dx = dw = db = None
        if ctx.needs_input_grad[0]:  # dx = g W: (..., in)
            dx = (torch.mm(g, weight) if differentiable else _ONEDNN_LINEAR(g, weight.t(), None, "none", [], ""))
            dx = dx.view(x.shape)
        if ctx.needs_input_grad[1]:
            dw = torch.mm(g.t(), x2) if differentiable else _weight_grad(g, x2)  # (out, in)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = g.sum(0)  # (out,)
        return dx, dw, db


class Linear(nn.Linear):
    """``nn.Linear`` computed by :func:`linear`; the same parameters, names and initialisation.

    Example:
        >>> layer = Linear(4, 3)
        >>> layer(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def forward(self, input: Tensor) -> Tensor:
        return linear(input, self.weight, self.bias)
