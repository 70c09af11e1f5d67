"""The webcam demo (apps/demo_cam): a real window under Xvfb, the headless mp4, keys, reconnection, layering.

The acceptance tests run ``python apps/demo_cam/main.py`` on the real Kinetics
clip arm_wrestling.mp4 with i3d_k400 exported to OpenVINO int8 once per
session (16 frames at 112x112: the CI size of the export tests, which still
names the clip with probability ~1). The window test needs Debian's ``xvfb``
(``Xvfb``) and skips, saying so, only where it is not installed; it reads the
screen from the file Xvfb keeps it in (``-fbdir``, XWD format), so no
screenshot tool is needed.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from runtime_toys import frames as toy_frames
from runtime_toys import toy_model

from edgevc.errors import EdgevcError, VideoError
from edgevc.runtime.stats import StreamCounters
from edgevc.spec import ClipSpec
from edgevc.video import Frame

REPO = Path(__file__).resolve().parents[1]
APPS = REPO / "apps"
MAIN = APPS / "demo_cam" / "main.py"
sys.path.insert(0, str(APPS))

from demo_cam import overlay  # noqa: E402
from demo_cam.app import DemoApp  # noqa: E402
from demo_cam.hud import Hud, RateMeter  # noqa: E402
from demo_cam.main import build_parser, resolve_artifact  # noqa: E402
from demo_cam.output import VideoWriter  # noqa: E402
from demo_cam.pipeline import Controls, DemoClassifier, Feed, open_demo_source  # noqa: E402

ALLOWED_EDGEVC = ("edgevc.runtime", "edgevc.sampling", "edgevc.video", "edgevc.spec", "edgevc.errors")
DECISION_KEYS = {"frames", "t", "topk", "latency_ms"}


# ---- fixtures and helpers -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def i3d_artifact(tmp_path_factory) -> Path:
    """i3d_k400 -> OpenVINO int8 at 16x112², exported once per session (EDGEVC_DEMO_TEST_ARTIFACT: reuse one)."""
    given = os.environ.get("EDGEVC_DEMO_TEST_ARTIFACT")
    if given:
        return Path(given)
    from edgevc.export.driver import export_model

    out = tmp_path_factory.mktemp("demo") / "i3d_k400-openvino-int8-16x112"
    res = export_model("i3d_k400", "openvino", "int8", frames=16, size=112, out=out, if_missing=True,
                       verify=False, calib_clips=8, threads=2, log=None,
                       export_options={"accuracy_control_rel_l2": None})  # plain PTQ: the export tests cover it
    return res.out


def run_main(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=REPO)


def json_lines(stdout: str) -> tuple[list[dict], dict]:
    """(decisions, the final {"summary", "demo"} line) from --json output."""
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert rows and "summary" in rows[-1], f"no summary line in: {stdout[-500:]}"
    return rows[:-1], rows[-1]


def scaled_frames(video_path: Path, layout: overlay.Layout) -> np.ndarray:
    from edgevc.video import read_video

    return np.stack([overlay.scale_frame(f, layout) for f in read_video(video_path).frames]).astype(np.int16)


def picture_region(layout: overlay.Layout) -> tuple[slice, slice]:
    """The part of the canvas no overlay covers: below the panel, above the status strip."""
    top = layout.panel.y + layout.panel.h + 4
    return slice(top, layout.status.y - 4), slice(0, layout.size[0])


def best_match(shot: np.ndarray, raw: np.ndarray, region: tuple[slice, slice]) -> tuple[int, float]:
    """(index, mean abs difference) of the raw frame closest to ``shot`` over ``region``."""
    diffs = np.abs(raw[(slice(None), *region)] - shot[region].astype(np.int16)).mean(axis=(1, 2, 3))
    return int(diffs.argmin()), float(diffs.min())


def read_xwd(path: Path) -> np.ndarray:
    """The screen Xvfb keeps in ``-fbdir`` (XWD: big-endian header, 32-bit pixels B,G,R,x) as RGB."""
    data = path.read_bytes()
    head = struct.unpack(">25I", data[:100])
    header_size, width, height, bpp, bytes_per_line, ncolors = head[0], head[4], head[5], head[11], head[12], head[19]
    assert bpp == 32, f"Xvfb screen depth {bpp} bits per pixel, expected 32"
    pixels = np.frombuffer(data, np.uint8, count=bytes_per_line * height, offset=header_size + 12 * ncolors)
    return pixels.reshape(height, bytes_per_line // 4, 4)[:, :width, 2::-1].copy()


@pytest.fixture
def xvfb(tmp_path):
    """(DISPLAY, screen file) of a private Xvfb server (a free display number chosen by Xvfb itself)."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb); the window test needs an X server")
    fbdir = tmp_path / "fb"
    fbdir.mkdir()
    r, w = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(w), "-screen", "0", "1024x768x24", "-fbdir", str(fbdir),
                             "-nolisten", "tcp"], pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 30)
        number = os.read(r, 64).decode().strip() if ready else ""
        if not number:
            proc.kill()
            pytest.fail(f"Xvfb did not start: {proc.stderr.read().decode(errors='replace')[-500:]}")
        yield f":{number}", fbdir / "Xvfb_screen0"
    finally:
        os.close(r)
        proc.terminate()
        proc.wait(timeout=10)


