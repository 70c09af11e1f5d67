"""The demo's stream: a classifier whose hop the keys change, and the frame feed around the source.

The loops themselves are the runtime's: :func:`edgevc.runtime.live.run_live`
(keep the newest frame; the window, cameras and streams) and
:func:`~edgevc.runtime.live.run_all` (every frame; headless on a file). The
demo only wraps the source in a :class:`Feed`, which

- plays a file at its own pace in the window (a camera paces itself);
- pauses (a file waits; a camera keeps being read, so the picture is fresh
  when it resumes, and the frames read meanwhile are counted as paused);
- loops a file (``--loop``), numbering frames and timestamps on, so the
  classifier sees one continuous stream;
- hands every frame to ``on_frame`` (the window's newest frame, the mp4
  writer) before the classifier gets it;
- stops at once when asked (``Controls.stop``), even during a reconnection
  backoff.

A camera that stops delivering frames, or a stream URL that drops, is
reopened with exponential backoff by :class:`edgevc.runtime.sources.ReconnectingStream`;
its messages go to the picture.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgevc.errors import VideoError
from edgevc.runtime.sources import FrameSource, ReconnectingStream, open_frames
from edgevc.runtime.stats import StreamCounters
from edgevc.runtime.stream import Decision, StreamingClassifier
from edgevc.video import Frame, classify_source, open_source


class DemoClassifier(StreamingClassifier):
    """A :class:`StreamingClassifier` whose hop can be changed from another thread.

    :meth:`request_hop` records the new hop; the classifier's own thread
    applies it before its next frame. A clip model's window restarts (the
    next decision comes after a full clip); the aggregated scores carry on,
    so the bars do not go blank.
    """

    def __init__(self, model: Any, **kw: Any) -> None:
        super().__init__(model, **kw)
        self._lock = threading.Lock()
        self._pending: int | None = None
        self.max_hop = 4 * self.span

    @property
    def shown_hop(self) -> int:
        """The hop as the user last set it (applied with the next frame)."""
        pending = self._pending
        return self.hop if pending is None else pending

    def request_hop(self, hop: int) -> int:
        """Ask for ``hop`` (clamped to 1 .. 4 * span); returns the hop that will apply."""
        hop = max(1, min(int(hop), self.max_hop))
        with self._lock:
            self._pending = hop
        return hop

    def push(self, rgb: np.ndarray, pts: float | None = None, index: int | None = None,
             arrival: float | None = None) -> list[Decision]:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None and pending != self.hop:
            aggregator = self.aggregator
            self.hop = pending
            self.reset()
            self.aggregator = aggregator
        return super().push(rgb, pts, index, arrival)


class Controls:
    """What the keys change, shared by the display thread and the feed: stop and pause."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def toggle_pause(self) -> bool:
        """Pause or resume; returns True when now paused."""
        if self._running.is_set():
            self._running.clear()
            return True
        self._running.set()
        return False

    def wait_while_paused(self) -> float:
        """Block while paused (until resumed or stopped); returns the seconds waited."""
        t = time.monotonic()
        while not self._running.wait(0.05) and not self.stop.is_set():
            pass
        return time.monotonic() - t

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once on stop."""
        self.stop.wait(max(0.0, seconds))

    def quit(self) -> None:
        self.stop.set()
        self._running.set()


class _EndIsLoss:
    """A camera reader whose end is a loss (a camera has no end): it raises, so the stream reconnects."""

    def __init__(self, reader: Any, name: str) -> None:
        self.reader = reader
        self.name = name
        self.stopped_early = None

    def __iter__(self) -> Iterator[Frame]:
        yield from self.reader
        raise VideoError(f"{self.name} stopped delivering frames")

    def close(self) -> None:
        self.reader.close()


def open_demo_source(source: str, decoder: str = "auto", retries: int = 10, backoff: float = 0.5,
                     on_event: Callable[[str], None] | None = None,
                     sleep: Callable[[float], None] = time.sleep) -> FrameSource:
    """A file (opened once), or a camera or stream URL that reconnects with backoff when lost.

    A camera must open the first time (a wrong index is an error at once, not
    a minute of retries); after that, a camera that stops is reopened like a
    stream.
    """
    kind, value = classify_source(source)
    if kind == "file":
        return open_frames(source, decoder=decoder)
    if kind == "camera":
        name = f"camera {value}"
        first = [open_source(int(value))]

        def opener() -> Any:
            return _EndIsLoss(first.pop() if first else open_source(int(value)), name)
    else:
        name = str(value)

        def opener() -> Any:
            return open_source(str(value), decoder=decoder)  # type: ignore[arg-type]
    return ReconnectingStream(name, opener, retries=retries, backoff=backoff, on_event=on_event, sleep=sleep)


class Feed:
    """The source's frames as the demo plays them (see the module docstring); iterate it once.

    ``opener()`` opens the source (again, for ``loop``). Time the feed spends
    waiting (pacing, pause) or in ``on_frame`` is taken off
    ``counters.decode_s``, which the runtime's loops charge with everything
    spent getting a frame.
    """

    def __init__(self, opener: Callable[[], FrameSource], controls: Controls, counters: StreamCounters,
                 on_frame: Callable[[Frame], None], pace: bool = False, loop: bool = False,
                 max_frames: int | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.opener = opener
        self.controls = controls
        self.counters = counters
        self.on_frame = on_frame
        self.pace = pace
        self.loop = loop
        self.max_frames = max_frames
        self.clock = clock
        self.source: FrameSource | None = None
        self.live = False
        self.frames = 0          # frames handed on
        self.paused_frames = 0   # frames a live source delivered while paused (not classified)
        self.loops = 0
        self.reconnects = 0

    def __iter__(self) -> Iterator[Frame]:
        offset_index, offset_pts, start = 0, None, None
        while not self.controls.stop.is_set():
            self.source = src = self.opener()
            self.live = src.live
            first_pts, last, step = None, None, 1 / 30
            try:
                for f in src:
                    t0 = self.clock()
                    if self.controls.paused:
                        if self.live:  # keep reading the device so the picture is current on resume
                            self.paused_frames += 1
                            continue
                        waited = self.controls.wait_while_paused()
                        start = None if start is None else start + waited
                    if self.controls.stop.is_set():
                        return
                    first_pts = f.pts if first_pts is None else first_pts
                    pts = f.pts if offset_pts is None else offset_pts + f.pts - first_pts
                    frame = Frame(offset_index + f.index, pts, f.rgb)
                    if self.pace:
                        start = t0 - pts if start is None else start
                        self.controls.sleep(start + pts - self.clock())
                    self.on_frame(frame)
                    self.counters.decode_s -= self.clock() - t0
                    step = frame.pts - last.pts if last is not None and frame.pts > last.pts else step
                    last = frame
                    self.frames += 1
                    yield frame
                    if self.max_frames is not None and self.frames >= self.max_frames:
                        return
            finally:
                self.reconnects += src.reconnects
                src.close()
            if not self.loop or last is None:
                return
            self.loops += 1
            offset_index, offset_pts = last.index + 1, last.pts + step
