"""MoViNet squeeze-excite: global (base) or cumulative causal (stream) pooling, same weights.

Base models squeeze with one global average over (T, H, W) and gate every
frame with it. Stream models squeeze with the cumulative average of frames
``0 .. t`` (:class:`~edgevc.models.layers.stream_pool.CumulativeAvgPool3d`),
so frame ``t``'s gate never sees the future. Both use the same two 1x1x1
convolutions with bias (``fc1`` -> activation -> ``fc2`` -> sigmoid), so the
parameters and state-dict keys are the same in both modes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgevc.models.layers.stream_pool import CumulativeAvgPool3d


class CausalSqueezeExcite3d(nn.Module):
    """``x * sigmoid(fc2(act(fc1(pool(x)))))``; ``pool`` is global, or cumulative if ``causal``."""

    def __init__(self, channels: int, hidden: int, causal: bool = False,
                 act: type[nn.Module] = nn.SiLU) -> None:
        super().__init__()
        self.causal = causal
        self.pool = CumulativeAvgPool3d(channels, keep_time=True) if causal else None
        self.fc1 = nn.Conv3d(channels, hidden, 1)
        self.act = act()
        self.fc2 = nn.Conv3d(hidden, channels, 1)

    @property
    def num_states(self) -> int:
        return 1 if self.causal else 0

    def state_shapes(self, batch: int) -> list[tuple[int, ...]]:
        return self.pool.state_shapes(batch) if self.pool is not None else []

    def _gate(self, s: Tensor) -> Tensor:
        return torch.sigmoid(self.fc2(self.act(self.fc1(s))))

    def forward(self, x: Tensor) -> Tensor:
        s = self.pool(x) if self.pool is not None else x.mean(dim=(2, 3, 4), keepdim=True)
        return x * self._gate(s)

    def stream(self, x: Tensor, states: list[Tensor], count: Tensor) -> tuple[Tensor, list[Tensor]]:
        if self.pool is None:
            raise RuntimeError("a non-causal squeeze-excite cannot stream; build it with causal=True")
        s, new = self.pool.stream(x, states, count)
        return x * self._gate(s), new