def demo_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["--headless", *argv])


class ListSource:
    """A FrameSource stand-in: fixed frames, optionally live (a camera)."""

    def __init__(self, rgb: np.ndarray, live: bool = False, fps: float = 25.0) -> None:
        self.rgb, self.live, self.fps = rgb, live, fps
        self.reconnects = 0
        self.closed = False

    def __iter__(self):
        for i, img in enumerate(self.rgb):
            yield Frame(i, i / self.fps, img)

    def close(self) -> None:
        self.closed = True


# ---- acceptance: the window under Xvfb, the headless mp4 ------------------------------------------

def test_window_under_xvfb_draws_the_overlay_and_says_arm_wrestling(xvfb, i3d_artifact, arm_wrestling):
    display, screen = xvfb
    proc = subprocess.Popen([sys.executable, str(MAIN), "--model", str(i3d_artifact), "--source", str(arm_wrestling),
                             "--json", "--threads", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "DISPLAY": display}, cwd=REPO)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while sum('"topk"' in line for line in lines) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)  # the display loop draws the newest frame within ~10 ms; leave it a few frames
    shots = []
    for _ in range(3):
        shots.append(read_xwd(screen))
        time.sleep(0.3)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err[-2000:]
    reader.join(timeout=10)
    decisions, last = json_lines("".join(lines))

    # the JSON decisions: edgevc run's schema, and they say arm wrestling
    assert len(decisions) >= 3 and all(set(d) == DECISION_KEYS for d in decisions)
    assert all(d["topk"][0]["label"] == "arm wrestling" for d in decisions), [d["topk"][0] for d in decisions]
    s, demo = last["summary"], last["demo"]
    assert (demo["mode"], demo["gui"], s["mode"]) == ("window", "tk", "live")
    assert s["frames_read"] == 280 == s["frames_processed"] + s["frames_dropped"]  # the whole file, every frame counted
    assert demo["frames_shown"] > 100

    # the screenshot: the window at the top-left shows the picture, with the panel drawn over it
    layout = overlay.make_layout(340, 256, rows=5)
    w, h = layout.size
    raw = scaled_frames(arm_wrestling, layout)
    region = picture_region(layout)
    for shot in (s[:h, :w] for s in shots):
        k, picture_diff = best_match(shot, raw, region)
        panel_diff = float(np.abs(shot[layout.panel.slices].astype(np.int16) - raw[k][layout.panel.slices]).mean())
        bar = shot[layout.rows[0].bar.slices]
        filled = float(np.all(bar == overlay.BAR_TOP, axis=-1).mean())
        assert picture_diff < 3.0, f"the window shows no frame of the clip (closest: {k}, diff {picture_diff:.1f})"
        assert panel_diff > 25.0, f"the label panel looks like the raw frame {k} (mean diff {panel_diff:.1f})"
        assert filled > 0.9, f"the top-1 bar is {filled:.0%} filled; arm wrestling scores ~1.0"


