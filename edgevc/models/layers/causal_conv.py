"""Causal temporal convolution with a frame buffer, for streaming 3D CNNs (MoViNet stream buffers).

A ``CausalConv3d`` with temporal kernel ``kt`` sees frames ``t - kt + 1 .. t``
only: the clip is padded with ``kt - 1`` zero frames before its start and
none after (spatial padding is the usual symmetric ``k // 2``). Streaming
keeps the last ``kt - 1`` input frames as the *buffer*; feeding a clip frame
by frame with the buffer gives exactly the full-clip output. Example with
``kt = 3`` and frames ``f0 f1 f2``::

    full clip:  conv([0, 0, f0]), conv([0, f0, f1]), conv([f0, f1, f2])
    stream:     buffer [0, 0] + f0 -> conv([0, 0, f0]), buffer [0, f0]; ...

It subclasses ``nn.Conv3d``, so its state-dict keys (``weight``, ``bias``)
are those of a plain Conv3d: weights move between the symmetric (base) and
causal (stream) forms of a model unchanged. Padding is built with
``torch.cat`` (ExecuTorch rejects ``F.pad`` on 5-D tensors in INT8 graphs).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CausalConv3d(nn.Conv3d):
    """Conv3d causal in time (temporal stride 1); ``stream`` carries a ``kt - 1`` frame buffer."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int, int],
                 stride: tuple[int, int, int] = (1, 1, 1), groups: int = 1, bias: bool = False) -> None:
        kt, kh, kw = kernel_size
        if stride[0] != 1:
            raise ValueError(f"CausalConv3d supports temporal stride 1 only, got stride {stride}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=(0, kh // 2, kw // 2), groups=groups, bias=bias)
        self.buffer_size = kt - 1

    @property
    def num_states(self) -> int:
        return 1 if self.buffer_size > 0 else 0

    def state_shapes(self, batch: int, height: int, width: int) -> list[tuple[int, ...]]:
        """The buffer's shape (N, C_in, kt - 1, H, W) for an input of ``height`` x ``width``."""
        if not self.buffer_size:
            return []
        return [(batch, self.in_channels, self.buffer_size, height, width)]

    def forward(self, x: Tensor) -> Tensor:
        """Full clip, from an all-zero past."""
        if self.buffer_size:
            n, c, _, h, w = x.shape
            x = torch.cat([x.new_zeros(n, c, self.buffer_size, h, w), x], dim=2)
        return super().forward(x)

    def stream(self, x: Tensor, states: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """``x`` (N, C, T >= 1, H, W) after the frames held in ``states[0]``; returns (y, [new buffer])."""
        if not self.buffer_size:
            return super().forward(x), []
        full = torch.cat([states[0], x], dim=2)
        return super().forward(full), [full[:, :, -self.buffer_size:]]
