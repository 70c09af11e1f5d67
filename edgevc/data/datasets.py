"""Torch datasets of video clips that pick frames and pixels ONLY through :mod:`edgevc.sampling`.

The evaluation path is the device path, call for call: decode with
:func:`edgevc.video.read_video` (resampled to ``clip.fps`` when set), take
:func:`~edgevc.sampling.eval_clips`, turn each frame into model input with
:func:`~edgevc.sampling.preprocess_frame` and stack with
:func:`~edgevc.sampling.assemble`. Training differs in three places only:

- a random temporal offset: strided clips start anywhere the window fits
  (:func:`~edgevc.sampling.clip_indices`); uniform and segment clips take
  :func:`~edgevc.sampling.window_offsets` over a random sub-window of
  ``1 - temporal_jitter`` to 1 times the video;
- a random crop (one box for the whole clip) resized back to the scale the
  evaluation path sees, then the same ``preprocess_frame``;
- photometric jitter (one draw per clip) and an optional horizontal flip.

Which augmentations keep a label depends on the classes. A box crop, a
scale change and colour jitter keep every motion class. A horizontal flip
turns a pan left into a pan right and a clockwise turn into a
counter-clockwise one: it is allowed only with ``hflip_swap`` naming the
label pairs it exchanges (for the benchmark: ``[[pan_left, pan_right],
[rotate_cw, rotate_ccw]]``; pans up/down and zooms are unchanged). Time
reversal would swap every pair, so it is not offered.

Randomness is drawn from ``numpy.random.default_rng([seed, epoch, index])``:
a sample is the same whatever the worker count or the rank that loads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from edgevc.data.lists import VideoList
from edgevc.errors import EdgevcError, UnknownNameError
from edgevc.sampling import assemble, clip_indices, eval_clips, preprocess_frame, window_offsets
from edgevc.spec import ClipSpec, PreprocSpec, _check, _Spec


@dataclass(frozen=True)
class AugmentSpec(_Spec):
    """Training-time augmentation; the defaults change nothing (the evaluation path).

    ``scale``: the crop box keeps this fraction of each side, drawn uniformly
    in (low, high). ``brightness``: add up to +-this fraction of 255.
    ``contrast``/``saturation``: scale about the clip's mean / each pixel's grey by
    a factor in [1 - x, 1 + x]. ``hflip``: probability of a mirror image, only
    with ``hflip_swap`` (label pairs it exchanges) when it changes classes.
    """

    scale: tuple[float, ...] = (1.0, 1.0)
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hflip: float = 0.0
    hflip_swap: tuple[tuple[str, ...], ...] = ()
    temporal_jitter: float = 0.2

    def validate(self) -> None:
        s = self.scale
        _check(len(s) == 2 and 0 < s[0] <= s[1] <= 1, self, "scale", f"got {list(s)}", "[low, high] in (0, 1]")
        for name in ("brightness", "contrast", "saturation", "temporal_jitter"):
            v = getattr(self, name)
            _check(0 <= v < 1, self, name, f"got {v}", "0 <= x < 1")
        _check(0 <= self.hflip <= 1, self, "hflip", f"got {self.hflip}", "a probability 0..1")
        _check(all(len(p) == 2 for p in self.hflip_swap), self, "hflip_swap", f"got {self.hflip_swap}",
               "a list of [label, label] pairs")

    @property
    def active(self) -> bool:
        return self != AugmentSpec(temporal_jitter=self.temporal_jitter)


def hflip_permutation(aug: AugmentSpec, labels: tuple[str, ...]) -> np.ndarray:
    """Label index -> label index after a horizontal flip (identity except the ``hflip_swap`` pairs)."""
    perm = np.arange(len(labels))
    index = {name: i for i, name in enumerate(labels)}
    for pair in aug.hflip_swap:
        for name in pair:
            if name not in index:
                err = UnknownNameError("label", name, labels)
                raise EdgevcError(f"augment.hflip_swap: {err.message}", hint=err.hint)
        a, b = index[pair[0]], index[pair[1]]
        perm[a], perm[b] = b, a
    return perm


def train_indices(spec: ClipSpec, num_frames: int, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Frame indices of a training clip at a random temporal offset (see the module docstring)."""
    if spec.mode == "strided":
        start = int(rng.integers(0, max(0, num_frames - spec.span) + 1))
        return clip_indices(spec, num_frames, start)
    length = int(rng.integers(max(1, math.ceil((1.0 - jitter) * num_frames)), num_frames + 1))
    start = int(rng.integers(0, num_frames - length + 1))
    return np.minimum(start + window_offsets(spec, length), num_frames - 1)