def test_headless_writes_one_annotated_frame_per_input_frame(i3d_artifact, arm_wrestling, tmp_path, capsys):
    import av

    out = tmp_path / "annotated.mp4"
    proc = run_main("--model", str(i3d_artifact), "--source", str(arm_wrestling), "--headless", "--output", str(out),
                    "--json", "--threads", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    decisions, last = json_lines(proc.stdout)
    with av.open(str(out)) as container:
        written = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    layout = overlay.make_layout(340, 256, rows=5)
    assert len(written) == 280 == last["summary"]["frames_read"] == last["demo"]["frames_written"]
    assert written[0].shape == (layout.size[1], layout.size[0], 3)
    assert last["summary"]["frames_dropped"] == 0 and last["summary"]["mode"] == "file"

    # frame k of the mp4 is input frame k with the overlay (the panel differs, the picture matches)
    raw = scaled_frames(arm_wrestling, layout)
    region = picture_region(layout)
    for k in (0, 100, 279):
        picture = np.abs(written[k][region].astype(np.int16) - raw[k][region]).mean()
        panel = np.abs(written[k][layout.panel.slices].astype(np.int16) - raw[k][layout.panel.slices]).mean()
        assert picture < 6.0 and panel > 25.0, (k, picture, panel)

    # the decisions are edgevc run's, in its schema (every frame processed: the same clips and scores)
    assert all(d["topk"][0]["label"] == "arm wrestling" for d in decisions)
    from edgevc.cli.main import main as edgevc_main

    assert edgevc_main(["run", str(i3d_artifact), "--source", str(arm_wrestling), "--json", "--threads", "2"]) == 0
    reference, _ = json_lines(capsys.readouterr().out)
    strip = [{k: v for k, v in d.items() if k != "latency_ms"} for d in decisions]
    assert strip == [{k: v for k, v in d.items() if k != "latency_ms"} for d in reference]
    assert all(set(d) == DECISION_KEYS for d in decisions)


def test_edgevc_demo_runs_the_app(i3d_artifact, arm_wrestling, capsys):
    from edgevc.cli.main import main as edgevc_main

    code = edgevc_main(["demo", "--model", str(i3d_artifact), "--source", str(arm_wrestling), "--headless", "--json",
                        "--max-frames", "60", "--threads", "2"])
    decisions, last = json_lines(capsys.readouterr().out)
    assert code == 0 and last["summary"]["frames_read"] == 60 and last["demo"]["mode"] == "headless"
    assert decisions and decisions[0]["topk"][0]["label"] == "arm wrestling"


def test_edgevc_demo_without_the_source_tree_says_where_the_demo_lives(monkeypatch, capsys):
    from edgevc.cli.commands import demo
    from edgevc.cli.main import main as edgevc_main

    monkeypatch.setattr(demo, "apps_dir", lambda: None)
    assert edgevc_main(["demo"]) == 1
    assert "source checkout" in capsys.readouterr().err


# ---- layering and the default artifact --------------------------------------------------------------

def test_demo_imports_only_the_device_side():
    for path in sorted((APPS / "demo_cam").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [f"{node.module}.{a.name}" if node.module == "edgevc" else node.module for a in node.names]
                     if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                if name.startswith("edgevc"):
                    assert name.startswith(ALLOWED_EDGEVC), f"{path.name} imports {name}"
                assert not name.startswith(("torch", "PIL")), f"{path.name} imports {name}"
    code = (f"import sys; sys.path.insert(0, {str(APPS)!r}); import demo_cam.main, demo_cam.app; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith(("
            "'edgevc.models', 'edgevc.export', 'edgevc.cli', 'edgevc.data', 'edgevc.train'))); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_default_artifact_lives_in_the_cache_and_a_failed_export_says_what_to_run(tmp_path, monkeypatch):
    from edgevc.runtime import defaults

    monkeypatch.setenv("EDGEVC_CACHE", str(tmp_path))
    assert defaults.default_artifact_dir() == tmp_path / "artifacts" / "i3d_k400-openvino-int8"
    assert defaults.export_argv()[:7] == ["export", "i3d_k400", "--target", "openvino", "--precision", "int8", "--out"]
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 1))
    with pytest.raises(EdgevcError) as err:
        resolve_artifact(None)
    assert calls and calls[0][1:3] == ["-m", "edgevc"] and calls[0][-1] == "--if-missing"
    assert "pip install 'edgevc[export]'" in err.value.hint

    def export_over_tolerance(cmd, **kw):  # the artifact is written, a parity figure fails: warn and run it
        folder = Path(cmd[cmd.index("--out") + 1])
        folder.mkdir(parents=True)
        (folder / "edgevc.json").write_text("{}")
        return subprocess.CompletedProcess(cmd, 1)

    monkeypatch.setattr(subprocess, "run", export_over_tolerance)
    assert resolve_artifact(None) == defaults.default_artifact_dir()
    assert resolve_artifact(None) == defaults.default_artifact_dir()  # ready now: no second export
    assert resolve_artifact("some/dir") == Path("some/dir")


# ---- the overlay ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size,expected", [((340, 256), (638, 480)), ((1280, 720), (1280, 720)),
                                           ((1920, 1080), (1280, 720)), ((176, 144), (586, 480))])
