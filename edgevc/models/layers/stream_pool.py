"""Cumulative global average pooling (CGAP), with a running-sum state for streaming.

MoViNet's stream models replace every global average over time by a causal
one: the output at frame ``t`` averages frames ``0 .. t`` only. With
``keep_time=True`` (squeeze-excite) the output keeps one vector per frame,
``(N, C, T, 1, 1)``; with ``keep_time=False`` (the classifier head) it is the
average over all frames so far, ``(N, C, 1, 1, 1)``, which on a full clip is
plain global average pooling. Example for spatial means ``s0, s1, s2``::

    keep_time=True:   [s0, (s0 + s1) / 2, (s0 + s1 + s2) / 3]
    keep_time=False:  (s0 + s1 + s2) / 3

The stream state is the running sum of spatial means ``(N, C, 1, 1, 1)``; the
number of frames already seen (``count``, shape (1,)) is shared by the whole
model and passed in by the caller.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CumulativeAvgPool3d(nn.Module):
    """Causal average over time (and space) of (N, C, T, H, W); see the module docstring."""

    num_states = 1

    def __init__(self, channels: int, keep_time: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.keep_time = keep_time

    def state_shapes(self, batch: int) -> list[tuple[int, ...]]:
        return [(batch, self.channels, 1, 1, 1)]

    @staticmethod
    def _divisors(x: Tensor, start: Tensor | float) -> Tensor:
        t = x.shape[2]
        steps = torch.arange(1, t + 1, dtype=x.dtype, device=x.device).view(1, 1, t, 1, 1)
        return steps + start

    def forward(self, x: Tensor) -> Tensor:
        """Full clip, from an empty past."""
        s = x.mean(dim=(3, 4), keepdim=True)
        if not self.keep_time:
            return s.mean(dim=2, keepdim=True)
        return torch.cumsum(s, dim=2) / self._divisors(s, 0.0)

    def stream(self, x: Tensor, states: list[Tensor], count: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``x`` follows ``count`` frames whose spatial means sum to ``states[0]``."""
        s = x.mean(dim=(3, 4), keepdim=True)
        total = states[0]
        start = count.view(1, 1, 1, 1, 1)
        if not self.keep_time:
            total = total + s.sum(dim=2, keepdim=True)
            return total / (start + s.shape[2]), [total]
        cum = torch.cumsum(s, dim=2) + total
        return cum / self._divisors(s, start), [cum[:, :, -1:]]
