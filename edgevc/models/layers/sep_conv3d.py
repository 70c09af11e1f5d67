"""Conv3d-BN-ReLU units and the temporally separable conv of S3D.

From "Rethinking Spatiotemporal Feature Learning: Speed-Accuracy Trade-offs
in Video Classification" (Xie, Sun, Huang, Tu, Murphy, ECCV 2018,
arXiv:1712.04851): a ``k x k x k`` conv becomes a ``1 x k x k`` spatial
conv-BN-ReLU followed by a ``k x 1 x 1`` temporal conv-BN-ReLU. Unlike
:class:`~edgevc.models.layers.conv2plus1d.Conv2Plus1d` the mid width equals
the output width and both halves carry their own BN and ReLU.

Children are numbered like torchvision's ``Conv3dNormActivation``
(``0`` conv, ``1`` norm, ``2`` ReLU) and ``TemporalSeparableConv``
(``0`` spatial unit, ``1`` temporal unit), so state-dict keys load unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

NormLayer = Callable[[int], nn.Module]


class ConvNormAct3d(nn.Sequential):
    """Conv3d (no bias) -> norm -> ReLU; ``padding`` defaults to "same" for odd kernels at stride 1."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel: int | tuple[int, int, int] = 1,
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] | None = None,
        norm_layer: NormLayer = nn.BatchNorm3d,
    ) -> None:
        k = (kernel,) * 3 if isinstance(kernel, int) else kernel
        pad = tuple((x - 1) // 2 for x in k) if padding is None else padding
        super().__init__(
            nn.Conv3d(in_planes, out_planes, kernel_size=k, stride=stride, padding=pad, bias=False),
            norm_layer(out_planes),
            nn.ReLU(inplace=True),
        )


class SepConv3d(nn.Sequential):
    """``1 x k x k`` ConvNormAct (spatial stride) then ``k x 1 x 1`` ConvNormAct (temporal stride)."""

    def __init__(
        self, in_planes: int, out_planes: int, kernel: int, stride: int, padding: int,
        norm_layer: NormLayer = nn.BatchNorm3d,
    ) -> None:
        super().__init__(
            ConvNormAct3d(in_planes, out_planes, kernel=(1, kernel, kernel), stride=(1, stride, stride),
                          padding=(0, padding, padding), norm_layer=norm_layer),
            ConvNormAct3d(out_planes, out_planes, kernel=(kernel, 1, 1), stride=(stride, 1, 1),
                          padding=(padding, 0, 0), norm_layer=norm_layer),
        )
