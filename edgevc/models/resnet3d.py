"""Video ResNets R3D-18, MC3-18 and R(2+1)D-18, with torchvision's exact state-dict layout.

From "A Closer Look at Spatiotemporal Convolutions for Action Recognition"
(Tran, Wang, Torresani, Ray, LeCun, Paluri, CVPR 2018, arXiv:1711.11248).
All three are an 18-layer ResNet of :class:`BasicBlock` s over clips; they
differ only in the convolution inside each block:

- ``r3d_18``: full ``3 x 3 x 3`` convolutions everywhere (R3D);
- ``mc3_18``: ``3 x 3 x 3`` in ``layer1``, then ``1 x 3 x 3`` (no temporal
  extent) in ``layer2..4`` (MC3: "mixed convolutions", 3D low, 2D high);
- ``r2plus1d_18``: each ``3 x 3 x 3`` factorised into spatial + temporal
  (:class:`~edgevc.models.layers.conv2plus1d.Conv2Plus1d`), stem included.

Module names and their order follow ``torchvision.models.video.resnet``
(``stem``, ``layer1..4``, ``fc``), so a torchvision Kinetics-400 checkpoint
loads with ``strict=True`` through ``pretrained=PATH``. Numbers (params,
MACs) are data in the entries below and are recomputed by the tests.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgevc.models.layers.conv2plus1d import Conv2Plus1d, midplanes
from edgevc.models.layers.init import init_weights
from edgevc.models.registry import ModelInfo, Published, register_model
from edgevc.models.weights import load_keeping_fresh_head, load_torch_state_dict, no_offline_weights
from edgevc.spec import ClipSpec, PreprocSpec

_log = logging.getLogger(__name__)


def _block_conv(kind: str, in_planes: int, out_planes: int, mid_planes: int, stride: int) -> nn.Module:
    """The 3x3(x3) convolution of a block: ``3d`` full, ``2d`` no temporal extent, ``2plus1d`` factorised."""
    if kind == "3d":
        return nn.Conv3d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
    if kind == "2d":
        return nn.Conv3d(in_planes, out_planes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                         padding=(0, 1, 1), bias=False)
    return Conv2Plus1d(in_planes, out_planes, mid_planes, stride=stride)


class BasicBlock(nn.Module):
    """Two 3x3(x3) convs with BN, a residual (1x1x1 conv + BN when the shape changes), ReLU.

    A ``2d`` block keeps the time axis: its shortcut strides ``(1, s, s)``.
    The (2+1)D mid width is computed from ``(in_planes, planes)`` and used for
    both convs, as torchvision does (so ``layer2.0.conv2`` has 230 mid
    channels, not the 288 the formula gives for 128 -> 128).
    """

    def __init__(self, in_planes: int, planes: int, kind: str, stride: int = 1) -> None:
        super().__init__()
        mid = midplanes(in_planes, planes)
        self.conv1 = nn.Sequential(
            _block_conv(kind, in_planes, planes, mid, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(_block_conv(kind, planes, planes, mid, 1), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            ds_stride = (1, stride, stride) if kind == "2d" else (stride, stride, stride)
            self.downsample = nn.Sequential(
                nn.Conv3d(in_planes, planes, kernel_size=1, stride=ds_stride, bias=False),
                nn.BatchNorm3d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + shortcut)


def _stem(kind: str, width: int, mid: int) -> nn.Sequential:
    """``3d``: one 3x7x7 conv (spatial stride 2). ``2plus1d``: 1x7x7 to ``mid`` channels, then 3x1x1."""
    if kind == "2plus1d":
        return nn.Sequential(
            nn.Conv3d(3, mid, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, width, kernel_size=(3, 1, 1), stride=1, padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )
    return nn.Sequential(
        nn.Conv3d(3, width, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


class VideoResNet(nn.Module):
    """Stem, four stages of :class:`BasicBlock` (stride 1, 2, 2, 2), global mean, linear head.

    Input ``(N, 3, T, H, W)``, output logits ``(N, num_classes)``. The global
    pool is a mean over (T, H, W) rather than ``AdaptiveAvgPool3d``: the same
    numbers, and an op every export target has.
    """

    head_keys = ("fc.weight", "fc.bias")

    def __init__(
        self,
        stem: str,
        convs: tuple[str, ...],
        depths: tuple[int, ...],
        widths: tuple[int, ...] = (64, 128, 256, 512),
        stem_mid: int = 45,
        num_classes: int = 400,
    ) -> None:
        super().__init__()
        self.stem = _stem(stem, widths[0], stem_mid)
        in_planes = widths[0]
        for i, (kind, depth, width) in enumerate(zip(convs, depths, widths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(in_planes, width, kind, stride)]
            blocks += [BasicBlock(width, width, kind) for _ in range(depth - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            in_planes = width
        self.num_stages = len(depths)
        self.fc = nn.Linear(in_planes, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x).mean(dim=(2, 3, 4)))


def load_pretrained(
    model: nn.Module, pretrained: bool | str | Path | None, name: str, head_keys: tuple[str, ...]
) -> None:
    """Load a user's torchvision-layout state dict (``strict``, ``weights_only``); no offline weights exist."""
    if pretrained is False or pretrained is None:
        return
    if pretrained is True:
        raise no_offline_weights(name, "torchvision")
    load_keeping_fresh_head(model, load_torch_state_dict(pretrained), str(pretrained), head_keys)