def augment_frames(frames: np.ndarray, preproc: PreprocSpec, aug: AugmentSpec,
                   rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """uint8 frames (T, H, W, 3) -> model input (1, ...) with one random box, jitter and flip per clip.

    Returns the input and whether it was mirrored (the caller swaps the label).
    The box is resized so the frame scale matches the evaluation path's
    (``resize_short``, or the frame's own short side when that is None).
    """
    h, w = frames.shape[1:3]
    f = rng.uniform(*aug.scale)
    bh, bw = max(1, round(h * f)), max(1, round(w * f))
    top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    x = frames[:, top:top + bh, left:left + bw].astype(np.float32)
    flip = bool(rng.random() < aug.hflip)
    if flip:
        x = x[:, :, ::-1]
    x = _photometric(x, aug, rng)
    spec = preproc if (bh, bw) == (h, w) else preproc.replace(resize_short=preproc.resize_short or min(h, w))
    return assemble(np.stack([preprocess_frame(fr, spec) for fr in x]), spec), flip


def _photometric(x: np.ndarray, aug: AugmentSpec, rng: np.random.Generator) -> np.ndarray:
    if aug.saturation:
        grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        x = grey[..., None] + (x - grey[..., None]) * np.float32(rng.uniform(1 - aug.saturation, 1 + aug.saturation))
    if aug.contrast:
        mean = np.float32(x.mean())
        x = mean + (x - mean) * np.float32(rng.uniform(1 - aug.contrast, 1 + aug.contrast))
    if aug.brightness:
        x = x + np.float32(255.0 * rng.uniform(-aug.brightness, aug.brightness))
    return np.clip(x, 0.0, 255.0) if (aug.saturation or aug.contrast or aug.brightness) else x


class ClipDataset(Dataset):
    """Clips of the videos in a :class:`~edgevc.data.lists.VideoList`.

    ``train=True``: item ``i`` is ``(clip (C, T, H, W) float32, label)`` with a
    random offset and ``augment``. ``train=False``: item ``i`` is
    ``(clips (K, C, T, H, W), label)``, the ``K = num_clips`` evenly spaced clips of
    :func:`~edgevc.sampling.eval_clips` (one for uniform/segment modes), exactly
    as the device sees them. Dimensions follow ``preproc.layout``.
    """

    def __init__(self, videos: VideoList, clip: ClipSpec, preproc: PreprocSpec, train: bool,
                 augment: AugmentSpec | None = None, num_clips: int = 1, seed: int = 0) -> None:
        self.videos = videos
        self.clip = clip
        self.preproc = preproc
        self.train = train
        self.augment = augment or AugmentSpec()
        self.num_clips = num_clips
        self.seed = seed
        self.epoch = 0
        self.flip_to = hflip_permutation(self.augment, videos.labels)

    def __len__(self) -> int:
        return len(self.videos)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def labels(self) -> list[int]:
        return [r.label for r in self.videos.records]

    def decode(self, i: int) -> np.ndarray:
        from edgevc.video import read_video

        return read_video(self.videos.records[i].path, fps=self.clip.fps).frames

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        frames = self.decode(i)
        label = self.videos.records[i].label
        if not self.train:
            clips = [assemble(np.stack([preprocess_frame(f, self.preproc) for f in frames[idx]]), self.preproc)
                     for idx in eval_clips(self.clip, len(frames), self.num_clips)]
            return torch.from_numpy(np.concatenate(clips)), label
        rng = np.random.default_rng([self.seed, self.epoch, i])
        idx = train_indices(self.clip, len(frames), rng, self.augment.temporal_jitter)
        x, flipped = augment_frames(frames[idx], self.preproc, self.augment, rng)
        return torch.from_numpy(x[0]), int(self.flip_to[label]) if flipped else label


def eval_collate(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Evaluation items -> (all clips (sum K, ...), labels (B,), clips per video (B,))."""
    clips = torch.cat([b[0] for b in batch])
    labels = torch.tensor([b[1] for b in batch], dtype=torch.long)
    counts = torch.tensor([b[0].shape[0] for b in batch], dtype=torch.long)
    return clips, labels, counts
