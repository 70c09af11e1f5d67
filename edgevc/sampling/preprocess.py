"""uint8 RGB frames -> the model's float input, in numpy, per frame.

Per frame: resize so the short side is ``resize_short`` (antialiased
bilinear: a triangle filter widened by the downscale factor, edge windows
truncated and renormalised -- the rule of PIL and of torch's
``interpolate(..., antialias=True)``), centre crop, map [0, 255] to
``value_range``, ``(x - mean) / std``, channel order. Then frames are
stacked into the spec's layout with a batch axis.

Each step is per frame, so a stream preprocesses every frame once on
arrival and overlapping clips share the work; the result equals
preprocessing the clip at once (same function, same numbers).

The crop is folded into the resize: only the output rows and columns that
survive the crop are computed (identical numbers, less work on 720p input).
"""

from __future__ import annotations

import functools

import numpy as np

from edgevc.spec import PreprocSpec


@functools.lru_cache(maxsize=64)
def _resize_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel: source indices (out, K) and weights (out, K) of the antialiased triangle filter."""
    scale = in_size / out_size
    support = max(scale, 1.0)  # filter radius in source pixels
    centers = (np.arange(out_size) + 0.5) * scale
    lo = np.floor(centers - support).astype(np.int64)
    k = int(np.ceil(2 * support)) + 2
    idx = lo[:, None] + np.arange(k)[None, :]
    w = np.maximum(0.0, 1.0 - np.abs((idx + 0.5 - centers[:, None]) / support))
    w[(idx < 0) | (idx >= in_size)] = 0.0
    w /= w.sum(axis=1, keepdims=True)
    keep = w.any(axis=0)  # drop tap columns that are zero everywhere
    idx, w = idx[:, keep], w[:, keep]
    return np.clip(idx, 0, in_size - 1), w.astype(np.float32)


def _resample_axis(img: np.ndarray, axis: int, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = None
    for k in range(idx.shape[1]):
        taken = np.take(img, idx[:, k], axis=axis).astype(np.float32, copy=False)
        wk = w[:, k].reshape((-1, 1, 1) if axis == 0 else (1, -1, 1))
        out = taken * wk if out is None else out + taken * wk
    return out


def resized_size(height: int, width: int, short: int) -> tuple[int, int]:
    """(h, w) after scaling the short side to ``short``; the long side rounds to nearest."""
    if height <= width:
        return short, max(1, int(round(width * short / height)))
    return max(1, int(round(height * short / width))), short


def resize_crop(frame: np.ndarray, resize_short: int | None, crop: tuple[int, int]) -> np.ndarray:
    """Short-side resize then centre crop of one (H, W, C) frame; float32 out (uint8 scale kept)."""
    h, w = frame.shape[:2]
    ch, cw = crop
    rh, rw = (h, w) if resize_short is None else resized_size(h, w, resize_short)
    if rh < ch or rw < cw:
        raise ValueError(
            f"frame of {h}x{w} (after resize {rh}x{rw}) is smaller than the crop {ch}x{cw}; "
            "set preproc.resize_short to at least the crop size"
        )
    top, left = (rh - ch) // 2, (rw - cw) // 2
    if (rh, rw) == (h, w):
        return frame[top:top + ch, left:left + cw].astype(np.float32)
    ih, wh = _resize_taps(h, rh)
    iw, ww = _resize_taps(w, rw)
    ih, wh, iw, ww = ih[top:top + ch], wh[top:top + ch], iw[left:left + cw], ww[left:left + cw]
    r0, c0 = int(ih.min()), int(iw.min())  # only the source pixels the crop's taps reach
    sub = frame[r0:int(ih.max()) + 1, c0:int(iw.max()) + 1]
    rows = _resample_axis(sub, 0, ih - r0, wh)
    return _resample_axis(rows, 1, iw - c0, ww)


@functools.lru_cache(maxsize=32)
def _affine(spec: PreprocSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel a, b with ``x_model = x_uint8 * a + b`` (value range, mean, std folded together)."""
    lo, hi = spec.value_range
    mean = np.asarray(spec.mean, dtype=np.float64)
    std = np.asarray(spec.std, dtype=np.float64)
    a = (hi - lo) / 255.0 / std
    b = (lo - mean) / std
    return a.astype(np.float32), b.astype(np.float32)


def preprocess_frame(frame: np.ndarray, spec: PreprocSpec) -> np.ndarray:
    """One uint8 RGB (H, W, 3) frame -> float32 (crop_h, crop_w, 3) in the model's value space."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame of shape (H, W, 3), got {frame.shape}")
    x = resize_crop(frame, spec.resize_short, tuple(spec.crop))  # type: ignore[arg-type]
    if spec.channel_order == "BGR":
        x = x[..., ::-1]
    a, b = _affine(spec)  # mean/std are given in the model's channel order
    return np.ascontiguousarray(x * a + b, dtype=np.float32)


def assemble(frames: np.ndarray, spec: PreprocSpec) -> np.ndarray:
    """Preprocessed frames (T, H, W, C) -> the model input with a batch axis, in ``spec.layout``."""
    if spec.layout == "NCTHW":
        x = frames.transpose(3, 0, 1, 2)
    elif spec.layout == "NTCHW":
        x = frames.transpose(0, 3, 1, 2)
    else:
        x = frames
    return np.ascontiguousarray(x[None], dtype=np.float32)


def preprocess(frames: np.ndarray, spec: PreprocSpec) -> np.ndarray:
    """uint8 RGB frames (T, H, W, 3) -> float32 model input (1, ...) in ``spec.layout``."""
    return assemble(np.stack([preprocess_frame(f, spec) for f in frames]), spec)
