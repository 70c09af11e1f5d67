"""Preparing an export: the specs at the requested input, the model (cached), its metadata.

A randomly initialised model gets its BatchNorm statistics from real clips
(:func:`~edgevc.export.calib.calibrate_bn`); the entry's offline weights or a
state dict otherwise. The last models built are kept (read-only), with their
PyTorch reference logits, so exporting one model to several targets in one
process pays for BN calibration and the reference once.
"""

from __future__ import annotations

import copy
import weakref
from pathlib import Path
from typing import Any

from edgevc.errors import EdgevcError
from edgevc.export import calib as calib_mod
from edgevc.export.profiles import Resolved
from edgevc.spec import ArtifactMeta, ClipSpec, PreprocSpec

BN_CLIPS = 4


def adapt_specs(clip: ClipSpec, preproc: PreprocSpec, frames: int | None,
                size: int | None) -> tuple[ClipSpec, PreprocSpec]:
    """The clip spec with ``frames`` frames, the preprocessing with a ``size``² crop.

    The resize keeps its ratio to the crop: I3D's 256 -> 224 becomes 128 -> 112 at ``size=112``.
    """
    if frames:
        clip = clip.replace(num_frames=int(frames))
    if size:
        resize = preproc.resize_short
        if resize is not None:
            resize = max(int(size), round(resize * int(size) / min(preproc.crop)))
        preproc = preproc.replace(crop=(int(size), int(size)), resize_short=resize)
    return clip, preproc


# the last models built (BN calibration and the PyTorch reference logits cost more than most exports),
# shared read-only by exports of one model to several targets in a process; targets get a deep copy
_MODELS: dict[tuple, tuple[Any, bool, dict[str, Any]]] = {}
REFERENCE_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
MODEL_CACHE_SIZE = 2


def build_model(name: str, weights: str | Path | None, clip: ClipSpec,
                preproc: PreprocSpec) -> tuple[Any, bool, dict[str, Any]]:
    """(model in eval, trained?, what was done to it), cached: do not modify the model (deep-copy it)."""
    sig = None
    if weights is not None:
        st = Path(weights).stat()
        sig = (str(Path(weights).resolve()), st.st_size, st.st_mtime_ns)
    key = (name, sig, clip, preproc)
    if key not in _MODELS:
        while len(_MODELS) >= MODEL_CACHE_SIZE:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = _build_model(name, weights, clip, preproc)
    model, trained, prep = _MODELS[key]
    return model, trained, copy.deepcopy(prep)


def _build_model(name: str, weights: str | Path | None, clip: ClipSpec,
                 preproc: PreprocSpec) -> tuple[Any, bool, dict[str, Any]]:
    """Random init gets real-video BN statistics (:func:`~edgevc.export.calib.calibrate_bn`)."""
    import torch

    from edgevc.models import create, model_info

    info = model_info(name)
    torch.manual_seed(0)
    if weights is not None:
        from edgevc.export.from_run import run_folder, run_model

        run = run_folder(weights)
        if run is not None:  # a training run: its own head size (and labels, in the exports)
            return run_model(name, run), True, {"weights": f"edgevc train run {run}"}
        model = create(name, pretrained=Path(weights))
        return model.eval(), True, {"weights": str(weights)}
    if info.weights is not None:
        model = create(name, pretrained=True)
        # a pretrained backbone under a new head (TSM's ImageNet MobileNetV2) is not a trained classifier
        return model.eval(), info.labels is not None, {"weights": f"asset {info.weights}"}
    model = create(name, pretrained=False)
    clips = calib_mod.RealClips(clip, preproc, BN_CLIPS, phase=0.25)
    layers = calib_mod.calibrate_bn(model, clips)
    return model.eval(), False, {"weights": "random init (seed 0)", "bn_calibration": {
        "layers": layers, "clips": clips.describe()["clips"],
        "why": "random BatchNorm statistics shrink activations to ~0, so any parity passes; running stats "
               "were set from real clips (train mode, momentum=None), then eval"}}


def build_meta(name: str, model: Any, clip: ClipSpec, preproc: PreprocSpec, res: Resolved,
               weights_sha: str | None) -> ArtifactMeta:
    from edgevc.export.stream import state_specs
    from edgevc.models import model_info
    from edgevc.models.labels import get_labels, numbered

    info = model_info(name)
    h, w = preproc.crop
    t = 1 if info.stream else clip.num_frames
    shape = {"NCTHW": (1, 3, t, h, w), "NTCHW": (1, t, 3, h, w), "NTHWC": (1, t, h, w, 3)}[preproc.layout]
    num_classes = int(info.num_classes)
    labels = get_labels(info.labels) if info.labels else numbered(num_classes)
    return ArtifactMeta(
        model=name, labels=labels, clip=clip, preproc=preproc, agg=info.agg,
        input_name="frame" if info.stream else "clip", input_shape=shape, output_name="logits",
        params=sum(p.numel() for p in model.parameters()), macs_per_clip=count_macs(name, shape, info.stream),
        precision=res.precision, target=res.target, model_file="model",
        state=state_specs(model, (h, w)) if info.stream else (), profile=res.profile_name,
        weights_sha256=weights_sha,
    )


def count_macs(name: str, shape: tuple[int, ...], stream: bool) -> int:
    """Multiply-adds of one call (one clip, or one frame of a stream model), counted on the meta device."""
    from edgevc.models import model_info

    info = model_info(name)
    if not stream and tuple(shape) == tuple(info.input_shape):
        return int(info.macs)
    import torch

    from edgevc.models import create
    from edgevc.report.flops import meta_flops

    with torch.device("meta"):
        model = create(name, pretrained=False)
    if stream:
        return meta_flops(model, shape, lambda m, x: m.forward_step(x, m.init_state(1, input_size=tuple(shape[-2:])))
                          ) // 2
    return meta_flops(model, shape) // 2


def weights_sha256(info: Any, weights: str | Path | None) -> str | None:
    from edgevc import assets

    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise EdgevcError(f"weights file not found: '{path}'", hint="pass a torch state dict (--weights PATH)")
        return assets.sha256_file(path)
    return assets.ASSETS[info.weights].sha256 if info.weights else None
