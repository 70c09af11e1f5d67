"""Where annotated frames go besides the window: an mp4 (PyAV) and PNG screenshots (OpenCV)."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from edgevc.errors import EdgevcError

CODECS = ("libx264", "mpeg4")  # PyAV's wheel has both; mpeg4 where a build lacks libx264


class VideoWriter:
    """An mp4 of annotated frames, one per :meth:`write`, timed by the source's timestamps.

    Timestamps are kept in milliseconds (a variable-rate camera stays in
    sync); two frames less than 1 ms apart get consecutive timestamps, so
    every written frame is a decodable frame of the file. The size is fixed
    by the first frame; a later frame of another size (a camera reconnected
    at another resolution) is resized to it.
    """

    def __init__(self, path: str | Path, fps_hint: float = 30.0, codecs: tuple[str, ...] = CODECS) -> None:
        import av

        self.path = Path(path)
        if self.path.parent and not self.path.parent.is_dir():
            raise EdgevcError(f"cannot write '{self.path}': folder '{self.path.parent}' does not exist")
        self.av = av
        self.fps_hint = fps_hint if fps_hint and fps_hint > 0 else 30.0
        self.codecs = codecs
        self.container = None
        self.stream = None
        self.codec: str | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self.encode_s = 0.0
        self._last_pts = -1

    def _open(self, width: int, height: int) -> None:
        av = self.av
        errors = []
        for codec in self.codecs:
            container = av.open(str(self.path), "w")
            try:
                stream = container.add_stream(codec, rate=Fraction(self.fps_hint).limit_denominator(1001))
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
                if codec == "libx264":
                    # superfast: 720p in ~19 ms a frame on one busy core (veryfast ~28 ms, ultrafast ~9 ms
                    # but files 3x larger); the demo's throughput is bound by it (benchmarks/demo_fps.py)
                    stream.options = {"preset": "superfast", "crf": "23"}
                stream.codec_context.open()
            except Exception as err:  # noqa: BLE001 -- a codec missing from this build: try the next one
                container.close()
                errors.append(f"{codec}: {err}")
                continue
            self.container, self.stream, self.codec, self.size = container, stream, codec, (width, height)
            return
        raise EdgevcError(f"cannot encode '{self.path}': {'; '.join(errors)}",
                          hint="install a PyAV build with libx264 or mpeg4 (pip install av)")

    def write(self, canvas: np.ndarray, pts_s: float) -> None:
        """Append one RGB frame shown at ``pts_s`` seconds."""
        t = time.perf_counter()
        h, w = canvas.shape[:2]
        if self.container is None:
            self._open(w, h)
        if (w, h) != self.size:
            canvas = cv2.resize(canvas, self.size, interpolation=cv2.INTER_AREA)
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(canvas), format="rgb24")
        pts = max(int(round(pts_s * 1000)), self._last_pts + 1)
        frame.pts, frame.time_base = pts, Fraction(1, 1000)
        self._last_pts = pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1
        self.encode_s += time.perf_counter() - t

    def close(self) -> None:
        if self.container is None:
            return
        t = time.perf_counter()
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        self.container = None
        self.encode_s += time.perf_counter() - t


def save_screenshot(canvas: np.ndarray, folder: str | Path, stem: str = "edgevc-demo") -> Path:
    """Write the canvas as ``FOLDER/edgevc-demo-YYYYmmdd-HHMMSS[-N].png`` and return the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = folder / f"{base}.png", 1
    while path.exists():
        path, n = folder / f"{base}-{n}.png", n + 1
    if not cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
        raise EdgevcError(f"could not write the screenshot '{path}'")
    return path
