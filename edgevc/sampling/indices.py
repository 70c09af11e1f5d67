"""Which frames form a clip: written once, used by training, export checks and the device.

All index arithmetic is integer and exact (no float rounding to argue
about). With ``T = num_frames`` and a window of ``L`` frames:

- ``strided``: offsets ``i * stride`` for ``i in 0..T-1``; the window spans
  ``(T - 1) * stride + 1`` frames.
- ``uniform``: ``floor(i * (L - 1) / (T - 1))`` -- ``linspace(0, L-1, T)``
  with both ends included, rounded DOWN (as PyTorchVideo's
  ``UniformTemporalSubsample`` truncates). ``T == 1`` takes the middle
  frame ``(L - 1) // 2``.
- ``segment`` (TSN, test time): the window is cut into ``T`` equal segments
  and the centre of each is taken, rounded DOWN: ``floor((2i + 1) * L / (2T))``.

Worked example, ``L = 10``, ``T = 4``:

    uniform: i*(L-1)/(T-1) = 0, 3, 6, 9        -> [0, 3, 6, 9]
    segment: (2i+1)*L/(2T) = 1.25, 3.75, 6.25, 8.75 -> [1, 3, 6, 8]

and with ``L = 8, T = 3``: uniform 0, 3.5, 7 -> [0, 3, 7]; segment
1.33, 4, 6.67 -> [1, 4, 6].

A video shorter than one window repeats its last frame (indices are
clamped to ``n - 1``), so every video yields at least one clip.
"""

from __future__ import annotations

import math

import numpy as np

from edgevc.spec import ClipSpec


def window_offsets(spec: ClipSpec, length: int | None = None) -> np.ndarray:
    """Offsets of the clip's frames inside a window of ``length`` frames (default: ``spec.span``)."""
    t = spec.num_frames
    n = spec.span if length is None else int(length)
    if n < 1:
        raise ValueError(f"a window needs at least 1 frame, got {n}")
    i = np.arange(t, dtype=np.int64)
    if spec.mode == "strided":
        return i * spec.stride
    if spec.mode == "uniform":
        if t == 1:
            return np.array([(n - 1) // 2], dtype=np.int64)
        return (i * (n - 1)) // (t - 1)
    return ((2 * i + 1) * n) // (2 * t)  # segment


def window_starts(num_frames: int, span: int, hop: int) -> np.ndarray:
    """First frame of every full window a stream emits: ``0, hop, 2*hop, ...`` while the window fits.

    A video shorter than ``span`` gets one window at 0 (its frames clamped).
    """
    if num_frames <= span:
        return np.zeros(1 if num_frames > 0 else 0, dtype=np.int64)
    return np.arange(0, num_frames - span + 1, hop, dtype=np.int64)


def clip_indices(spec: ClipSpec, num_frames: int, start: int = 0) -> np.ndarray:
    """Source-frame indices of the clip whose window starts at ``start``, clamped to the video."""
    if num_frames < 1:
        raise ValueError("the video has no frames")
    return np.minimum(start + window_offsets(spec), num_frames - 1)


def stream_clips(spec: ClipSpec, num_frames: int, hop: int | None = None) -> list[np.ndarray]:
    """The clips a stream of ``num_frames`` frames yields, as offline index arrays.

    This is the offline twin of :class:`~edgevc.sampling.window.StreamingWindow`:
    feeding the frames one at a time into the window emits exactly these clips.
    """
    hop = spec.stream_hop if hop is None else hop
    return [clip_indices(spec, num_frames, int(s)) for s in window_starts(num_frames, spec.span, hop)]


def eval_clips(spec: ClipSpec, num_frames: int, num_clips: int = 1) -> list[np.ndarray]:
    """``num_clips`` evenly spaced clips over a whole video (multi-view testing).

    Strided mode: windows of ``span`` frames starting at
    ``floor(k * (n - span) / (num_clips - 1))``; one clip is centred.
    Uniform and segment modes: the window is the whole video, so one clip
    covers it (more views would be identical).
    """
    if num_frames < 1:
        raise ValueError("the video has no frames")
    if spec.mode != "strided":
        return [np.minimum(window_offsets(spec, num_frames), num_frames - 1)]
    free = max(0, num_frames - spec.span)
    if num_clips <= 1:
        starts = [free // 2]
    else:
        starts = [(k * free) // (num_clips - 1) for k in range(num_clips)]
    return [clip_indices(spec, num_frames, s) for s in starts]


def resample_indices(pts: np.ndarray, fps: float, tol: float = 1e-3) -> np.ndarray:
    """Map frames with timestamps ``pts`` (seconds) onto a constant ``fps`` grid.

    Output slot ``k`` is at time ``t_k = pts[0] + k / fps`` and takes the FIRST
    source frame whose timestamp is ``>= t_k - tol / fps`` (the frame at or just
    after the slot; a frame a hair early still counts). Slots run while
    ``t_k <= pts[-1]``. A 30 fps source at ``fps=15`` keeps every second
    frame; a 10 fps source at ``fps=25`` repeats frames; a variable frame rate
    becomes a constant one. The streaming twin is :class:`FpsResampler`.
    """
    pts = np.asarray(pts, dtype=np.float64)
    if pts.size == 0:
        return np.zeros(0, dtype=np.int64)
    _check_fps(fps)
    if not np.all(np.isfinite(pts)):
        raise ValueError("timestamps must be finite numbers (got NaN or infinity)")
    if np.any(np.diff(pts) < 0):
        raise ValueError("timestamps must be non-decreasing (sort frames by presentation time first)")
    # the same arithmetic as FpsResampler.push, so offline and streaming agree bit for bit
    last = np.floor((pts - pts[0] + tol / fps) * fps).astype(np.int64)
    return np.searchsorted(last, np.arange(last[-1] + 1), side="left").astype(np.int64)


def _finite(x: float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond float range
        return False


def _check_fps(fps: float) -> None:
    # 1 / fps finite too: a subnormal fps (1e-310) makes the slack tol / fps infinite (found by fuzzing)
    if not (_finite(fps) and fps > 0 and _finite(1.0 / fps)):
        raise ValueError(f"fps must be a positive finite number, got {fps}")


class FpsResampler:
    """Streaming twin of :func:`resample_indices`: how many slots each arriving frame fills.

    ``push(pts)`` returns ``r >= 0``: the frame fills the next ``r`` slots of the
    constant-``fps`` grid (0 = dropped, 2 = shown twice). Decided on arrival,
    with no look-ahead, so a live source pays no extra latency.
    """

    def __init__(self, fps: float, tol: float = 1e-3) -> None:
        _check_fps(fps)
        self.fps = float(fps)
        self.slack = tol / self.fps
        self.t0: float | None = None
        self.next_slot = 0
        self.last_pts = -np.inf

    def push(self, pts: float) -> int:
        if not _finite(pts):
            raise ValueError(f"timestamp {pts} is not a finite number")
        if pts < self.last_pts:
            raise ValueError(f"timestamp {pts} goes back in time (previous {self.last_pts})")
        self.last_pts = pts
        if self.t0 is None:
            self.t0 = pts
        # slots k with t_k - slack <= pts, i.e. k <= (pts - t0 + slack) * fps
        last = int(np.floor((pts - self.t0 + self.slack) * self.fps))
        count = max(0, last + 1 - self.next_slot)
        self.next_slot += count
        return count