def test_canvas_is_at_least_480_high_fits_720p_and_has_even_sides(size, expected):
    assert overlay.display_size(*size) == expected
    layout = overlay.make_layout(*size)
    w, h = layout.size
    assert layout.panel.x + layout.panel.w <= w and layout.panel.y + layout.panel.h < layout.status.y
    assert layout.status.y + layout.status.h == h
    assert all(layout.panel.x < r.bar.x and r.bar.x + r.bar.w < layout.panel.x + layout.panel.w for r in layout.rows)


def test_bars_are_drawn_in_proportion_to_the_scores():
    layout = overlay.make_layout(640, 480, rows=5)
    scores = (("arm wrestling", 1.0), ("b", 0.5), ("c", 0.25), ("d", 0.0))
    view = overlay.HudView("toy | onnx fp32", scores, status=("line one", "line two"))
    canvas = overlay.draw(np.full((480, 640, 3), 128, np.uint8), view, layout)
    for i, (_, score) in enumerate(scores):
        bar = canvas[layout.rows[i].bar.slices]
        color = overlay.BAR_TOP if i == 0 else overlay.BAR
        filled = np.all(bar == color, axis=-1).mean()
        assert filled == pytest.approx(score, abs=2 / layout.rows[i].bar.w), (i, filled)
        assert np.all(bar[:, -1] == (overlay.BAR_TOP if score == 1.0 else overlay.TRACK))
    row5 = canvas[layout.rows[4].bar.slices]  # no fifth class: an empty track
    assert np.all(row5 == overlay.TRACK)
    assert np.abs(canvas[layout.panel.slices].astype(int) - 128).mean() > 40  # the panel is shaded and written on


def test_banner_and_waiting_text_change_the_picture():
    layout = overlay.make_layout(640, 480)
    plain = overlay.draw(np.full((480, 640, 3), 128, np.uint8), overlay.HudView("t"), layout)
    lost = overlay.draw(np.full((480, 640, 3), 128, np.uint8),
                        overlay.HudView("t", banner="camera 0 lost", banner_error=True), layout)
    b = layout.banner
    assert np.array_equal(plain[b.slices], np.full_like(plain[b.slices], 128))
    assert (lost[b.slices][..., 0].astype(int) - lost[b.slices][..., 2]).mean() > 80  # red
    assert overlay.fit_text("x" * 200, 100, 0.5).endswith("..")
    lines = overlay.wrap_text("retry 2 of 10 in 1.0 s: " + "a long reason " * 30, 300, 0.5)
    assert len(lines) == 3 and lines[0].startswith("retry 2 of 10 in 1.0 s") and lines[-1].endswith("..")
    assert all(overlay.cv2.getTextSize(t, overlay.FONT, 0.5, 1)[0][0] <= 300 for t in lines)


