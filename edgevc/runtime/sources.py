"""Frame sources for ``edgevc run``: a file, a camera index, or a stream URL that reconnects.

:func:`open_frames` classifies ``--source`` (:func:`edgevc.video.classify_source`):

- a file or a camera opens once; a camera that cannot open, or a missing
  file, raises :class:`~edgevc.errors.VideoError` with what to check;
- a stream URL (rtsp://, http://, ...) becomes a :class:`ReconnectingStream`:
  when the connection fails or drops, it is retried with exponential
  backoff (``backoff``, ``2 * backoff``, ... capped at ``max_backoff``
  seconds), each retry is reported through ``on_event``, and after
  ``retries`` failures in a row it gives up with a clear error. A frame
  that arrives resets the count. A stalled stream fails when a read
  times out (PyAV: 10 s; FFmpeg's ``rw_timeout`` option shortens it).
  A live stream (its container declares no duration: MPEG-TS over TCP or
  UDP, RTSP, ...) never ends on its own, so its end of stream is a
  disconnect and is retried too; a stream with a duration (a file served
  over HTTP) ends normally. Frame indices keep counting across
  reconnects and timestamps continue from the last frame plus the time
  the stream was away, so the classifier sees one stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgevc.errors import VideoError
from edgevc.video import Frame, classify_source, open_source
from edgevc.video.decoders import declared_end

OnEvent = Callable[[str], None]


class FrameSource:
    """A file or camera: iterate for :class:`~edgevc.video.Frame` objects, then :meth:`close`."""

    def __init__(self, source: str, kind: str, reader: Any) -> None:
        self.source = source
        self.kind = kind
        self.reader = reader
        self.reconnects = 0

    @property
    def live(self) -> bool:
        """Cameras and streams deliver frames at their own pace (and do not wait for us)."""
        return self.kind in ("camera", "url")

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.reader)

    @property
    def stopped_early(self) -> str | None:
        return getattr(self.reader, "stopped_early", None)

    def close(self) -> None:
        self.reader.close()


class ReconnectingStream(FrameSource):
    """A stream URL that is reopened with exponential backoff when it fails or drops."""

    def __init__(self, url: str, opener: Callable[[], Any], retries: int = 5, backoff: float = 0.5,
                 max_backoff: float = 8.0, on_event: OnEvent | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(url, "url", None)
        self.opener = opener
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.on_event = on_event or (lambda msg: None)
        self.sleep = sleep
        self.clock = clock
        self.events: list[str] = []

    def _report(self, msg: str) -> None:
        self.events.append(msg)
        self.on_event(msg)

    def _retry_or_give_up(self, failures: int, err: VideoError) -> None:
        if failures > self.retries:
            raise VideoError(f"stream '{self.source}' is unreachable after {self.retries} retries: {err.message}",
                             hint="check the URL and the network; raise --retries to wait longer") from None
        delay = min(self.max_backoff, self.backoff * 2 ** (failures - 1))
        self._report(f"stream '{self.source}': {err.message}; retry {failures} of {self.retries} in {delay:.1f} s")
        self.sleep(delay)

    def __iter__(self) -> Iterator[Frame]:
        index, last_pts, last_wall = 0, None, None
        failures = 0
        while True:
            try:
                self.reader = self.opener()
            except VideoError as err:
                failures += 1
                self._retry_or_give_up(failures, err)
                continue
            if index:
                self.reconnects += 1
                self._report(f"stream '{self.source}': reconnected (frames continue from {index})")
            offset = 0.0 if last_pts is None else last_pts + max(self.clock() - last_wall, 1e-3)
            try:
                for f in self.reader:
                    failures = 0
                    last_pts, last_wall = offset + f.pts, self.clock()
                    yield Frame(index, last_pts, f.rgb)
                    index += 1
                if not _is_live(self.reader):
                    return  # the stream ended normally
                raise VideoError("the stream ended (the server closed the connection)")
            except VideoError as err:
                failures += 1
                self._retry_or_give_up(failures, err)
            finally:
                self.reader.close()
                self.reader = None

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _is_live(reader: Any) -> bool:
    """A PyAV stream whose container declares no duration: its end is a disconnect, not the end of a video."""
    container, stream = getattr(reader, "container", None), getattr(reader, "stream", None)
    return container is not None and stream is not None and declared_end(container, stream) is None


def open_frames(source: str | int | Path, decoder: str = "auto", retries: int = 5, backoff: float = 0.5,
                on_event: OnEvent | None = None, keep_partial: bool = False) -> FrameSource:
    """The frames of ``--source``: a file, a camera index (``"0"``), or a stream URL (reconnecting)."""
    kind, value = classify_source(source)
    if kind == "url":
        def opener() -> Any:
            return open_source(str(value), decoder=decoder)  # type: ignore[arg-type]

        return ReconnectingStream(str(value), opener, retries=retries, backoff=backoff, on_event=on_event)
    reader = open_source(value, decoder=decoder, keep_partial=keep_partial)  # type: ignore[arg-type]
    return FrameSource(str(source), kind, reader)
