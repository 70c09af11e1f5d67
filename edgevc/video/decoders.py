"""Two decoders behind one shape: PyAV (default, files and stream URLs) and OpenCV (fallback, cameras).

Both yield :class:`Frame` objects (RGB uint8, presentation timestamp in
seconds from the first frame) in presentation order, with the rotation
metadata applied the same way: the picture is turned so it shows upright,
as a player would show it. PyAV reports the display-matrix angle
(counter-clockwise) and returns raw frames, so we rotate; OpenCV rotates by
itself (``CAP_PROP_ORIENTATION_AUTO``).

A decoding failure raises :class:`~edgevc.errors.VideoError` naming the file
and the last good frame; with ``keep_partial=True`` the frames decoded so
far are kept and the source records that it stopped early.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edgevc.errors import VideoError

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # quiet OpenCV's ffmpeg; our errors say what went wrong
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


@dataclass(frozen=True)
class Frame:
    """One decoded picture: ``index`` counts from 0 in presentation order; ``pts`` in seconds."""

    index: int
    pts: float
    rgb: np.ndarray


def rotate_upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a raw frame clockwise by ``rotation`` degrees (0, 90, 180, 270), as a player shows it."""
    k = (rotation // 90) % 4
    return rgb if k == 0 else np.ascontiguousarray(np.rot90(rgb, k=-k))


def _quiet_av() -> None:
    import av.logging

    av.logging.set_level(av.logging.PANIC)


class PyAVReader:
    """Frames of a file or stream URL through PyAV (FFmpeg), threaded decoding, rotation applied."""

    name = "pyav"

    def __init__(self, source: str, keep_partial: bool = False, options: dict[str, str] | None = None) -> None:
        import av

        _quiet_av()
        self.source = source
        self.keep_partial = keep_partial
        self.stopped_early: str | None = None
        try:
            self.container = av.open(source, options=options or {}, timeout=(10.0, 10.0))
        except (av.FFmpegError, OSError) as err:
            raise VideoError(f"cannot open '{source}' as a video: {_av_reason(err)}",
                             hint="check that the file is a video (try: edgevc probe FILE)") from None
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(f"'{source}' has no video stream (audio only or not a video)",
                             hint="pass a file with a video track")
        self.stream = self.container.streams.video[0]
        # SLICE, not AUTO: FFmpeg's frame threading deadlocks at close after a decode error (measured here:
        # 12 of 12 runs on corrupted.mp4 hung); on 720p H.264 it was not faster on 2 cores either
        self.stream.thread_type = "SLICE"
        self.rotation = 0
        self._first: Frame | None = None

    def __iter__(self) -> Iterator[Frame]:
        import av

        index, t0, last_pts, end = 0, None, None, None
        frames = self.container.decode(self.stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                self._check_complete(index, last_pts, end)
                return
            except (av.FFmpegError, OSError) as err:
                where = f"after frame {index - 1} (the last good frame, at {last_pts:.3f} s)" if index else \
                    "before the first frame"
                if self.keep_partial and index:
                    self.stopped_early = f"decoding failed {where}: {_av_reason(err)}"
                    return
                what = "failed" if "://" in self.source else "is corrupted"  # a stream URL, or a file
                raise VideoError(
                    f"'{self.source}' {what}: decoding failed {where}: {_av_reason(err)}",
                    hint=f"keep the {index} frames decoded so far with --keep-partial (keep_partial=True)"
                    if index else "re-encode or replace the file",
                ) from None
            self.rotation = (-int(getattr(frame, "rotation", 0) or 0)) % 360
            t = frame.time if frame.time is not None else index / float(self.stream.average_rate or 25)
            t0 = t if t0 is None else t0
            last_pts = t - t0
            end = t + _frame_seconds(frame, self.stream)
            yield Frame(index, last_pts, rotate_upright(frame.to_ndarray(format="rgb24"), self.rotation))
            index += 1

    def _check_complete(self, index: int, last_pts: float | None, end: float | None) -> None:
        """Decoding ended without an error: did it reach the end the container declares?

        A cut Matroska or MPEG-TS file decodes cleanly up to the cut and then
        simply ends; only its declared duration shows that frames are missing.
        """
        declared = declared_end(self.container, self.stream)
        rate = self.stream.average_rate or self.stream.guessed_rate
        if end is None or not ends_early(end, declared, float(rate or 0)):
            return
        msg = (f"decoding ended at {end:.3f} s, after frame {index - 1} (the last good frame, at {last_pts:.3f} s), "
               f"but the container declares {declared:.3f} s")
        if self.keep_partial:
            self.stopped_early = msg
            return
        raise VideoError(f"'{self.source}' is truncated: {msg}",
                         hint=f"keep the {index} frames decoded so far with --keep-partial (keep_partial=True)")

    def close(self) -> None:
        self.container.close()


def _frame_seconds(frame, stream) -> float:
    """How long a decoded frame is shown: its own duration, else one period of the stream's average rate."""
    if getattr(frame, "duration", None) and frame.time_base is not None:
        return float(frame.duration * frame.time_base)
    rate = stream.average_rate or stream.guessed_rate
    return 1.0 / float(rate) if rate else 0.0


def declared_end(container, stream) -> float | None:
    """The time (s) the container says the video stream ends at, or None when it does not say.

    The stream's own ``start_time + duration``; else the container's duration
    when the video is its only stream (with more streams it may be the audio's).
    """
    if stream.duration is not None and stream.time_base is not None:
        return float(((stream.start_time or 0) + stream.duration) * stream.time_base)
    if container.duration is not None and len(container.streams) == 1:
        return ((container.start_time or 0) + container.duration) / 1e6
    return None


def ends_early(reached: float, declared: float | None, fps: float) -> bool:
    """Did the frames stop well before the declared end? (more than 0.5 s, 3 frame periods and 2 % short)"""
    if declared is None:
        return False
    return declared - reached > max(0.5, 3 / fps if fps > 0 else 0.0, 0.02 * declared)


class OpenCVReader:
    """Frames through OpenCV: the fallback for files, and the reader for cameras (an int index)."""

    name = "opencv"

    def __init__(self, source: str | int, keep_partial: bool = False) -> None:
        import cv2

        self.cv2 = cv2
        self.source = source
        self.keep_partial = keep_partial
        self.stopped_early: str | None = None
        self.is_camera = isinstance(source, int)
        self.cap = cv2.VideoCapture(source)
        if not self.cap.isOpened():
            if self.is_camera:
                raise VideoError(f"camera {source} could not be opened",
                                 hint="check the index (ls /dev/video*) and that no other program holds it")
            raise VideoError(f"cannot open '{source}' as a video with OpenCV",
                             hint="check that the file is a video (try: edgevc probe FILE)")
        self.expected = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if not self.is_camera else 0
        self.rotation = int(self.cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360

    def __iter__(self) -> Iterator[Frame]:
        cv2 = self.cv2
        index, t0, wall0 = 0, None, time.monotonic()
        while True:
            ok, bgr = self.cap.read()
            if not ok:
                break
            if self.is_camera:
                t = time.monotonic() - wall0
            else:
                t = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            t0 = t if t0 is None else t0
            yield Frame(index, t - t0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
        # OpenCV stops silently on a broken file: compare with the container's frame count
        if self.expected and index < self.expected - max(2, self.expected // 50):
            msg = (f"decoding stopped after frame {index - 1} of {self.expected} (the last good frame)"
                   if index else "no frame could be decoded")
            if self.keep_partial and index:
                self.stopped_early = msg
                return
            raise VideoError(f"'{self.source}' is corrupted or truncated: {msg}",
                             hint=f"keep the {index} frames decoded so far with --keep-partial (keep_partial=True)")

    def close(self) -> None:
        self.cap.release()


def _av_reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.split(":")[0].strip() if "avcodec" in str(err) else text
