"""Squeeze-and-excitation for 5-D video features (N, C, T, H, W).

Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507.
The block pools each channel to one number (the squeeze), passes the C
numbers through a two-layer bottleneck (1x1x1 convs with bias), and scales
every channel of the input by the resulting gate::

    gate = sigmoid(fc2(act(fc1(mean_{T,H,W}(x)))))     # (N, C, 1, 1, 1)
    out  = x * gate

Used by X3D (ratio 1/16, ReLU, sigmoid: fvcore's ``SqueezeExcitation``) and
usable by MoViNet (ratio 1/4, SiLU, hard-sigmoid): pass ``activation`` and
``gate``. A causal stream variant overrides :meth:`SqueezeExcite3d.squeeze`
(e.g. a running mean over time) and keeps the rest.

The squeeze is ``x.mean((2, 3, 4))``, not ``nn.AdaptiveAvgPool3d``: it works
at any input size and converts everywhere (coremltools has no
``adaptive_avg_pool3d``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never below ``min_value`` or 90 % of ``value``.

    The rule of PyTorchVideo's ``round_width``, PySlowFast's ``_round_width``
    and timm's ``make_divisible``. Examples: ``make_divisible(54 * 0.0625)``
    (3.375) gives 8 (the minimum); ``make_divisible(432 * 0.0625)`` (27.0)
    gives 24, which is below 0.9 * 27 = 24.3, so 32; ``make_divisible(24)``
    gives 24.
    """
    min_value = min_value or divisor
    out = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if out < 0.9 * value:
        out += divisor
    return int(out)


class SqueezeExcite3d(nn.Module):
    """Channel gating by a squeeze over (T, H, W); output shape equals input shape.

    Args:
        channels: input (and output) channels C.
        squeeze_channels: width of the bottleneck. When None it is
            ``make_divisible(channels * reduction_ratio, divisor)``.
        reduction_ratio: fraction of ``channels`` kept in the bottleneck
            (a multiplier: X3D uses 0.0625 = 1/16, MoViNet 0.25).
        activation: module class between the two 1x1x1 convs (ReLU in X3D).
        gate: module class turning the excitation into the gate (Sigmoid in
            X3D; ``nn.Hardsigmoid`` for MoViNet).
        divisor: rounding multiple for the computed ``squeeze_channels``.

    State-dict keys: ``fc1.weight``, ``fc1.bias``, ``fc2.weight``, ``fc2.bias``
    (fvcore's ``block.0`` / ``block.2``).
    """

    def __init__(
        self,
        channels: int,
        squeeze_channels: int | None = None,
        reduction_ratio: float = 0.25,
        activation: Callable[[], nn.Module] = nn.ReLU,
        gate: Callable[[], nn.Module] = nn.Sigmoid,
        divisor: int = 8,
    ) -> None:
        super().__init__()
        if squeeze_channels is None:
            squeeze_channels = make_divisible(channels * reduction_ratio, divisor)
        self.channels = channels
        self.squeeze_channels = squeeze_channels
        self.fc1 = nn.Conv3d(channels, squeeze_channels, kernel_size=1, bias=True)
        self.act = activation()
        self.fc2 = nn.Conv3d(squeeze_channels, channels, kernel_size=1, bias=True)
        self.gate = gate()

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) -> (N, C, 1, 1, 1): the mean over time and space."""
        return x.mean(dim=(2, 3, 4), keepdim=True)

    def excite(self, s: torch.Tensor) -> torch.Tensor:
        """The gate in (0, 1) for each channel, from the squeezed features."""
        return self.gate(self.fc2(self.act(self.fc1(s))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.excite(self.squeeze(x))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, squeeze_channels={self.squeeze_channels}"
