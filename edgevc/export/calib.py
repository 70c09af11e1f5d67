"""Clips cut from REAL video for int8 calibration and parity checks, and BatchNorm statistics from them.

Never noise for calibration: int8 ranges set on noise clip real activations.
The default sources are one real Kinetics clip (``../shared/clips``) and
three small real videos fetched as registry assets::

    kinetics/arm_wrestling.mp4 (340x256, 10 s), bikes (640x272, 10 s),
    bbb_720p (1280x720, 5.3 s), carphone (176x144, 4 s)

Each video is decoded once with :mod:`edgevc.video`, resampled to the
model's ``clip.fps`` and preprocessed frame by frame with
:mod:`edgevc.sampling` -- the same code the device runs. Clips are spread
evenly over the sources (round robin) and over each video: ``k`` windows
of ``clip.span`` frames start at ``floor((j + phase) * free / k)`` with
``free = frames - span``. Calibration uses ``phase=0`` and verification
``phase=0.5``, so the two sets interleave instead of repeating each other.

Example: 4 clips, x3d_xs (span 37 frames at 30 fps): one window per video,
centred for verification (arm_wrestling at 30 fps has 300 frames, free 263,
start 131). 32 clips of I3D (32 frames at 25 fps): 11, 11, 6 and 4.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgevc.errors import EdgevcError
from edgevc.spec import ClipSpec, PreprocSpec

DEFAULT_SOURCES = ("kinetics/arm_wrestling.mp4", "bikes", "bbb_720p", "carphone")


def shared_dir() -> Path:
    """``$EDGEVC_SHARED``, else ``shared/`` beside the project's root (``../shared`` from the repo)."""
    env = os.environ.get("EDGEVC_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"


def resolve_source(source: str) -> Path:
    """An asset name (``bikes``), a path, or a path under ``shared/clips`` -> a local video file."""
    from edgevc import assets

    if source in assets.ASSETS:
        return assets.fetch(source)
    for path in (Path(source).expanduser(), shared_dir() / "clips" / source):
        if path.is_file():
            return path
    raise EdgevcError(f"calibration source '{source}' is neither a video file nor a clip asset",
                      hint=f"pass a video path, a file under {shared_dir() / 'clips'}, or one of the assets: "
                           f"{', '.join(a for a in assets.ASSETS if not a.endswith(('_ckpt', '_src', 'imagenet')))}")


@functools.lru_cache(maxsize=4)
def _frames(path: str, fps: float | None, preproc: PreprocSpec) -> np.ndarray:
    """All frames of ``path`` at ``fps``, preprocessed: float32 (n, H, W, C), cached per (file, fps, preproc)."""
    from edgevc.sampling import preprocess_frame
    from edgevc.video import open_source, resample

    reader = open_source(path)
    try:
        frames = iter(reader) if fps is None else resample(iter(reader), fps)
        out = [preprocess_frame(f.rgb, preproc) for f in frames]
    finally:
        reader.close()
    if not out:
        raise EdgevcError(f"'{path}' has no decodable frame")
    arr = np.stack(out)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class ClipRef:
    """Where one clip comes from: the source and its frame indices (after resampling to ``clip.fps``)."""

    source: str
    indices: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"source": self.source, "frames": [self.indices[0], self.indices[-1]], "count": len(self.indices)}


def window_starts(num_frames: int, span: int, count: int, phase: float) -> list[int]:
    """``count`` window starts spread over a video of ``num_frames``: ``floor((j + phase) * free / count)``."""
    free = max(0, num_frames - span)
    return [int((j + phase) * free / count) for j in range(count)]


def allocate(count: int, weights: Sequence[int]) -> list[int]:
    """``count`` clips over sources in proportion to ``weights`` (largest remainder), at least 1 each.

    Example: 32 clips over windows-per-video 219, 219, 101, 69 -> [11, 11, 6, 4]: a short
    video is not cut into as many near-identical windows as a long one.
    """
    k = len(weights)
    base = [1] * k
    rest = count - k
    total = sum(weights)
    shares = [rest * w / total for w in weights]
    extra = [int(x) for x in shares]
    order = sorted(range(k), key=lambda i: (-(shares[i] - extra[i]), i))
    for i in order[:rest - sum(extra)]:
        extra[i] += 1
    return [b + e for b, e in zip(base, extra, strict=True)]


