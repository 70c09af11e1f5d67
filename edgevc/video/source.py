"""Open a file, a camera index or a stream URL; read, probe, and resample to a reference fps."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from edgevc.errors import VideoError
from edgevc.sampling.indices import FpsResampler
from edgevc.video.decoders import Frame, OpenCVReader, PyAVReader, declared_end, ends_early

Decoder = Literal["auto", "pyav", "opencv"]
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class VideoInfo:
    """What ``edgevc probe`` reports. ``width``/``height`` are as displayed (rotation applied)."""

    path: str
    codec: str
    width: int
    height: int
    fps: float
    frames: int
    duration: float
    rotation: int
    variable_frame_rate: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def classify_source(source: str | int | Path) -> tuple[str, str | int]:
    """('camera', index), ('url', url) or ('file', path) for what a user passed as --source."""
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return "camera", int(source)
    text = str(source)
    if _URL.match(text) and not text.startswith("file://"):
        return "url", text
    return "file", text[len("file://"):] if text.startswith("file://") else text


def check_file(path: str | Path) -> Path:
    """A clear error for a missing, empty or non-regular file, before any decoder sees it."""
    p = Path(path)
    if not p.exists():
        raise VideoError(f"video file not found: '{p}'", hint="check the path")
    if not p.is_file():
        raise VideoError(f"'{p}' is not a file", hint="pass a video file, a camera index or a stream URL")
    if p.stat().st_size == 0:
        raise VideoError(f"'{p}' is empty (0 bytes)", hint="the file was not written completely; re-copy it")
    return p


def open_source(source: str | int | Path, decoder: Decoder = "auto", keep_partial: bool = False,
                options: dict[str, str] | None = None) -> PyAVReader | OpenCVReader:
    """A frame reader: cameras through OpenCV, files and URLs through PyAV (or OpenCV if asked)."""
    kind, value = classify_source(source)
    if kind == "camera":
        return OpenCVReader(int(value), keep_partial=keep_partial)
    if kind == "file":
        check_file(value)
    if decoder == "opencv":
        return OpenCVReader(str(value), keep_partial=keep_partial)
    return PyAVReader(str(value), keep_partial=keep_partial, options=options)


@dataclass
class Video:
    """A whole decoded video: frames (N, H, W, 3) uint8 RGB and their timestamps (seconds)."""

    frames: np.ndarray
    pts: np.ndarray
    fps: float
    source: str
    stopped_early: str | None = None

    def __len__(self) -> int:
        return len(self.frames)


def read_video(source: str | Path, decoder: Decoder = "auto", keep_partial: bool = False,
               fps: float | None = None, max_frames: int | None = None) -> Video:
    """Decode a whole file into memory; with ``fps``, resample it to that rate by timestamps."""
    reader = open_source(source, decoder=decoder, keep_partial=keep_partial)
    try:
        frames_iter: Iterable[Frame] = iter(reader)
        if fps is not None:
            frames_iter = resample(frames_iter, fps)
        frames, pts = [], []
        for f in frames_iter:
            frames.append(f.rgb)
            pts.append(f.pts)
            if max_frames is not None and len(frames) >= max_frames:
                break
        src_fps = fps or _reader_fps(reader)
    finally:
        reader.close()
    if not frames:
        raise VideoError(f"'{source}' contains no decodable video frame", hint="check the file (edgevc probe FILE)")
    return Video(np.stack(frames), np.asarray(pts), src_fps, str(source), reader.stopped_early)


def _reader_fps(reader: PyAVReader | OpenCVReader) -> float:
    if isinstance(reader, PyAVReader):
        rate = reader.stream.average_rate or reader.stream.guessed_rate
        return float(rate) if rate else 0.0
    import cv2

    return float(reader.cap.get(cv2.CAP_PROP_FPS) or 0.0)


def resample(frames: Iterable[Frame], fps: float) -> Iterator[Frame]:
    """Frames on a constant ``fps`` grid by their timestamps (see :func:`edgevc.sampling.resample_indices`).

    Output frames are renumbered 0, 1, 2, ... with ``pts = k / fps``; a source
    frame may be dropped or repeated.
    """
    rs = FpsResampler(fps)
    slot = 0
    for f in frames:
        for _ in range(rs.push(f.pts)):
            yield Frame(slot, slot / fps, f.rgb)
            slot += 1


def probe(path: str | Path) -> VideoInfo:
    """Codec, size as displayed, fps, frame count, duration and rotation of a file (PyAV).

    ``frames`` counts the packets the file really holds (a demux, no
    decoding): an AVI index lists the empty "drop" entries of a variable
    frame rate too (tree.avi: 444 entries, 68 pictures). A file whose
    packets stop well before the duration its container declares is
    truncated: that raises :class:`~edgevc.errors.VideoError`.
    ``variable_frame_rate`` is True when the frames do not fill the duration
    at ``fps`` (to within 2 %).
    """
    import av

    p = check_file(path)
    reader = PyAVReader(str(p))
    try:
        s = reader.stream
        rate = s.average_rate or s.guessed_rate or Fraction(0)
        declared = declared_end(reader.container, s)
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif reader.container.duration is not None:
            duration = reader.container.duration / av.time_base
        else:
            duration = 0.0
        try:
            first = next(iter(reader))
            height, width = first.rgb.shape[:2]
        except StopIteration:
            raise VideoError(f"'{p}' has a video stream but no decodable frame") from None
        codec, rotation = s.codec_context.name, reader.rotation
    finally:
        reader.close()
    frames, reached = _count_packets(p)
    duration = duration or (frames / float(rate) if rate else 0.0)
    if reached is not None and ends_early(reached, declared, float(rate)):
        raise VideoError(f"'{p}' is truncated: its {frames} frames end at {reached:.3f} s, but the container "
                         f"declares {declared:.3f} s", hint="re-copy the file; 'edgevc run --keep-partial' "
                         "classifies the frames that are there")
    vfr = bool(rate) and abs(frames - duration * float(rate)) > 1 + 0.02 * frames
    return VideoInfo(str(p), codec, int(width), int(height), round(float(rate), 6), frames, round(duration, 6),
                     rotation, vfr)


def _count_packets(path: Path) -> tuple[int, float | None]:
    """(non-empty video packets, the end time (s) of the last one) by demuxing the file, no decoding."""
    import av

    count, end = 0, None
    with av.open(str(path)) as container:
        s = container.streams.video[0]
        try:
            for pkt in container.demux(s):
                stamp = pkt.pts if pkt.pts is not None else pkt.dts
                if not pkt.size or stamp is None:
                    continue
                count += 1
                t = float((stamp + (pkt.duration or 0)) * s.time_base)
                end = t if end is None or t > end else end
        except (av.FFmpegError, OSError):
            pass  # a damaged tail: what was read so far counts, the truncation check does the rest
    return count, end
