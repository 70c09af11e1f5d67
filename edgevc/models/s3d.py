"""S3D: separable 3D Inception-v1, with torchvision's exact state-dict layout.

From "Rethinking Spatiotemporal Feature Learning: Speed-Accuracy Trade-offs
in Video Classification" (Xie, Sun, Huang, Tu, Murphy, ECCV 2018,
arXiv:1712.04851). I3D's Inception-v1 with every ``k x k x k`` conv replaced
by a spatial ``1 x k x k`` then temporal ``k x 1 x 1`` conv
(:class:`~edgevc.models.layers.sep_conv3d.SepConv3d`). Blocks:

- :class:`~edgevc.models.layers.sep_conv3d.ConvNormAct3d`: Conv3d-BN-ReLU;
- :class:`SepInception3d`: four branches (1x1x1; 1x1x1 -> separable 3x3x3
  twice; 3x3x3 max-pool -> 1x1x1), concatenated on channels.

The layer sequence is data (``_CFGS``) and its indices match
``torchvision.models.video.S3D.features``, so a torchvision Kinetics-400
checkpoint loads with ``strict=True`` through ``pretrained=PATH``.

The network strides time by 8 and space by 32, then average-pools a
``2 x 7 x 7`` window: it needs at least 13 frames (torchvision's metadata
says ``min_temporal_size`` 14) and 209 x 209 pixels (the final map must be at
least 2 x 7 x 7; 12 frames or 208 pixels fail).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgevc.models.layers.sep_conv3d import ConvNormAct3d, NormLayer, SepConv3d
from edgevc.models.registry import ModelInfo, Published, register_model
from edgevc.models.resnet3d import load_pretrained
from edgevc.spec import ClipSpec, PreprocSpec


class SepInception3d(nn.Module):
    """Inception block with separable convs: output channels ``b0 + b1 + b2 + b3``."""

    def __init__(
        self, in_planes: int, b0: int, b1_mid: int, b1: int, b2_mid: int, b2: int, b3: int,
        norm_layer: NormLayer,
    ) -> None:
        super().__init__()
        self.branch0 = ConvNormAct3d(in_planes, b0, norm_layer=norm_layer)
        self.branch1 = nn.Sequential(
            ConvNormAct3d(in_planes, b1_mid, norm_layer=norm_layer),
            SepConv3d(b1_mid, b1, kernel=3, stride=1, padding=1, norm_layer=norm_layer),
        )
        self.branch2 = nn.Sequential(
            ConvNormAct3d(in_planes, b2_mid, norm_layer=norm_layer),
            SepConv3d(b2_mid, b2, kernel=3, stride=1, padding=1, norm_layer=norm_layer),
        )
        self.branch3 = nn.Sequential(
            nn.MaxPool3d(kernel_size=3, stride=1, padding=1),
            ConvNormAct3d(in_planes, b3, norm_layer=norm_layer),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), dim=1)


def _layer(spec: tuple, norm_layer: NormLayer) -> nn.Module:
    """One entry of ``_CFGS[...]["features"]`` as a module."""
    kind, *args = spec
    if kind == "sep":  # (in, out, kernel, stride, padding)
        return SepConv3d(*args, norm_layer=norm_layer)
    if kind == "conv":  # (in, out): 1x1x1
        return ConvNormAct3d(*args, norm_layer=norm_layer)
    if kind == "pool":  # (kernel, stride, padding) as (t, h, w) tuples
        return nn.MaxPool3d(*args)
    if kind == "mixed":  # (in, b0, b1_mid, b1, b2_mid, b2, b3)
        return SepInception3d(*args, norm_layer=norm_layer)
    raise ValueError(f"unknown S3D layer kind {kind!r}")  # a config-table bug, not user input


class S3D(nn.Module):
    """``features`` -> 2x7x7 average pool (stride 1) -> dropout -> 1x1x1 conv head -> mean over (T, H, W).

    Input ``(N, 3, T, H, W)`` with ``T >= 13`` and ``H, W >= 209``; output logits ``(N, num_classes)``.
    BatchNorm uses eps 1e-3 and momentum 1e-3, as the TF original and torchvision do.
    """

    head_keys = ("classifier.1.weight", "classifier.1.bias")

    def __init__(
        self, features: tuple[tuple, ...], width: int = 1024, num_classes: int = 400, dropout: float = 0.2,
        bn_eps: float = 1e-3, bn_momentum: float = 1e-3,
    ) -> None:
        super().__init__()
        norm_layer = partial(nn.BatchNorm3d, eps=bn_eps, momentum=bn_momentum)
        self.features = nn.Sequential(*(_layer(spec, norm_layer) for spec in features))
        self.avgpool = nn.AvgPool3d(kernel_size=(2, 7, 7), stride=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Conv3d(width, num_classes, kernel_size=1, stride=1, bias=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.classifier(self.avgpool(self.features(x)))
        return x.mean(dim=(2, 3, 4))


def _create_s3d(variant: str, num_classes: int = 400, pretrained: bool | str | Path = False,
                **kw: Any) -> S3D:
    model = S3D(**{**_CFGS[variant], **kw}, num_classes=num_classes)
    load_pretrained(model, pretrained, variant, S3D.head_keys)
    return model


_T2, _S2 = (1, 3, 3), (1, 2, 2)  # spatial-only max-pool: kernel, stride
_CFGS: dict[str, dict[str, Any]] = {
    "s3d": {
        "width": 1024,
        "features": (
            ("sep", 3, 64, 7, 2, 3),  # 0: 1x7x7 s2 + 7x1x1 s2
            ("pool", _T2, _S2, (0, 1, 1)),  # 1
            ("conv", 64, 64),  # 2
            ("sep", 64, 192, 3, 1, 1),  # 3
            ("pool", _T2, _S2, (0, 1, 1)),  # 4
            ("mixed", 192, 64, 96, 128, 16, 32, 32),  # 5: Mixed_3b
            ("mixed", 256, 128, 128, 192, 32, 96, 64),  # 6: Mixed_3c
            ("pool", (3, 3, 3), (2, 2, 2), (1, 1, 1)),  # 7
            ("mixed", 480, 192, 96, 208, 16, 48, 64),  # 8: Mixed_4b
            ("mixed", 512, 160, 112, 224, 24, 64, 64),  # 9: Mixed_4c
            ("mixed", 512, 128, 128, 256, 24, 64, 64),  # 10: Mixed_4d
            ("mixed", 512, 112, 144, 288, 32, 64, 64),  # 11: Mixed_4e
            ("mixed", 528, 256, 160, 320, 32, 128, 128),  # 12: Mixed_4f
            ("pool", (2, 2, 2), (2, 2, 2), (0, 0, 0)),  # 13
            ("mixed", 832, 256, 160, 320, 32, 128, 128),  # 14: Mixed_5b
            ("mixed", 832, 384, 192, 384, 48, 128, 128),  # 15: Mixed_5c
        ),
    },
}


@register_model(ModelInfo(
    name="s3d", family="s3d",
    paper=("Rethinking Spatiotemporal Feature Learning: Speed-Accuracy Trade-offs in Video Classification "
           "(Xie et al., ECCV 2018, arXiv:1712.04851)"),
    # torchvision trained S3D on 64-frame clips at 15 fps (and evaluated on 128): the default clip is
    # the training clip. The published cost figure is at 16 frames (see ``published.input``).
    clip=ClipSpec(num_frames=64, mode="strided", stride=1, fps=15.0),
    # torchvision's VideoClassification(resize_size=(256, 256), crop_size=(224, 224)).
    preproc=PreprocSpec(crop=(224, 224), resize_short=256, mean=(0.43216, 0.394666, 0.37645),
                        std=(0.22803, 0.22145, 0.216989), value_range=(0.0, 1.0), channel_order="RGB",
                        layout="NCTHW"),
    num_classes=400, params=8_320_048, macs=71_916_314_624, weights=None, labels="kinetics400",
    published=Published(
        source="torchvision 0.29.1 S3D_Weights.KINETICS400_V1.meta (num_params, _ops)",
        params=8_320_048, macs=17.979e9, input=(16, 224, 224),
        convention="multiply-adds (torchvision's '_ops' GFLOPS are GMACs)",
    ),
    notes=("Weights: none offline; pretrained=PATH loads a torchvision Kinetics-400 checkpoint (same keys). "
           "torchvision trained with --clip-len 64 at 15 fps and reports accuracy on one 128-frame clip "
           "per video; 16 frames (the published cost input) is the cheapest sensible clip "
           "(the network needs 13 or more). "
           "torchvision squashes frames to 256x256 (no antialias) before the 224x224 centre crop; edgevc "
           "resizes the short side to 256 (antialiased), which keeps the aspect ratio."),
))
def s3d(num_classes: int = 400, pretrained: bool | str | Path = False, **kw: Any) -> nn.Module:
    """S3D (torchvision ``s3d``); ``dropout`` (0.2) may be passed through ``kw``."""
    return _create_s3d("s3d", num_classes=num_classes, pretrained=pretrained, **kw)
