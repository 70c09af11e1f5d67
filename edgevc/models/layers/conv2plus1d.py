"""(2+1)D convolution: a ``t x k x k`` Conv3d factorised into a spatial and a temporal conv.

From "A Closer Look at Spatiotemporal Convolutions for Action Recognition"
(Tran, Wang, Torresani, Ray, LeCun, Paluri, CVPR 2018, arXiv:1711.11248).
A full ``3 x 3 x 3`` kernel from ``N_in`` to ``N_out`` channels becomes a
``1 x 3 x 3`` conv to ``M`` channels, BatchNorm, ReLU, then a ``3 x 1 x 1``
conv to ``N_out``. ``M`` is chosen so the pair has about as many parameters
as the full kernel (paper, Section 3.5)::

    M = floor(t * k^2 * N_in * N_out / (k^2 * N_in + t * N_out))

Worked example: ``N_in = 64, N_out = 128, t = k = 3`` gives
``floor(221184 / 960) = 230`` mid-channels.

The children are numbered like torchvision's ``Conv2Plus1D`` (``0`` spatial
conv, ``1`` its BatchNorm, ``2`` ReLU, ``3`` temporal conv), so its state-dict
keys load unchanged. No norm follows the temporal conv: the residual block adds it.
"""

from __future__ import annotations

from torch import nn


def midplanes(in_planes: int, out_planes: int, kt: int = 3, ks: int = 3) -> int:
    """Mid-channels that give a (2+1)D pair about the parameters of a ``kt x ks x ks`` kernel."""
    return (kt * ks * ks * in_planes * out_planes) // (ks * ks * in_planes + kt * out_planes)


class Conv2Plus1d(nn.Sequential):
    """``1 x k x k`` conv (spatial stride) -> BN -> ReLU -> ``k x 1 x 1`` conv (temporal stride), no bias."""

    def __init__(
        self, in_planes: int, out_planes: int, mid_planes: int, stride: int = 1, padding: int = 1,
        kernel: int = 3,
    ) -> None:
        super().__init__(
            nn.Conv3d(in_planes, mid_planes, kernel_size=(1, kernel, kernel), stride=(1, stride, stride),
                      padding=(0, padding, padding), bias=False),
            nn.BatchNorm3d(mid_planes),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid_planes, out_planes, kernel_size=(kernel, 1, 1), stride=(stride, 1, 1),
                      padding=(padding, 0, 0), bias=False),
        )