# ---- live figures, keys, hop ----------------------------------------------------------------------

def test_rate_meter_measures_now_and_decays_when_the_source_stops():
    meter = RateMeter(2.0)
    for i in range(50):
        meter.tick(i * 0.04)
    assert meter.rate(49 * 0.04) == pytest.approx(25.0, rel=0.01)
    assert meter.rate(49 * 0.04 + 1.0) < 20.0
    assert meter.rate(10.0) == 0.0


def test_hud_shows_a_lost_source_until_frames_come_back():
    t = [0.0]
    hud = Hud("m | t p", 16, hop=lambda: 8, dropped=lambda: 3, infer_ms=lambda: 12.5, filled=lambda: 5,
              clock=lambda: t[0])
    view = hud.view()
    assert view.waiting == "first clip: 5/16 frames" and view.banner is None
    assert view.status[1].startswith("dropped 3 | hop 8") and "infer 12 ms" in view.status[0]
    hud.event("stream 'camera 0': camera 0 stopped delivering frames; retry 1 of 10 in 0.5 s")
    t[0] = 30.0
    assert hud.view().banner_error and "retry 1 of 10" in hud.view().banner  # stays while the source is away
    hud.frame()
    assert hud.view().banner is None
    hud.decision((("arm wrestling", 0.9),), 40.0)
    assert hud.view().topk == (("arm wrestling", 0.9),) and "latency 40 ms" in hud.view().status[0]


def test_hop_change_restarts_the_window_and_keeps_the_scores():
    clip = ClipSpec(num_frames=4, stride=1, hop=2)
    clf = DemoClassifier(toy_model(clip))
    images = toy_frames(16)
    done = []
    for i in range(6):
        done += [(i, d) for d in clf.push(images[i], index=i)]
    assert [i for i, _ in done] == [3, 5]
    assert clf.request_hop(4) == 4 and clf.shown_hop == 4 and clf.hop == 2
    for i in range(6, 16):
        done += [(i, d) for d in clf.push(images[i], index=i)]
    assert [i for i, _ in done] == [3, 5, 9, 13]  # a full clip (6..9) after the change, then every 4
    assert done[2][1].frames == (6, 9) and clf.aggregator.count == 4  # the mean runs on over all 4 clips
    assert clf.request_hop(10_000) == 4 * clip.span and clf.request_hop(0) == 1


def test_keys_quit_pause_screenshot_and_hop(tmp_path):
    app = DemoApp(toy_model(ClipSpec(num_frames=4, stride=1, hop=2)), demo_args("--screenshots", str(tmp_path)))
    app.handle_key("space")
    assert app.controls.paused and app.hud.view().banner.startswith("PAUSED")
    app.handle_key("space")
    assert not app.controls.paused
    app.handle_key("s")  # nothing shown yet: nothing to save
    assert app.screenshots == []
    app.canvas = np.zeros((48, 64, 3), np.uint8)
    app.handle_key("s")
    assert len(app.screenshots) == 1 and Path(app.screenshots[0]).stat().st_size > 0
    assert app.hud.view().banner.startswith("saved edgevc-demo-")
    app.handle_key("+")
    assert app.clf.shown_hop == 4
    app.handle_key("-")
    app.handle_key("-")
    assert app.clf.shown_hop == 1
    app.handle_key("esc")
    assert app.controls.stop.is_set()


# ---- the feed: loop, pause, reconnection ----------------------------------------------------------

def test_loop_plays_the_file_again_with_continuing_indices_and_timestamps():
    sources = []

    def opener():
        sources.append(ListSource(toy_frames(5)))
        return sources[-1]

    seen = []
    feed = Feed(opener, Controls(), StreamCounters(), seen.append, loop=True, max_frames=12)
    out = list(feed)
    assert [f.index for f in out] == list(range(12)) and seen == out
    assert np.all(np.diff([f.pts for f in out]) == pytest.approx(0.04))
    assert feed.loops == 2 and all(s.closed for s in sources)


