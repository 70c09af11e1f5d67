"""Sources for edgevc run: a dropping stream reconnects with backoff and reports it; clear errors otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from edgevc.errors import VideoError
from edgevc.runtime.sources import ReconnectingStream, open_frames
from edgevc.video import Frame

RGB = np.zeros((4, 4, 3), np.uint8)


class FakeReader:
    """Yields ``n`` frames at 10 fps (pts from 0, as a fresh connection does), then fails if ``drop``."""

    def __init__(self, n: int, drop: bool) -> None:
        self.n, self.drop, self.closed = n, drop, False

    def __iter__(self):
        for i in range(self.n):
            yield Frame(i, i / 10, RGB)
        if self.drop:
            raise VideoError("connection reset by peer")

    def close(self):
        self.closed = True


def scripted(*steps):
    """An opener playing a script: an int n opens a connection giving n frames then dropping; None fails."""
    script = list(steps)
    opened = []

    def opener():
        step = script.pop(0)
        if step is None:
            raise VideoError("connection refused")
        n, drop = step
        opened.append(FakeReader(n, drop))
        return opened[-1]

    return opener, opened


def test_a_dropping_stream_is_retried_with_exponential_backoff_and_each_retry_reported():
    opener, opened = scripted((3, True), None, None, (2, True), (4, False))
    sleeps, events = [], []
    wall = iter(np.arange(0, 100, 0.5))
    s = ReconnectingStream("rtsp://cam/live", opener, retries=3, backoff=0.5, on_event=events.append,
                           sleep=sleeps.append, clock=lambda: float(next(wall)))
    got = list(s)
    assert [f.index for f in got] == list(range(9))  # indices continue across reconnects
    assert np.all(np.diff([f.pts for f in got]) > 0)  # timestamps keep increasing
    assert sleeps == [0.5, 1.0, 2.0, 0.5]  # a frame that arrives resets the backoff
    assert s.reconnects == 2 and all(r.closed for r in opened)
    retries = [e for e in events if "retry" in e]
    assert len(retries) == 4 and "connection reset by peer; retry 1 of 3 in 0.5 s" in retries[0]
    assert "connection refused; retry 3 of 3 in 2.0 s" in retries[2]
    assert sum("reconnected" in e for e in events) == 2


def test_a_stream_that_never_comes_back_gives_up_with_a_clear_error():
    opener, _ = scripted((2, True), None, None, None)
    sleeps = []
    s = ReconnectingStream("http://host/stream", opener, retries=2, backoff=1.0, max_backoff=1.5,
                           sleep=sleeps.append)
    with pytest.raises(VideoError, match="unreachable after 2 retries: connection refused") as err:
        list(s)
    assert "--retries" in err.value.hint and sleeps == [1.0, 1.5]  # capped at max_backoff


def test_a_real_unreachable_url_is_retried_then_reported(monkeypatch):
    events = []
    src = open_frames("http://127.0.0.1:9/none.mp4", retries=1, backoff=0.01, on_event=events.append)
    with pytest.raises(VideoError, match="127.0.0.1:9"):
        list(src)
    assert len(events) == 1 and "retry 1 of 1" in events[0]


def test_a_camera_that_cannot_open_is_a_clear_error():
    with pytest.raises(VideoError, match="camera 57 could not be opened") as err:
        open_frames("57")
    assert "/dev/video" in err.value.hint


def test_a_file_source_is_not_live_and_a_missing_file_is_named(arm_wrestling, tmp_path):
    src = open_frames(arm_wrestling)
    try:
        assert src.kind == "file" and not src.live and next(iter(src)).rgb.shape == (256, 340, 3)
    finally:
        src.close()
    with pytest.raises(VideoError, match="not found"):
        open_frames(tmp_path / "nope.mp4")
