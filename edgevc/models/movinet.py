"""MoViNet A0-A2, base and causal-stream forms.

Paper: "MoViNets: Mobile Video Networks for Efficient Video Recognition",
D. Kondratyuk, L. Yuan, Y. Li, L. Zhang, M. Tan, M. Brown, B. Gong, CVPR 2021,
arXiv:2103.11511. Layout from the official TF Model Garden
(``official/projects/movinet/modeling/movinet.py`` block specs,
``movinet_layers.py``) and the PyTorch port Atze00/MoViNet-pytorch.

Blocks: a 1x3x3 stride-2 stem; stacks of inverted bottlenecks (1x1x1
expansion, depthwise 3D conv (1x5x5, 3x3x3, 5x3x3 or 1x3x3), squeeze-excite,
1x1x1 projection, a ReZero scalar on the branch, and a shortcut that is
identity or avg-pool + 1x1x1 projection); a head (1x1x1 projection, global
average pool, dense 2048 with swish, dense classifier). Swish activations,
sigmoid gates, BatchNorm eps 1e-3.

Two forms with the same parameters (the same state-dict keys and shapes):

- base (``movinet_a0``...): temporal convs padded symmetrically, SE and head
  pool over the whole clip;
- stream (``movinet_a0_stream``...): temporal convs causal with a frame
  buffer (:class:`~edgevc.models.layers.causal_conv.CausalConv3d`), SE on the
  cumulative average of frames 0..t, head pool as a running average. Run it
  frame by frame with ``init_state`` / ``forward_step``; ``forward(clip)``
  gives the logits after the clip's last frame.

The stream form is the paper's (3D causal convs, causal SE with cumulative
global average pooling). The TF Model Garden's current stream checkpoints use
a later mobile variant ((2+1)D convs, SE on [cumulative 3D, per-frame 2D]
pools, hard-swish) whose parameters differ; they do not load here.

Differences from TF, on purpose: spatial padding is symmetric ``k // 2``
(TF "same" pads one more pixel at the end for stride 2; same output sizes),
and there is no positional encoding (the TF README: A0-A2 streams have none).
Frames must be at least 33 pixels a side (the last skip pool needs a 3x3 map).

FLOPs convention: the paper's "GFLOPs" are multiply-adds (as in X3D). Our
counter (convs and dense layers, 1 MAC = 2 FLOPs) gives 2.63 / 5.87 / 11.56 G
multiply-adds for A0/A1/A2 base at 50x172², 50x172², 50x224² against the
published 2.7 / 6.0 / 10.3; counting 2 FLOPs per MAC would double ours (5.26 G
for A0). The same specs give 55.6 G for A3 at 120x256² (published 56.9) and
103.3 G for A4 at 80x290² (published 105). The small A0/A1 residue is about
the size of the elementwise ops our counter skips; A2's published row does
not match the released A2 spec (see each entry's ``Published.note``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from edgevc.errors import EdgevcError
from edgevc.models.layers.causal_conv import CausalConv3d
from edgevc.models.layers.causal_se import CausalSqueezeExcite3d
from edgevc.models.layers.init import init_weights
from edgevc.models.layers.stream_pool import CumulativeAvgPool3d
from edgevc.models.registry import ModelInfo, Published, register_model
from edgevc.models.weights import load_keeping_fresh_head, load_torch_state_dict, no_offline_weights
from edgevc.spec import ClipSpec, PreprocSpec

Shape = tuple[int, ...]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor``, never more than 10% down (TF ``make_divisible``)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def _down(size: int, stride: int) -> int:
    """Output side of an odd kernel with ``k // 2`` padding: ceil(size / stride)."""
    return -(-size // stride)


class ConvBNAct(nn.Module):
    """Conv3d (causal in time if ``causal`` and kt > 1) + BatchNorm3d + optional swish."""

    def __init__(self, cin: int, cout: int, kernel: Shape, stride: Shape = (1, 1, 1), groups: int = 1,
                 causal: bool = False, act: bool = True) -> None:
        super().__init__()
        if causal and kernel[0] > 1:
            self.conv: nn.Conv3d = CausalConv3d(cin, cout, kernel, stride, groups=groups)
        else:
            pad = tuple(k // 2 for k in kernel)
            self.conv = nn.Conv3d(cin, cout, kernel, stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01)
        self.act = nn.SiLU() if act else nn.Identity()
        self.spatial_stride = stride[1]

    @property
    def num_states(self) -> int:
        return self.conv.num_states if isinstance(self.conv, CausalConv3d) else 0

    def state_spec(self, batch: int, h: int, w: int) -> tuple[list[tuple[str, Shape]], int, int]:
        shapes = self.conv.state_shapes(batch, h, w) if isinstance(self.conv, CausalConv3d) else []
        s = self.spatial_stride
        return [("conv.buffer", shape) for shape in shapes], _down(h, s), _down(w, s)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))

    def stream(self, x: Tensor, states: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        if isinstance(self.conv, CausalConv3d):
            x, new = self.conv.stream(x, states)
        else:
            x, new = self.conv(x), []
        return self.act(self.bn(x)), new


class MovinetBlock(nn.Module):
    """Inverted bottleneck: expand, depthwise 3D conv, SE, project; ``shortcut + rezero * branch``."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: Shape, stride: Shape, causal: bool) -> None:
        super().__init__()
        self.expand = ConvBNAct(cin, expand, (1, 1, 1))
        self.dw = ConvBNAct(expand, expand, kernel, stride, groups=expand, causal=causal)
        self.se = CausalSqueezeExcite3d(expand, make_divisible(0.25 * expand), causal=causal)
        self.project = ConvBNAct(expand, cout, (1, 1, 1), act=False)
        self.rezero = nn.Parameter(torch.zeros(()))  # TF "rezero" Scale, initialised at 0
        downsample = stride[1] > 1
        self.skip: nn.Module | None = None
        if cin != cout or downsample:
            pool = (nn.AvgPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1), count_include_pad=False)
                    if downsample else nn.Identity())
            self.skip = nn.Sequential()
            self.skip.add_module("pool", pool)
            self.skip.add_module("proj", ConvBNAct(cin, cout, (1, 1, 1), act=False))

    @property
    def num_states(self) -> int:
        return self.dw.num_states + self.se.num_states

    def state_spec(self, batch: int, h: int, w: int) -> tuple[list[tuple[str, Shape]], int, int]:
        spec, h, w = self.dw.state_spec(batch, h, w)
        spec = [(f"dw.{name}", s) for name, s in spec]
        spec += [("se.pool.sum", s) for s in self.se.state_shapes(batch)]
        return spec, h, w

    def _shortcut(self, x: Tensor) -> Tensor:
        return x if self.skip is None else self.skip(x)

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        return self._shortcut(x) + self.rezero * y

    def stream(self, x: Tensor, states: list[Tensor], count: Tensor) -> tuple[Tensor, list[Tensor]]:
        n = self.dw.num_states
        y, new_dw = self.dw.stream(self.expand(x), states[:n])
        y, new_se = self.se.stream(y, states[n:], count)
        return self._shortcut(x) + self.rezero * self.project(y), new_dw + new_se


class MovinetHead(nn.Module):
    """1x1x1 projection + swish, (running) global average, dense + swish, dropout, classifier."""

    def __init__(self, cin: int, project: int, hidden: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.project = ConvBNAct(cin, project, (1, 1, 1))
        self.pool = CumulativeAvgPool3d(project, keep_time=False)
        self.fc = nn.Linear(project, hidden)
        self.act = nn.SiLU()
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_classes)

    def _classify(self, pooled: Tensor) -> Tensor:
        return self.classifier(self.drop(self.act(self.fc(pooled.flatten(1)))))

    def forward(self, x: Tensor) -> Tensor:
        return self._classify(self.pool(self.project(x)))

    def stream(self, x: Tensor, states: list[Tensor], count: Tensor) -> tuple[Tensor, list[Tensor]]:
        pooled, new = self.pool.stream(self.project(x), states, count)
        return self._classify(pooled), new


class MoViNet(nn.Module):
    """MoViNet from a config row; ``causal=True`` builds the stream form (same parameters).

    Stream state (``init_state``): a flat list of tensors, ``state[0]`` the
    number of frames seen (float, shape (1,)), then one buffer per causal
    temporal conv and one running sum per SE and for the head, in execution
    order (``state_names`` names them). Shapes depend on the input H, W.
    """

    def __init__(self, cfg: dict, num_classes: int = 600, causal: bool = False, dropout: float = 0.2,
                 input_size: tuple[int, int] = (172, 172)) -> None:
        super().__init__()
        self.causal = causal
        self.input_size = tuple(input_size)
        self.stem = ConvBNAct(3, cfg["stem"], (1, 3, 3), (1, 2, 2), causal=causal)
        blocks, cin = [], cfg["stem"]
        for cout, layers in cfg["stages"]:
            for expand, kernel, stride in layers:
                blocks.append(MovinetBlock(cin, cout, expand, kernel, stride, causal))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = MovinetHead(cin, cfg["project"], cfg["hidden"], num_classes, dropout)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, K) of a clip (N, 3, T, H, W); for the stream form, after its last frame."""
        return self.head(self.blocks(self.stem(x)))

    # -- streaming -------------------------------------------------------------------------------
    def _state_spec(self, batch: int, input_size: tuple[int, int] | None) -> list[tuple[str, Shape]]:
        if not self.causal:
            raise EdgevcError("this MoViNet is the base (non-causal) form and cannot stream",
                              hint="build the '_stream' entry (e.g. movinet_a0_stream): same weights")
        h, w = input_size if input_size is not None else self.input_size
        spec: list[tuple[str, Shape]] = [("frame_count", (1,))]
        part, h, w = self.stem.state_spec(batch, h, w)
        spec += [(f"stem.{n}", s) for n, s in part]
        for i, block in enumerate(self.blocks):
            part, h, w = block.state_spec(batch, h, w)
            spec += [(f"blocks.{i}.{n}", s) for n, s in part]
        spec += [("head.pool.sum", s) for s in self.head.pool.state_shapes(batch)]
        return spec

    def state_names(self) -> list[str]:
        """Names of the ``init_state`` tensors, in order (for export input/output names)."""
        return [name for name, _ in self._state_spec(1, None)]

    def init_state(self, batch: int = 1, input_size: tuple[int, int] | None = None) -> list[Tensor]:
        """Zero state for frames of ``input_size`` (H, W); default: the model's crop."""
        ref = next(self.parameters())
        spec = self._state_spec(batch, input_size)
        return [torch.zeros(s, dtype=ref.dtype, device=ref.device) for _, s in spec]

    def forward_step(self, frame: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Logits after ``frame`` (N, 3, 1, H, W; T > 1 also works) and the next state. Pure."""
        expected = len(self._state_spec(1, None))
        if len(state) != expected:
            raise EdgevcError(f"forward_step got {len(state)} state tensors, this model uses {expected}",
                              hint="start from model.init_state(batch, input_size=(H, W))")
        count, rest, i = state[0], state[1:], 0
        x, new = self.stem.stream(frame, rest[i:i + self.stem.num_states])
        i += self.stem.num_states
        for block in self.blocks:
            x, part = block.stream(x, rest[i:i + block.num_states], count)
            i += block.num_states
            new += part
        logits, part = self.head.stream(x, rest[i:], count)
        return logits, [count + frame.shape[2], *new, *part]


def _load_pretrained(model: MoViNet, pretrained: bool | str | Path, name: str) -> None:
    if pretrained is True:
        raise no_offline_weights(name)
    load_keeping_fresh_head(model, load_torch_state_dict(pretrained), str(pretrained),
                            ("head.classifier.weight", "head.classifier.bias"))


def _create_movinet(variant: str, num_classes: int = 600, pretrained: bool | str | Path = False,
                    causal: bool = False, **kw) -> MoViNet:
    cfg = _CFGS[variant]
    kw.setdefault("input_size", (cfg["crop"], cfg["crop"]))
    model = MoViNet(cfg, num_classes=num_classes, causal=causal, **kw)
    if pretrained:
        _load_pretrained(model, pretrained, f"movinet_{variant}{'_stream' if causal else ''}")
    return model


# Config table (TF Model Garden BLOCK_SPECS): stages of (base_filters, [(expand, kernel, stride)]).
K13, K15, K33, K53 = (1, 3, 3), (1, 5, 5), (3, 3, 3), (5, 3, 3)
S11, S12 = (1, 1, 1), (1, 2, 2)
_CFGS: dict[str, dict] = {
    "a0": dict(stem=8, project=480, hidden=2048, crop=172, stages=[
        (8, [(24, K15, S12)]),
        (32, [(80, K33, S12), (80, K33, S11), (80, K33, S11)]),
        (56, [(184, K53, S12), (112, K33, S11), (184, K33, S11)]),
        (56, [(184, K53, S11), (184, K33, S11), (184, K33, S11), (184, K33, S11)]),
        (104, [(384, K53, S12), (280, K15, S11), (280, K15, S11), (344, K15, S11)]),
    ]),
    "a1": dict(stem=16, project=600, hidden=2048, crop=172, stages=[
        (16, [(40, K15, S12), (40, K33, S11)]),
        (40, [(96, K33, S12), (120, K33, S11), (96, K33, S11), (96, K33, S11)]),
        (64, [(216, K53, S12), (128, K33, S11), (216, K33, S11), (168, K33, S11), (216, K33, S11)]),
        (64, [(216, K53, S11), (216, K33, S11), (216, K33, S11), (128, K33, S11), (128, K15, S11),
              (216, K33, S11)]),
        (136, [(456, K53, S12), (360, K15, S11), (360, K15, S11), (360, K15, S11), (456, K15, S11),
               (456, K33, S11), (544, K13, S11)]),
    ]),
    "a2": dict(stem=16, project=640, hidden=2048, crop=224, stages=[
        (16, [(40, K15, S12), (40, K33, S11), (64, K33, S11)]),
        (40, [(96, K33, S12), (120, K33, S11), (96, K33, S11), (96, K33, S11), (120, K33, S11)]),
        (72, [(240, K53, S12), (160, K33, S11), (240, K33, S11), (192, K33, S11), (240, K33, S11)]),
        (72, [(240, K53, S11), (240, K33, S11), (240, K33, S11), (240, K33, S11), (144, K15, S11),
              (240, K33, S11)]),
        (144, [(480, K53, S12), (384, K15, S11), (384, K15, S11), (480, K15, S11), (480, K15, S11),
               (480, K33, S11), (576, K13, S11)]),
    ]),
}

_PAPER = ("MoViNets: Mobile Video Networks for Efficient Video Recognition "
          "(Kondratyuk et al., CVPR 2021, arXiv:2103.11511)")
_SOURCE = "Kondratyuk et al. 2021 (arXiv:2103.11511), Kinetics-600 results; TF Model Garden movinet README"
_CONVENTION = ("multiply-adds (the paper and the TF README say 'GFLOPs'; our MAC count is within 1.6-2.9% "
               "of them for A0, A1, A3, A4, while 2 FLOPs per MAC would be twice as large)")
_STREAM_NOTES = ("Stream form of movinet_{v}: causal 3D convs with frame buffers, SE on cumulative averages, "
                 "running-average head; the same state dict as movinet_{v}. Run frame by frame with "
                 "init_state()/forward_step(); forward(clip) gives the logits after the last frame. "
                 "Not the TF Hub (2+1)D hard-swish stream checkpoints (other parameters).")
_BASE_NOTES = ("Base form: symmetric temporal padding, whole-clip SE and pooling. 50 frames at 5 fps "
               "(10 s of Kinetics video) as in the paper; Kinetics-600 head, no offline weights.")
_A2_NOTE = ("Not reproduced: the released TF Model Garden A2 spec, followed here, gives 5,249,562 params "
            "(+9.4% over 4.8M; the released A2 checkpoint is 20 MB, about 5.25M float32) and 11.56 G "
            "multiply-adds at 50x224² (+12% over 10.3 G). The paper's A2 row describes a smaller A2 than the "
            "released spec (the A0/A1 rows match it to 3%).")


def _info(variant: str, stream: bool, params: int, macs: int, pub_params: int, pub_macs: float,
          note: str = "") -> ModelInfo:
    crop = _CFGS[variant]["crop"]
    return ModelInfo(
        name=f"movinet_{variant}" + ("_stream" if stream else ""), family="movinet", paper=_PAPER,
        clip=ClipSpec(num_frames=50, mode="strided", stride=1, fps=5.0),
        preproc=PreprocSpec(crop=(crop, crop), resize_short=crop, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                            value_range=(0.0, 1.0)),
        num_classes=600, params=params, macs=macs, weights=None, labels=None,
        published=Published(source=_SOURCE, params=pub_params, macs=pub_macs, input=(50, crop, crop),
                             convention=_CONVENTION, note=note),
        stream=stream, notes=_STREAM_NOTES.format(v=variant) if stream else _BASE_NOTES,
    )


@register_model(_info("a0", False, 3_111_799, 2_630_733_808, 3_100_000, 2.7e9, note=(
    "2.6% under: we count 2.631 G multiply-adds (convs and dense layers only) against 2.7 G. The gap, about "
    "0.07 G, is the size of the elementwise work our counter skips at this input: BatchNorm on 0.065 G "
    "output elements and SE gating on 0.018 G. Params match (3,111,799 vs 3.1M).")))
def movinet_a0(num_classes: int = 600, pretrained: bool | str | Path = False, **kw) -> MoViNet:
    return _create_movinet("a0", num_classes=num_classes, pretrained=pretrained, **kw)


@register_model(_info("a1", False, 4_690_296, 5_865_612_704, 4_600_000, 6.0e9, note=(
    "2.2% under: we count 5.866 G multiply-adds (convs and dense layers only) against 6.0 G. The gap, about "
    "0.13 G, is the size of the elementwise work our counter skips: BatchNorm on 0.117 G output elements and "
    "SE gating on 0.035 G. Params 4,690,296 vs 4.6M (+2.0%).")))
def movinet_a1(num_classes: int = 600, pretrained: bool | str | Path = False, **kw) -> MoViNet:
    return _create_movinet("a1", num_classes=num_classes, pretrained=pretrained, **kw)


@register_model(_info("a2", False, 5_249_562, 11_558_071_168, 4_800_000, 10.3e9, note=_A2_NOTE))
def movinet_a2(num_classes: int = 600, pretrained: bool | str | Path = False, **kw) -> MoViNet:
    return _create_movinet("a2", num_classes=num_classes, pretrained=pretrained, **kw)


@register_model(_info("a0", True, 3_111_799, 2_647_392_240, 3_100_000, 2.7e9))
def movinet_a0_stream(num_classes: int = 600, pretrained: bool | str | Path = False, **kw) -> MoViNet:
    return _create_movinet("a0", num_classes=num_classes, pretrained=pretrained, causal=True, **kw)


@register_model(_info("a1", True, 4_690_296, 5_908_532_000, 4_600_000, 6.0e9))
def movinet_a1_stream(num_classes: int = 600, pretrained: bool | str | Path = False, **kw) -> MoViNet:
    return _create_movinet("a1", num_classes=num_classes, pretrained=pretrained, causal=True, **kw)


@register_model(_info("a2", True, 5_249_562, 11_611_797_120, 4_800_000, 10.3e9, note=_A2_NOTE))
def movinet_a2_stream(num_classes: int = 600, pretrained: bool | str | Path = False, **kw) -> MoViNet:
    return _create_movinet("a2", num_classes=num_classes, pretrained=pretrained, causal=True, **kw)
