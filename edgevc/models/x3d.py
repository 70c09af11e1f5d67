"""X3D: expanded tiny 3D ResNets with channel-wise convolutions.

Christoph Feichtenhofer, "X3D: Expanding Architectures for Efficient Video
Recognition", CVPR 2020, arXiv:2004.04730. This is PyTorchVideo's
``create_x3d`` (the builder behind its X3D_XS/S/M checkpoints, trained with
PySlowFast), layer for layer:

- stem: 1x3x3 conv stride (1, 2, 2) to 24 channels, then a channel-wise
  5x1x1 temporal conv, BN, ReLU (no pooling, no temporal stride anywhere);
- 4 stages of (1, 2, 5, 3) x depth factor 2.2 = (3, 5, 11, 7) residual
  bottlenecks, widths 24, 48, 96, 192, inner width x 2.25 (54, 108, 216,
  432): 1x1x1 conv, BN, ReLU; channel-wise 3x3x3 conv (spatial stride 2 in
  the first block of each stage), BN, squeeze-excite (ratio 1/16, on blocks
  0, 2, 4, ... of each stage), Swish; 1x1x1 conv, BN; then the shortcut sum
  and ReLU. The first block of a stage has a 1x1x1 strided projection
  shortcut (with BN only where the width changes: PyTorchVideo has no BN on
  stage 1's projection, 24 -> 24, where PySlowFast has one);
- head: 1x1x1 conv 192 -> 432, BN, ReLU, global average pool, 1x1x1 conv
  432 -> 2048 (no bias), ReLU, dropout 0.5, linear classifier.

X3D-XS, -S and -M share these weights' shapes (3.79 M parameters); they
differ only in their input: 4x160² (frame stride 12), 13x160² (stride 6)
and 16x224² (stride 5) at 30 fps. The head pools globally (a mean over T, H,
W) instead of PyTorchVideo's ``AvgPool3d`` sized for the training clip; at
that clip both give the same result, and the mean also works at other sizes
(8x112² for training, 182² or 256² for PySlowFast's 3-crop test). Outputs
are logits (PyTorchVideo appends a softmax).

Weights: none offline. ``pretrained=PATH`` loads a state dict of this layout
or of PyTorchVideo's (``model_state`` of ``X3D_XS.pyth`` etc.; the key names
are converted by :func:`convert_pytorchvideo_state_dict`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgevc.models.layers.init import init_weights
from edgevc.models.layers.se import SqueezeExcite3d, make_divisible
from edgevc.models.registry import ModelInfo, Published, register_model
from edgevc.models.weights import load_keeping_fresh_head, load_torch_state_dict, no_offline_weights
from edgevc.spec import ClipSpec, PreprocSpec

_log = logging.getLogger(__name__)


class X3DStem(nn.Module):
    """1x3x3 spatial conv (stride 2), channel-wise Tx1x1 temporal conv, BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, temporal_kernel: int = 5) -> None:
        super().__init__()
        self.conv_xy = nn.Conv3d(in_channels, out_channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1),
                                 bias=False)
        self.conv_t = nn.Conv3d(out_channels, out_channels, (temporal_kernel, 1, 1),
                                padding=(temporal_kernel // 2, 0, 0), groups=out_channels, bias=False)
        self.norm = nn.BatchNorm3d(out_channels)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv_t(self.conv_xy(x))))


class X3DBottleneck(nn.Module):
    """1x1x1 -> channel-wise 3x3x3 (+ SE) -> 1x1x1, with BN after each conv."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, stride: int, se_ratio: float) -> None:
        super().__init__()
        self.conv_a = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.norm_a = nn.BatchNorm3d(dim_inner)
        self.act_a = nn.ReLU(inplace=True)
        self.conv_b = nn.Conv3d(dim_inner, dim_inner, 3, stride=(1, stride, stride), padding=1,
                                groups=dim_inner, bias=False)
        self.norm_b = nn.BatchNorm3d(dim_inner)
        self.se = (SqueezeExcite3d(dim_inner, squeeze_channels=make_divisible(dim_inner * se_ratio))
                   if se_ratio > 0 else nn.Identity())
        self.act_b = nn.SiLU()  # Swish
        self.conv_c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.se(self.norm_b(self.conv_b(x))))
        return self.norm_c(self.conv_c(x))


class X3DBlock(nn.Module):
    """Residual block: ReLU(shortcut(x) + bottleneck(x)); projection shortcut on a width or stride change."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, stride: int, se_ratio: float) -> None:
        super().__init__()
        project = dim_in != dim_out or stride > 1
        self.branch1_conv = (nn.Conv3d(dim_in, dim_out, 1, stride=(1, stride, stride), bias=False)
                             if project else None)
        # PyTorchVideo normalises the projection only when the width changes.
        self.branch1_norm = nn.BatchNorm3d(dim_out) if dim_in != dim_out else None
        self.branch2 = X3DBottleneck(dim_in, dim_inner, dim_out, stride, se_ratio)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.branch1_conv is not None:
            shortcut = self.branch1_conv(x)
        if self.branch1_norm is not None:
            shortcut = self.branch1_norm(shortcut)
        return self.activation(shortcut + self.branch2(x))


