"""TensorFlow "SAME" padding for Conv3d and MaxPool3d, exactly as TF, JAX and Sonnet compute it.

TF's rule, per spatial or temporal axis of size ``n`` with kernel ``k`` and
stride ``s``::

    out       = ceil(n / s)
    pad_total = max((out - 1) * s + k - n, 0)
    pad_begin = pad_total // 2            # the extra pixel, if any, goes at the END
    pad_end   = pad_total - pad_begin

Worked example (the one in TF's docs): ``n = 13, k = 6, s = 5`` gives
``out = 3``, ``pad_total = 3``, so 1 before and 2 after. I3D's stem
(``n = 224, k = 7, s = 2``) pads 2 before and 3 after; PyTorch's symmetric
``padding=3`` would shift every output by one pixel.

When the pads are symmetric (every stride-1 layer with an odd kernel) the
layers use the native ``padding`` argument, so exported graphs stay a plain
convolution or pooling; only asymmetric axes get an explicit ``F.pad``.
Max-pooling pads with ``-inf`` (TF ignores padded positions), convolution
with zeros. The pads depend on the input size, which is a plain int at
trace and export time, so the layers run on the meta device too.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(pad_begin, pad_end) of TF "SAME" for one axis; ``same_pads(13, 6, 5) == (1, 2)``."""
    out = -(-size // stride)  # ceil without floats
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pads_3d(shape: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> list[tuple[int, int]]:
    return [same_pads(n, k, s) for n, k, s in zip(shape[-3:], kernel, stride, strict=True)]


def _f_pad_arg(pads: list[tuple[int, int]]) -> list[int]:
    """(T, H, W) pads -> F.pad's order: last axis first, (begin, end) each."""
    return [p for begin_end in reversed(pads) for p in begin_end]


def _triple(v: int | Sequence[int]) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


class Conv3dSame(nn.Conv3d):
    """``nn.Conv3d`` whose padding follows TF "SAME" (asymmetric when TF's is); no dilation or groups."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, _triple(kernel_size), _triple(stride), padding=0,
                         bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = _pads_3d(x.shape, self.kernel_size, self.stride)
        if all(b == e for b, e in pads):
            return F.conv3d(x, self.weight, self.bias, self.stride, [b for b, _ in pads])
        return F.conv3d(F.pad(x, _f_pad_arg(pads)), self.weight, self.bias, self.stride, 0)


class MaxPool3dSame(nn.Module):
    """3D max-pooling with TF "SAME" padding (padded positions never win: they are ``-inf``)."""

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.kernel_size = _triple(kernel_size)
        self.stride = _triple(stride if stride is not None else kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = _pads_3d(x.shape, self.kernel_size, self.stride)
        if all(b == e for b, e in pads):  # symmetric SAME pads are <= (k - 1) / 2, as max_pool3d requires
            return F.max_pool3d(x, self.kernel_size, self.stride, [b for b, _ in pads])
        x = F.pad(x, _f_pad_arg(pads), value=float("-inf"))
        return F.max_pool3d(x, self.kernel_size, self.stride, 0)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=SAME"
