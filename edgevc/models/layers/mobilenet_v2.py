"""MobileNetV2 with torchvision's exact state-dict layout, as a 2D backbone for video models.

From "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (Sandler, Howard,
Zhu, Zhmoginov, Chen, CVPR 2018, arXiv:1801.04381). Module names and order
follow ``torchvision.models.mobilenet_v2`` (``features.0.0.weight`` ...
``features.18.1.running_var``, ``classifier.1.weight``), so torchvision's
ImageNet checkpoint (asset ``mobilenet_v2_imagenet``) loads with ``strict=True``.

``features`` index map (width 1.0, 224x224 input)::

    0       stem 3x3 conv, stride 2                          32 ch, 112x112
    1       inverted residual t=1                            16 ch, 112x112
    2..3    t=6, first stride 2                               24 ch, 56x56
    4..6    t=6, first stride 2                               32 ch, 28x28
    7..10   t=6, first stride 2                               64 ch, 14x14
    11..13  t=6                                               96 ch, 14x14
    14..16  t=6, first stride 2                              160 ch, 7x7
    17      t=6                                              320 ch, 7x7
    18      1x1 conv                                        1280 ch, 7x7

Blocks with a residual connection (stride 1, same width) are 3, 5, 6, 8, 9,
10, 12, 13, 15 and 16: the ten places where TSM shifts.
"""

from __future__ import annotations

import torch
from torch import nn

from edgevc.models.layers.init import init_weights

# (expand ratio t, output channels c, repeats n, first stride s), from the paper's Table 2.
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to a multiple of ``divisor``, never more than 10% down (torchvision's rule)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias), BatchNorm2d, ReLU6 (children 0, 1, 2, as torchvision's Conv2dNormActivation)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1, linear), plus the input when shapes allow.

    ``forward(x, branch_input)``: the residual branch reads ``branch_input``
    when given (TSM passes the temporally shifted ``x``), while the identity
    path keeps the unshifted ``x`` (the "residual shift" of TSM).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = int(round(in_ch * expand_ratio))
        self.in_channels = in_ch
        self.out_channels = out_ch
        self.stride = stride
        self.expand_ratio = expand_ratio
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(in_ch, hidden, kernel_size=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, branch_input: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x if branch_input is None else branch_input)
        return x + y if self.use_res_connect else y


def mobilenet_v2_features(width_mult: float = 1.0, last_channel: int = 1280) -> nn.Sequential:
    """The ``features`` stack: stem, 17 inverted residuals, final 1x1 conv (19 children)."""
    in_ch = make_divisible(32 * width_mult)
    last = make_divisible(last_channel * max(1.0, width_mult))
    layers: list[nn.Module] = [ConvBNReLU(3, in_ch, stride=2)]
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        out_ch = make_divisible(c * width_mult)
        for i in range(n):
            layers.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t))
            in_ch = out_ch
    layers.append(ConvBNReLU(in_ch, last, kernel_size=1))
    return nn.Sequential(*layers)


class MobileNetV2(nn.Module):
    """The image classifier: ``features``, global mean, ``classifier = [Dropout, Linear]``.

    Input ``(N, 3, H, W)``, output ``(N, num_classes)``. The global pool is a
    mean over (H, W) (torchvision uses ``adaptive_avg_pool2d(1)``: the same
    numbers, and an op every export target has).
    """

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = mobilenet_v2_features(width_mult)
        self.num_features = self.features[-1][0].out_channels
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))