def test_paused_live_source_keeps_reading_and_a_paused_file_waits():
    controls = Controls()
    controls.toggle_pause()
    live = Feed(lambda: ListSource(toy_frames(6), live=True), controls, StreamCounters(), lambda f: None)
    assert list(live) == [] and live.paused_frames == 6

    paused_file = Feed(lambda: ListSource(toy_frames(3)), controls, StreamCounters(), lambda f: None)
    threading.Timer(0.3, controls.toggle_pause).start()
    t = time.monotonic()
    assert [f.index for f in paused_file] == [0, 1, 2] and time.monotonic() - t >= 0.25
    controls.quit()
    assert list(Feed(lambda: ListSource(toy_frames(3)), controls, StreamCounters(), lambda f: None)) == []


def test_lost_camera_reconnects_with_backoff_and_the_message_reaches_the_picture(monkeypatch):
    from demo_cam import pipeline

    opened = []
    script = [toy_frames(3), VideoError("camera 0 could not be opened"), toy_frames(2)]

    def fake_open(value, **kw):
        item = script[len(opened)]
        opened.append(value)
        if isinstance(item, Exception):
            raise item
        return ListSource(item, live=True)

    monkeypatch.setattr(pipeline, "open_source", fake_open)
    app = DemoApp(toy_model(ClipSpec(num_frames=2, stride=1, hop=1)), demo_args("--source", "0"))
    sleeps: list[float] = []
    banners: list[str | None] = []

    def event(msg):
        app.on_event(msg)
        banners.append(app.hud.view().banner)

    source = open_demo_source("0", retries=3, backoff=0.5, on_event=event, sleep=sleeps.append)
    got = list(Feed(lambda: source, app.controls, app.clf.counters, app.on_frame, max_frames=5))
    assert [f.index for f in got] == [0, 1, 2, 3, 4] and opened == [0, 0, 0]
    assert sleeps == [0.5, 1.0] and source.reconnects == 1
    assert banners[0] == "retry 1 of 3 in 0.5 s: stream 'camera 0': camera 0 stopped delivering frames"
    assert banners[1].startswith("retry 2 of 3 in 1.0 s: ") and "reconnected" in banners[2]
    assert not app.hud.view().banner_error  # frames came back


def test_writer_falls_back_to_another_codec_and_keeps_every_frame(tmp_path):
    import av

    writer = VideoWriter(tmp_path / "out.mp4", codecs=("no_such_codec", "mpeg4"))
    for i, pts in enumerate([0.0, 0.04, 0.04, 0.0801, 0.0802]):  # repeated and sub-ms timestamps
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8), pts)
    writer.close()
    with av.open(str(tmp_path / "out.mp4")) as c:
        got = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert writer.codec == "mpeg4" and len(got) == 5 == writer.frames
    assert [int(round(g.mean() / 40)) for g in got] == [0, 1, 2, 3, 4]


def test_tk_window_maps_key_presses_and_shows_the_canvas(xvfb, monkeypatch):
    from demo_cam.display import TkDisplay

    display, screen = xvfb
    monkeypatch.setenv("DISPLAY", display)
    window = TkDisplay("keys")
    try:
        canvas = np.zeros((120, 160, 3), np.uint8)
        canvas[:, :, 0], canvas[40:80, 40:120] = 200, (10, 220, 30)
        window.show(canvas)
        window.poll(0.2)
        assert np.array_equal(read_xwd(screen)[:120, :160], canvas)
        for keysym in ("q", "Escape", "space", "s", "plus", "minus", "KP_Add", "equal", "x"):
            window.root.event_generate("<KeyPress>", keysym=keysym)
        assert window.poll(0.05) == ["q", "esc", "space", "s", "+", "-", "+", "+"]
    finally:
        window.close()
    assert window.closed and window.poll(0.01) == []