def _create_resnet3d(variant: str, num_classes: int = 400, pretrained: bool | str | Path = False,
                     **kw: Any) -> VideoResNet:
    model = VideoResNet(**{**_CFGS[variant], **kw}, num_classes=num_classes)
    load_pretrained(model, pretrained, variant, VideoResNet.head_keys)
    return model


_CFGS: dict[str, dict[str, Any]] = {
    "r3d_18": {"stem": "3d", "convs": ("3d", "3d", "3d", "3d"), "depths": (2, 2, 2, 2)},
    "mc3_18": {"stem": "3d", "convs": ("3d", "2d", "2d", "2d"), "depths": (2, 2, 2, 2)},
    "r2plus1d_18": {"stem": "2plus1d", "convs": ("2plus1d",) * 4, "depths": (2, 2, 2, 2), "stem_mid": 45},
}

_PAPER = ("A Closer Look at Spatiotemporal Convolutions for Action Recognition "
          "(Tran et al., CVPR 2018, arXiv:1711.11248)")
# torchvision's reference recipe: 16 consecutive frames at 15 fps (clip_len=16, frame_rate=15).
_CLIP = ClipSpec(num_frames=16, mode="strided", stride=1, fps=15.0)
# torchvision's VideoClassification(resize_size=(128, 171), crop_size=(112, 112)).
_PREPROC = PreprocSpec(crop=(112, 112), resize_short=128, mean=(0.43216, 0.394666, 0.37645),
                       std=(0.22803, 0.22145, 0.216989), value_range=(0.0, 1.0), channel_order="RGB",
                       layout="NCTHW")
_NOTES = ("Weights: none offline; pretrained=PATH loads a torchvision Kinetics-400 checkpoint "
          "(torchvision.models.video, same keys). torchvision resizes frames to exactly 128x171 "
          "(no antialias) before the 112x112 centre crop; edgevc resizes the short side to 128 "
          "(antialiased), the same geometry for 4:3 sources such as most of Kinetics.")


def _published(weights_enum: str, params: int, gmacs: float) -> Published:
    return Published(
        source=f"torchvision 0.29.1 {weights_enum}.KINETICS400_V1.meta (num_params, _ops)",
        params=params, macs=gmacs * 1e9, input=(16, 112, 112),
        convention="multiply-adds (torchvision's '_ops' GFLOPS are GMACs)",
    )


@register_model(ModelInfo(
    name="r3d_18", family="resnet3d", paper=_PAPER, clip=_CLIP, preproc=_PREPROC, num_classes=400,
    params=33_371_472, macs=40_696_553_472, weights=None, labels="kinetics400",
    published=_published("R3D_18_Weights", 33_371_472, 40.697), notes=_NOTES,
))
def r3d_18(num_classes: int = 400, pretrained: bool | str | Path = False, **kw: Any) -> nn.Module:
    """R3D-18: full 3x3x3 convolutions (torchvision ``r3d_18``)."""
    return _create_resnet3d("r3d_18", num_classes=num_classes, pretrained=pretrained, **kw)


@register_model(ModelInfo(
    name="mc3_18", family="resnet3d", paper=_PAPER, clip=_CLIP, preproc=_PREPROC, num_classes=400,
    params=11_695_440, macs=43_342_635_008, weights=None, labels="kinetics400",
    published=_published("MC3_18_Weights", 11_695_440, 43.343), notes=_NOTES,
))
def mc3_18(num_classes: int = 400, pretrained: bool | str | Path = False, **kw: Any) -> nn.Module:
    """MC3-18: 3x3x3 in layer1, 1x3x3 in layer2..4 (torchvision ``mc3_18``)."""
    return _create_resnet3d("mc3_18", num_classes=num_classes, pretrained=pretrained, **kw)


@register_model(ModelInfo(
    name="r2plus1d_18", family="resnet3d", paper=_PAPER, clip=_CLIP, preproc=_PREPROC, num_classes=400,
    params=31_505_325, macs=40_519_080_960, weights=None, labels="kinetics400",
    published=_published("R2Plus1D_18_Weights", 31_505_325, 40.519), notes=_NOTES,
))
def r2plus1d_18(num_classes: int = 400, pretrained: bool | str | Path = False, **kw: Any) -> nn.Module:
    """R(2+1)D-18: every 3x3x3 factorised into 1x3x3 + 3x1x1 (torchvision ``r2plus1d_18``)."""
    return _create_resnet3d("r2plus1d_18", num_classes=num_classes, pretrained=pretrained, **kw)
