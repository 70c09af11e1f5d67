"""A live stream that disconnects or stalls is reconnected with backoff and counted; no crash, no lost frame.

A real stream over loopback: :class:`LoopbackStream` serves an MPEG-TS
stream (h264, 150 frames, written by PyAV) on a TCP port and plays a
script, one action per connection -- send part of the stream then hang up,
send part then stall, accept and hang up at once (a camera rebooting), send
it all -- and stops listening when the script ends (the camera is gone).
The client is the real one: PyAV reading ``tcp://127.0.0.1:PORT`` through
:class:`edgevc.runtime.sources.ReconnectingStream`, and ``edgevc run``.
The scripted-reader unit tests of the backoff arithmetic are in
``test_runtime_sources.py``; these check the same behaviour end to end.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from export_fixtures import CI_CLIPS

from edgevc.errors import VideoError
from edgevc.runtime.sources import ReconnectingStream
from edgevc.video import open_source

sys.path.insert(0, str(Path(__file__).resolve().parent / "bad_video"))
from make_corpus import frame  # noqa: E402

FRAMES, CUT = 150, 0.4


@pytest.fixture(scope="module")
def ts_stream() -> bytes:
    """150 frames of h264 in MPEG-TS (a key frame every 10), as a camera's stream would carry them."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        s = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "g": "10", "threads": "1",
                                                        "tune": "zerolatency"})
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for i in range(FRAMES):
            out.mux(s.encode(av.VideoFrame.from_ndarray(frame(i), format="rgb24")))
        out.mux(s.encode())
    return buf.getvalue()


def _cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction) // 188 * 188]  # whole TS packets


def _frames_in(data: bytes) -> int:
    import av

    with av.open(io.BytesIO(data), format="mpegts") as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


class LoopbackStream:
    """A TCP server playing ``script``: per connection ("hangup", fraction), ("stall", fraction, seconds),
    ("refuse",) or ("all",); after the script it stops listening."""

    def __init__(self, data: bytes, script: list[tuple]) -> None:
        self.data, self.script, self.connections = data, list(script), 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.script:
            conn, _ = self.sock.accept()
            self.connections += 1
            threading.Thread(target=self._play, args=(conn, self.script.pop(0)), daemon=True).start()
        self.sock.close()  # gone: connections are refused from now on

    def _play(self, conn: socket.socket, action: tuple) -> None:
        try:
            if action[0] in ("hangup", "stall"):
                conn.sendall(_cut(self.data, action[1]))
                if action[0] == "stall":
                    time.sleep(action[2])  # the connection stays open, nothing arrives
            elif action[0] == "all":
                conn.sendall(self.data)
        except OSError:  # the client gave up on us first
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.script.clear()
        self.sock.close()


def _watch(url: str, retries: int, backoff: float, options: dict | None = None):
    sleeps, events = [], []

    def sleep(s: float) -> None:
        sleeps.append(round(s, 3))
        time.sleep(s)

    src = ReconnectingStream(url, lambda: open_source(url, options=options), retries=retries, backoff=backoff,
                             on_event=events.append, sleep=sleep)
    return src, sleeps, events


def test_a_stream_that_hangs_up_is_reconnected_with_backoff_and_every_frame_is_numbered(ts_stream):
    first = _frames_in(_cut(ts_stream, CUT))
    server = LoopbackStream(ts_stream, [("hangup", CUT), ("refuse",), ("refuse",), ("all",)])
    src, sleeps, events = _watch(server.url, retries=3, backoff=0.05)
    got = []
    try:
        with pytest.raises(VideoError, match=r"unreachable after 3 retries") as err:
            for f in src:
                got.append(f)
    finally:
        server.close()
    assert 20 < first < FRAMES and len(got) == first + FRAMES  # every frame both connections delivered
    assert [f.index for f in got] == list(range(len(got))) and np.all(np.diff([f.pts for f in got]) > 0)
    # hang-up (1), refused twice (2, 3), reconnected: frames reset the count; the final hang-up (1), gone (2, 3)
    assert sleeps == [0.05, 0.1, 0.2, 0.05, 0.1, 0.2]
    assert src.reconnects == 1 and server.connections == 4
    assert any("the stream ended (the server closed the connection); retry 1 of 3" in e for e in events)
    assert sum("reconnected (frames continue from" in e for e in events) == 1
    assert "check the URL" in err.value.hint


def test_a_stalled_stream_times_out_and_is_reconnected(ts_stream):
    first = _frames_in(_cut(ts_stream, CUT))
    server = LoopbackStream(ts_stream, [("stall", CUT, 5.0), ("all",)])
    src, sleeps, events = _watch(server.url, retries=1, backoff=0.05, options={"rw_timeout": "500000"})  # 0.5 s
    t0, got = time.monotonic(), []
    try:
        with pytest.raises(VideoError, match="unreachable after 1 retries"):
            for f in src:
                got.append(f)
    finally:
        server.close()
    assert len(got) == first + FRAMES and src.reconnects == 1
    assert any("Connection timed out; retry 1 of 1" in e for e in events), events
    assert time.monotonic() - t0 < 5.0  # the stall was cut short by the read timeout, not waited out


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """x3d_xs in OpenVINO int8 (CI calibration), exported once per session for all the reliability tests."""
    from edgevc.export.driver import export_model

    out = tmp_path_factory.getbasetemp() / "reliability-x3d_xs-openvino-int8"
    export_model("x3d_xs", "openvino", "int8", out=out, if_missing=True, threads=2, log=None, **CI_CLIPS)
    return out


@pytest.mark.parametrize("live", [False, True], ids=["every-frame", "live"])
def test_edgevc_run_rides_out_a_dropping_stream_and_accounts_for_every_frame(ts_stream, artifact, live):
    first = _frames_in(_cut(ts_stream, CUT))
    server = LoopbackStream(ts_stream, [("hangup", CUT), ("refuse",), ("all",)])
    try:
        out = subprocess.run([sys.executable, "-m", "edgevc", "run", str(artifact), "--source", server.url,
                              "--json", "--retries", "2", "--threads", "1", *(["--live"] if live else [])],
                             capture_output=True, text=True, timeout=120)
    finally:
        server.close()
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "unreachable after 2 retries" in out.stderr.splitlines()[-2]  # the camera is gone for good
    summary = json.loads(out.stdout.splitlines()[-1])["summary"]  # still summarized, every frame counted
    assert summary["frames_read"] == first + FRAMES and summary["reconnects"] == 1
    # 1.5 s of backoff > a clip's 1.2 s span: the window starts again after the reconnect (live mode may also
    # restart after dropping over a second of frames while it was busy)
    assert summary["gap_restarts"] >= 1 if live else summary["gap_restarts"] == 1
    assert summary["frames_processed"] + summary["frames_dropped"] == summary["frames_read"]
    assert summary["decisions"] == len(out.stdout.splitlines()) - 1 >= 1
    log = out.stderr
    assert "the stream ended (the server closed the connection); retry 1 of 2 in 0.5 s" in log
    assert "retry 2 of 2 in 1.0 s" in log and f"reconnected (frames continue from {first})" in log