class X3DStage(nn.Module):
    """``depth`` blocks; the first strides and widens, SE on blocks 0, 2, 4, ..."""

    def __init__(self, depth: int, dim_in: int, dim_inner: int, dim_out: int, stride: int,
                 se_ratio: float) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList(
            X3DBlock(dim_in if i == 0 else dim_out, dim_inner, dim_out, stride if i == 0 else 1,
                     se_ratio if i % 2 == 0 else 0.0)
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


class X3DHead(nn.Module):
    """1x1x1 conv + BN + ReLU, global mean over (T, H, W), 1x1x1 conv + ReLU, dropout, linear."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.pre_conv = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.pre_norm = nn.BatchNorm3d(dim_inner)
        self.pre_act = nn.ReLU(inplace=True)
        self.post_conv = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.post_act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.proj = nn.Linear(dim_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_act(self.pre_norm(self.pre_conv(x)))
        x = x.mean(dim=(2, 3, 4), keepdim=True)  # any T, H, W
        x = self.post_act(self.post_conv(x)).flatten(1)
        return self.proj(self.dropout(x))


class X3D(nn.Module):
    """X3D as ``blocks = [stem, stage1..stage4, head]`` (PyTorchVideo's module tree).

    Input (N, 3, T, H, W) with H and W multiples of 32 for the published
    shapes (any size >= 32 runs); output (N, num_classes) logits.
    """

    head_keys = ("blocks.5.proj.weight", "blocks.5.proj.bias")

    def __init__(
        self,
        num_classes: int = 400,
        in_channels: int = 3,
        width_factor: float = 2.0,
        depth_factor: float = 2.2,
        bottleneck_factor: float = 2.25,
        stem_dim: int = 12,
        stage_depths: tuple[int, ...] = (1, 2, 5, 3),
        se_ratio: float = 0.0625,
        head_dim: int = 2048,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        dim_in = make_divisible(stem_dim * width_factor)
        blocks: list[nn.Module] = [X3DStem(in_channels, dim_in)]
        base = stem_dim
        for i, depth in enumerate(stage_depths):
            base = base if i == 0 else make_divisible(base * 2.0)
            dim_out = make_divisible(base * width_factor)
            dim_inner = int(bottleneck_factor * dim_out)
            blocks.append(X3DStage(math.ceil(depth * depth_factor), dim_in, dim_inner, dim_out, 2, se_ratio))
            dim_in = dim_out
        blocks.append(X3DHead(dim_in, dim_inner, head_dim, num_classes, dropout))
        self.blocks = nn.ModuleList(blocks)
        self.num_classes = num_classes
        self.num_features = head_dim
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The stage-4 feature map (N, 192, T, H/32, W/32)."""
        for block in self.blocks[:-1]:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[-1](self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final linear layer by a new, initialised one."""
        head = self.blocks[-1]
        head.proj = nn.Linear(self.num_features, num_classes, device=head.proj.weight.device)
        init_weights(head.proj)
        self.num_classes = num_classes


# PyTorchVideo key fragment -> edgevc key fragment (the module tree is otherwise the same).
_PTV_RENAMES = (
    ("blocks.0.conv.conv_t.", "blocks.0.conv_xy."),  # PyTorchVideo's stem names its 1x3x3 conv "conv_t"
    ("blocks.0.conv.conv_xy.", "blocks.0.conv_t."),  # ... and its 5x1x1 conv "conv_xy"
    (".norm_b.0.", ".norm_b."),
    (".norm_b.1.block.0.", ".se.fc1."),
    (".norm_b.1.block.2.", ".se.fc2."),
    ("blocks.5.pool.", "blocks.5."),
)


def convert_pytorchvideo_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of a PyTorchVideo ``create_x3d`` state dict to this module's.

    Example: ``blocks.1.res_blocks.0.branch2.norm_b.1.block.0.weight`` (the SE's
    first conv) becomes ``blocks.1.res_blocks.0.branch2.se.fc1.weight``.
    """
    out = {}
    for key, value in state.items():
        for old, new in _PTV_RENAMES:
            if old in key:
                key = key.replace(old, new)
                break
        out[key] = value
    return out


def _is_pytorchvideo_layout(state: dict[str, torch.Tensor]) -> bool:
    return any(old in k for k in state for old, _ in _PTV_RENAMES)


def _load_pretrained(model: X3D, pretrained: bool | str | Path, name: str) -> None:
    if pretrained is False or pretrained is None:
        return
    if pretrained is True:
        raise no_offline_weights(name, "edgevc or PyTorchVideo X3D")
    state = load_torch_state_dict(pretrained)
    if _is_pytorchvideo_layout(state):
        state = convert_pytorchvideo_state_dict(state)
    load_keeping_fresh_head(model, state, str(pretrained), X3D.head_keys)


def _create_x3d(variant: str, num_classes: int = 400, pretrained: bool | str | Path = False,
                **kw: Any) -> X3D:
    model = X3D(num_classes=num_classes, **{**_CFGS[variant]["arch"], **kw})
    _load_pretrained(model, pretrained, variant)
    return model


_ARCH = {"width_factor": 2.0, "depth_factor": 2.2, "bottleneck_factor": 2.25}
# clip: PySlowFast configs/Kinetics/X3D_{XS,S,M}.yaml (NUM_FRAMES, SAMPLING_RATE) at 30 fps;
# crop: TRAIN_CROP_SIZE, i.e. the single-crop test (TEST_CROP_SIZE = crop, short side resized to it).
# params, macs: edgevc's count (count_flops) at the default input with 400 classes; tests recompute them.
_CFGS: dict[str, dict[str, Any]] = {
    "x3d_xs": {"arch": _ARCH, "frames": 4, "stride": 12, "crop": 160, "gmacs": 0.60,
               "params": 3_794_274, "macs": 605_256_512},
    "x3d_s": {"arch": _ARCH, "frames": 13, "stride": 6, "crop": 160, "gmacs": 1.96,
              "params": 3_794_274, "macs": 1_962_892_112},
    "x3d_m": {"arch": _ARCH, "frames": 16, "stride": 5, "crop": 224, "gmacs": 4.73,
              "params": 3_794_274, "macs": 4_732_468_736},
}

_PAPER = ("X3D: Expanding Architectures for Efficient Video Recognition "
          "(Feichtenhofer, CVPR 2020, arXiv:2004.04730)")
_NOTES = ("Weights: none offline; pretrained=PATH loads an edgevc or PyTorchVideo X3D state dict "
          "(PyTorchVideo's X3D_*.pyth keep it under 'model_state'). Labels are left unset: the class order "
          "of those checkpoints (PySlowFast's Kinetics-400 ids) is not checked offline. PySlowFast's 30-view "
          "test resizes the short side to 182 (XS, S) or 256 (M) and takes 3 crops of that size; the "
          "global-mean head runs at those sizes too. PyTorchVideo leaves stage 1's 24->24 projection "
          "shortcut without BN (PySlowFast has one: +48 parameters); edgevc follows PyTorchVideo. The model "
          "zoos' 0.91/2.96/6.72 'GFLOPs' per view are at the 3-crop test size (182², 182², 256²) and add "
          "fvcore's 5 FLOPs per BatchNorm output element (its train-mode estimate) to the conv/linear "
          "multiply-adds: edgevc counts 0.839/2.722/6.181 GMACs there, and adding 5 x 0.0141/0.0459/0.1070 G "
          "BN elements gives 0.909/2.952/6.715.")


def _info(name: str) -> ModelInfo:
    cfg = _CFGS[name]
    crop = cfg["crop"]
    return ModelInfo(
        name=name, family="x3d", paper=_PAPER,
        clip=ClipSpec(num_frames=cfg["frames"], mode="strided", stride=cfg["stride"], fps=30.0),
        preproc=PreprocSpec(crop=(crop, crop), resize_short=crop, mean=(0.45, 0.45, 0.45),
                            std=(0.225, 0.225, 0.225), value_range=(0.0, 1.0), channel_order="RGB",
                            layout="NCTHW"),
        num_classes=400, params=cfg["params"], macs=cfg["macs"], weights=None, labels=None,
        published=Published(
            source=("X3D paper (GFLOPs = GMACs at the nominal input); params: PySlowFast MODEL_ZOO 3.8M "
                    "(PyTorchVideo model zoo: 3.79M)"),
            params=3_800_000, macs=cfg["gmacs"] * 1e9, input=(cfg["frames"], crop, crop),
            convention="multiply-adds (the paper's 'FLOPs' are multiply-adds)",
        ),
        notes=_NOTES,
    )


@register_model(_info("x3d_xs"))
def x3d_xs(num_classes: int = 400, pretrained: bool | str | Path = False, **kw: Any) -> nn.Module:
    """X3D-XS: 4 frames, stride 12, 160x160."""
    return _create_x3d("x3d_xs", num_classes=num_classes, pretrained=pretrained, **kw)


@register_model(_info("x3d_s"))
def x3d_s(num_classes: int = 400, pretrained: bool | str | Path = False, **kw: Any) -> nn.Module:
    """X3D-S: 13 frames, stride 6, 160x160."""
    return _create_x3d("x3d_s", num_classes=num_classes, pretrained=pretrained, **kw)


@register_model(_info("x3d_m"))
def x3d_m(num_classes: int = 400, pretrained: bool | str | Path = False, **kw: Any) -> nn.Module:
    """X3D-M: 16 frames, stride 5, 224x224."""
    return _create_x3d("x3d_m", num_classes=num_classes, pretrained=pretrained, **kw)
