"""TSM on MobileNetV2: offline (bidirectional shift) and online (causal shift with explicit state).

From "TSM: Temporal Shift Module for Efficient Video Understanding" (Lin, Gan,
Han, ICCV 2019, arXiv:1811.08383), on the MobileNetV2 backbone of Sandler et
al. (CVPR 2018, arXiv:1801.04381). Blocks:

- :class:`~edgevc.models.layers.mobilenet_v2.InvertedResidual` (torchvision
  layout, so the ImageNet backbone loads key for key);
- :class:`~edgevc.models.layers.temporal_shift.TemporalShift`: 1/8 of the
  channels move one frame, inside the residual branch ("residual shift") of
  each of the ten inverted residual blocks with an identity connection
  (``features`` 3, 5, 6, 8, 9, 10, 12, 13, 15, 16), as the authors' repository
  does (``ops/models.py`` wraps ``conv[0]`` of those blocks).

Each frame goes through the 2D network (clips ``(N, 3, T, H, W)`` are
batched as ``N*T`` frames), the shift mixes neighbouring frames, and the clip
logits are the mean of the per-frame logits (TSN average consensus).

The online form (the authors' ``online_demo``) shifts from the past only:
channels ``[0, C/8)`` of frame ``t`` are those of frame ``t-1``. It runs a
stream one frame at a time with the ten shifted slices as explicit state::

    model = create("tsm_mobilenet_v2_online").eval()
    state = model.init_state(batch=1, input_size=(224, 224))
    for frame in frames:                        # each (1, 3, 1, 224, 224)
        logits, state = model.forward_step(frame, state)

Frame by frame it gives the same per-frame logits as :meth:`forward_frames`
on the whole clip (causal, zero state before the first frame). A frame's
output depends on at most the 10 frames before it (one frame per shift
point on the path), so a stream forgets its start after 10 frames.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgevc import assets
from edgevc.errors import EdgevcError
from edgevc.models.layers.init import init_weights
from edgevc.models.layers.mobilenet_v2 import InvertedResidual, mobilenet_v2_features
from edgevc.models.layers.temporal_shift import TemporalShift, shift_fold
from edgevc.models.registry import ModelInfo, Published, register_model
from edgevc.models.weights import load_into, load_torch_state_dict
from edgevc.spec import ClipSpec, PreprocSpec

_log = logging.getLogger(__name__)


def _check_clip(x: torch.Tensor, what: str = "clip") -> None:
    if x.dim() != 5 or x.shape[1] != 3:
        raise EdgevcError(f"TSM expects a {what} of shape (N, 3, T, H, W), got {tuple(x.shape)}",
                          hint="lay the input out as NCTHW (the model's preproc.layout)")


class TSMMobileNetV2(nn.Module):
    """MobileNetV2 with temporal shifts; ``(N, 3, T, H, W)`` -> clip logits ``(N, num_classes)``.

    ``features`` and ``classifier = [Dropout, Linear]`` carry torchvision's
    names; the shift has no parameters, so the state dict is torchvision's.
    ``T`` is read from the input (the shift needs no fixed segment count).
    """

    head_keys = ("classifier.1.weight", "classifier.1.bias")

    def __init__(self, num_classes: int = 400, fold_div: int = 8, dropout: float = 0.5,
                 width_mult: float = 1.0, causal: bool = False) -> None:
        super().__init__()
        self.features = mobilenet_v2_features(width_mult)
        self.num_features = self.features[-1][0].out_channels
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))
        self.shift = TemporalShift(fold_div, causal=causal)
        # The blocks with an identity connection and an expansion conv (TSM's "blockres" places).
        self.shift_points: tuple[int, ...] = tuple(
            i for i, f in enumerate(self.features)
            if getattr(f, "use_res_connect", False) and getattr(f, "expand_ratio", 1) != 1
        )
        # TSM's new head: N(0, 0.001), zero bias (ops/models.py, _prepare_tsn).
        init_weights(self, head_std=0.001)

    def forward_features(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``(N*T, 3, H, W)`` frames -> ``(N*T, 1280, H/32, W/32)``, shifting at each shift point."""
        for i, block in enumerate(self.features):
            x = block(x, self.shift(x, num_frames)) if i in self.shift_points else block(x)
        return x

    def forward_frames(self, clip: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``(N, T, num_classes)`` of a clip ``(N, 3, T, H, W)``."""
        _check_clip(clip)
        n, c, t, h, w = clip.shape
        frames = clip.transpose(1, 2).reshape(n * t, c, h, w)
        logits = self.classifier(self.forward_features(frames, t).mean(dim=(2, 3)))
        return logits.reshape(n, t, -1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Clip logits ``(N, num_classes)``: the mean over frames of the per-frame logits."""
        return self.forward_frames(clip).mean(dim=1)


class OnlineTSMMobileNetV2(TSMMobileNetV2):
    """The online form: causal shift; adds the stream interface ``init_state`` / ``forward_step``.

    ``forward`` / ``forward_frames`` run a whole clip causally from a zero
    state, so a model trained on clips runs unchanged on a stream.
    """

    def __init__(self, num_classes: int = 400, fold_div: int = 8, dropout: float = 0.5,
                 width_mult: float = 1.0) -> None:
        super().__init__(num_classes, fold_div, dropout, width_mult, causal=True)

    def state_shapes(self, batch: int = 1, input_size: tuple[int, int] = (224, 224)) -> list[tuple[int, ...]]:
        """Shape ``(N, C/8, h, w)`` of each state tensor; ``h, w`` follow the stride-2 layers before it.

        At 224x224: 3x56x56, 4x28x28 (2), 8x14x14 (3), 12x14x14 (2), 20x7x7 (2).
        """
        h, w = input_size
        shapes = []
        for i, block in enumerate(self.features):
            if i in self.shift_points:
                shapes.append((batch, shift_fold(block.in_channels, self.shift.fold_div), h, w))
            stride = block.stride if isinstance(block, InvertedResidual) else block[0].stride[0]
            if stride == 2:  # 3x3, padding 1, stride 2: ceil(size / 2)
                h, w = (h + 1) // 2, (w + 1) // 2
        return shapes

    def init_state(self, batch: int = 1, input_size: tuple[int, int] = (224, 224)) -> list[torch.Tensor]:
        """Zeros, one tensor per shift point (the state before the first frame), on the model's device."""
        ref = self.classifier[1].weight
        shapes = self.state_shapes(batch, input_size)
        return [torch.zeros(s, dtype=ref.dtype, device=ref.device) for s in shapes]

    def forward_step(self, frame: torch.Tensor,
                     state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One frame ``(N, 3, 1, H, W)`` and the state -> (that frame's logits ``(N, K)``, the next state).

        Pure: nothing in the module or in ``state`` is written, so it exports
        with the state as explicit inputs and outputs.
        """
        _check_clip(frame, "frame")
        if frame.shape[2] != 1:
            raise EdgevcError(f"forward_step takes one frame (N, 3, 1, H, W), got {tuple(frame.shape)}",
                              hint="use forward_frames(clip) for several frames")
        if len(state) != len(self.shift_points):
            raise EdgevcError(f"forward_step needs {len(self.shift_points)} state tensors, got {len(state)}",
                              hint="start from model.init_state(batch, input_size)")
        x = frame[:, :, 0]
        new_state: list[torch.Tensor] = []
        for i, block in enumerate(self.features):
            if i in self.shift_points:
                shifted, s = self.shift.step(x, state[len(new_state)])
                new_state.append(s)
                x = block(x, shifted)
            else:
                x = block(x)
        return self.classifier(x.mean(dim=(2, 3))), new_state


def load_pretrained(model: TSMMobileNetV2, pretrained: bool | str | Path, name: str) -> int:
    """Load torchvision-layout weights: the ImageNet backbone (``True``) or a state dict file (a path).

    A checkpoint whose classifier has another number of classes (ImageNet's
    1000) loads everything but the head, which stays as initialised. Returns
    the number of tensors taken from the checkpoint.
    """
    if pretrained is False or pretrained is None:
        return 0
    path = assets.fetch(_WEIGHTS) if pretrained is True else Path(pretrained)
    state = load_torch_state_dict(path)
    own = model.state_dict()
    head = model.head_keys
    if any(k in state and state[k].shape != own[k].shape for k in head):
        state = {k: v for k, v in state.items() if k not in head}
        loaded = len(state)
        load_into(model, state | {k: own[k] for k in head}, source=str(path))
        _log.info("%s: loaded %d tensors from %s; head re-initialised for %d classes",
                  name, loaded, path.name, own[head[0]].shape[0])
        return loaded
    load_into(model, state, source=str(path))
    _log.info("%s: loaded all %d tensors from %s", name, len(state), path.name)
    return len(state)


def _create_tsm(variant: str, num_classes: int = 400, pretrained: bool | str | Path = False,
                **kw: Any) -> TSMMobileNetV2:
    cfg = {**_CFGS[variant], **kw}
    cls = OnlineTSMMobileNetV2 if cfg.pop("online") else TSMMobileNetV2
    model = cls(num_classes=num_classes, **cfg)
    load_pretrained(model, pretrained, variant)
    return model


_WEIGHTS = "mobilenet_v2_imagenet"

_CFGS: dict[str, dict[str, Any]] = {
    "tsm_mobilenet_v2": {"online": False, "fold_div": 8, "dropout": 0.5},
    "tsm_mobilenet_v2_online": {"online": True, "fold_div": 8, "dropout": 0.5},
}

_PAPER = ("TSM: Temporal Shift Module for Efficient Video Understanding "
          "(Lin, Gan, Han, ICCV 2019, arXiv:1811.08383)")

# Offline: 8 TSN segments, the centre frame of each. Over a stream the window is
# num_frames * stride = 64 frames at 25 fps (2.56 s), i.e. frames 4, 12, ..., 60: the
# 8-frames-8-apart spacing of the authors' Kinetics MobileNetV2 model ("dense", 8x8).
_CLIP = ClipSpec(num_frames=8, mode="segment", stride=8, fps=25.0, hop=32)
# Online: the same 8-frame spacing, strided; a stream feeds every 8th frame to
# forward_step and emits after each (hop 8), so online and offline see the same spacing.
_CLIP_ONLINE = ClipSpec(num_frames=8, mode="strided", stride=8, fps=25.0, hop=8)
_PREPROC = PreprocSpec(crop=(224, 224), resize_short=256, mean=(0.485, 0.456, 0.406),
                       std=(0.229, 0.224, 0.225), value_range=(0.0, 1.0), channel_order="RGB", layout="NCTHW")

_PUBLISHED = Published(
    source=("mmaction2 0.x configs/recognition/tsm/metafile.yml, "
            "tsm_mobilenetv2_dense_1x1x8_100e_kinetics400_rgb: FLOPs 3337519104, Parameters 2736272 "
            "(the same MobileNetV2 TSM, 8 frames, 400 classes)"),
    params=2_736_272, macs=3_337_519_104.0, input=(8, 256, 256),
    convention=("mmcv get_model_complexity_info 'FLOPs': conv/linear multiply-adds plus 2 per BatchNorm "
                "element, 1 per ReLU6 element and 1 per pooled element"),
    note=("Not multiply-adds alone, and not at 224x224. The metafile does not state its input; mmcv's "
          "rules at 8x256x256 give exactly 3,337,519,104 = conv+linear MACs 3,133,505,536 (edgevc's "
          "figure at published.input, 6.1% lower) + BatchNorm 139,558,912 + ReLU6 63,799,296 + global "
          "pool 655,360. Params 2,736,272 match exactly. At the default 8x224x224 edgevc counts "
          "2,400,050,176 MACs = 8 x 300,006,272 (torchvision's MobileNetV2 is 300,774,272 per 224x224 "
          "frame with 1000 classes; the 400-class head has 768,000 fewer). mmaction2 1.x's README lists "
          "3.269G for the same model with another counter (mmengine), which is not reproduced here."),
)

_NOTES = ("Weights: the ImageNet MobileNetV2 backbone (torchvision IMAGENET1K_V1, asset "
          "mobilenet_v2_imagenet); the 400-class head is new (N(0, 0.001)). No Kinetics TSM weights are "
          "fetchable offline: fine-tune, or pass pretrained=PATH with a torchvision-layout state dict. "
          "The shift adds no parameters and no MACs: per frame this is MobileNetV2 (torchvision: 0.301 "
          "GMACs, 3.50 M params with the 1000-class head).")
_NOTES_ONLINE = (_NOTES + " Online: causal shift (1/8 of the channels from the previous frame); stream "
                 "interface init_state / forward_step with the ten shifted slices as explicit state.")


@register_model(ModelInfo(
    name="tsm_mobilenet_v2", family="tsm", paper=_PAPER, clip=_CLIP, preproc=_PREPROC, num_classes=400,
    params=2_736_272, macs=2_400_050_176, weights=_WEIGHTS, labels=None, published=_PUBLISHED, notes=_NOTES,
))
def tsm_mobilenet_v2(num_classes: int = 400, pretrained: bool | str | Path = False, **kw: Any) -> nn.Module:
    """Offline TSM-MobileNetV2: bidirectional shift of 1/8 + 1/8 channels in the ten residual blocks."""
    return _create_tsm("tsm_mobilenet_v2", num_classes=num_classes, pretrained=pretrained, **kw)


@register_model(ModelInfo(
    name="tsm_mobilenet_v2_online", family="tsm", paper=_PAPER, clip=_CLIP_ONLINE, preproc=_PREPROC,
    num_classes=400, params=2_736_272, macs=2_400_050_176, weights=_WEIGHTS, labels=None,
    published=_PUBLISHED, stream=True, notes=_NOTES_ONLINE,
))
def tsm_mobilenet_v2_online(num_classes: int = 400, pretrained: bool | str | Path = False,
                            **kw: Any) -> nn.Module:
    """Online TSM-MobileNetV2: causal shift; ``forward_step(frame, state)`` for streams."""
    return _create_tsm("tsm_mobilenet_v2_online", num_classes=num_classes, pretrained=pretrained, **kw)
