"""Tiny numpy backends and artifacts for the runtime tests (no framework, no export needed).

``ToyClipBackend`` is a clip classifier whose logits depend on every frame,
its position in the clip and its pixels; ``ToyStateBackend`` a stream model
with an exponential-memory state. Both are deterministic, so streaming and
offline must agree bit for bit.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgevc.runtime import Model
from edgevc.spec import AggSpec, ArtifactMeta, ClipSpec, PreprocSpec, TensorSpec

LABELS = tuple(f"class_{i}" for i in range(6))


class ToyClipBackend:
    """logits = W @ (per-frame, per-channel means, and a coarse 2x2 spatial grid), for (1, 3, T, H, W)."""

    name = "toy"

    def __init__(self, meta: ArtifactMeta, seed: int = 0, delay: float = 0.0) -> None:
        t = meta.input_shape[2]
        rng = np.random.default_rng(seed)
        self.w = rng.standard_normal((meta.num_classes, 3 * t * 4)).astype(np.float32) * 0.5
        self.delay = delay
        self.calls: list[np.ndarray] = []

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x = inputs[0]
        self.calls.append(x.copy())
        n, c, t, h, w = x.shape
        grid = x.reshape(n, c, t, 2, h // 2, 2, w // 2).mean(axis=(4, 6)).reshape(n, -1)
        if self.delay:
            time.sleep(self.delay)
        return [grid @ self.w.T]


class ToyStateBackend:
    """A stream model: ``s' = 0.5 s + frame means``, logits = W @ s'; input (1, 3, 1, H, W), state (1, 3)."""

    name = "toy"

    def __init__(self, meta: ArtifactMeta, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.w = rng.standard_normal((meta.num_classes, 3)).astype(np.float32)
        self.frames: list[np.ndarray] = []

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, s = inputs
        self.frames.append(x.copy())
        s2 = (0.5 * s + x.mean(axis=(2, 3, 4))).astype(np.float32)
        return [s2 @ self.w.T, s2]


def toy_meta(clip: ClipSpec, crop: int = 8, stateful: bool = False, agg: AggSpec | None = None,
             macs: int = 1000) -> ArtifactMeta:
    t = 1 if stateful else clip.num_frames
    return ArtifactMeta(
        model="toy_stream" if stateful else "toy", labels=LABELS, clip=clip,
        preproc=PreprocSpec(crop=(crop, crop), resize_short=crop, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)),
        agg=agg or AggSpec(topk=3), input_name="clip", input_shape=(1, 3, t, crop, crop), output_name="logits",
        params=10, macs_per_clip=macs, precision="fp32", target="onnx", model_file="toy.npy",
        state=(TensorSpec("state_0", (1, 3)),) if stateful else (),
    )


def toy_model(clip: ClipSpec, folder: Path | None = None, stateful: bool = False, delay: float = 0.0,
              **kw) -> Model:
    meta = toy_meta(clip, stateful=stateful, **kw)
    backend = ToyStateBackend(meta) if stateful else ToyClipBackend(meta, delay=delay)
    return Model(meta, backend, folder or Path("."))


def frames(n: int, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """n random uint8 RGB frames with a moving bright square (so order and content matter)."""
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        x = (i * 3) % (w - 6)
        out[i, 4:10, x:x + 6] = 255
    return out