class RealClips:
    """A reproducible set of ``count`` clips from real video, preprocessed for one model's specs.

    Iterating yields model inputs ``(1, ...)`` in ``preproc.layout``, one at a
    time (a 32-frame 224² clip is 19 MB, so they are not all kept).
    """

    def __init__(self, clip: ClipSpec, preproc: PreprocSpec, count: int,
                 sources: Sequence[str] = DEFAULT_SOURCES, phase: float = 0.5) -> None:
        from edgevc.sampling import clip_indices

        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self.clip, self.preproc, self.count, self.phase = clip, preproc, count, phase
        self.sources = [s for s in sources][:count] if count < len(sources) else list(sources)
        self.paths = {s: str(resolve_source(s)) for s in self.sources}
        lengths = [len(self._video(s)) for s in self.sources]
        per = allocate(count, [max(1, n - clip.span + 1) for n in lengths])
        self.refs: list[ClipRef] = []
        for source, n, k in zip(self.sources, lengths, per, strict=True):
            for start in window_starts(n, clip.span, k, phase):
                idx = clip_indices(clip, n, start)
                self.refs.append(ClipRef(source, tuple(int(i) for i in idx)))

    def _video(self, source: str) -> np.ndarray:
        return _frames(self.paths[source], self.clip.fps, self.preproc)

    def __len__(self) -> int:
        return len(self.refs)

    def __iter__(self) -> Iterator[np.ndarray]:
        from edgevc.sampling import assemble

        for ref in self.refs:
            yield assemble(self._video(ref.source)[list(ref.indices)], self.preproc)

    def describe(self) -> dict:
        return {"kind": "real video", "count": len(self.refs), "phase": self.phase,
                "sources": {s: str(p) for s, p in self.paths.items()},
                "clips": [r.to_dict() for r in self.refs]}


def random_clips(clip: ClipSpec, preproc: PreprocSpec, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` clips of uniform uint8 noise pushed through the model's preprocessing (value range, mean, std)."""
    from edgevc.sampling import preprocess

    rng = np.random.default_rng(seed)
    spec = preproc.replace(resize_short=None)
    h, w = preproc.crop
    return [preprocess(rng.integers(0, 256, (clip.num_frames, h, w, 3), dtype=np.uint8), spec)
            for _ in range(count)]


def split_frames(clip: np.ndarray, layout: str = "NCTHW") -> list[np.ndarray]:
    """A clip (1, C, T, H, W) -> T single-frame inputs (1, C, 1, H, W) for a stream model."""
    if layout != "NCTHW":
        raise EdgevcError(f"stream models take NCTHW input, this preprocessing gives {layout}")
    return [np.ascontiguousarray(clip[:, :, t:t + 1]) for t in range(clip.shape[2])]


def calibrate_bn(model, clips: Iterable[np.ndarray], batch: int = 2) -> int:
    """Set every BatchNorm's running statistics from real clips (AdaBN); returns how many layers were set.

    A randomly initialised network keeps BN's default statistics (mean 0,
    var 1), which shrink or blow up activations layer after layer until the
    logits are nearly constant: any parity figure then passes trivially, and
    int8 ranges are meaningless. Running the clips in train mode with
    ``momentum=None`` (a cumulative average over the batches) gives each
    layer the statistics of real inputs. Clips go in batches of ``batch``
    (>= 2, so a BN after global pooling sees more than one value).
    """
    import torch
    from torch import nn

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    pending: list[np.ndarray] = []
    model.train()
    try:
        with torch.no_grad():
            for x in clips:
                pending.append(x)
                if len(pending) == batch:
                    model(torch.from_numpy(np.concatenate(pending)))
                    pending = []
            if len(pending) > 1 or (pending and not any(m.num_batches_tracked.item() for m in bns)):
                model(torch.from_numpy(np.concatenate(pending)))
    finally:
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom
        model.eval()
    return len(bns)
