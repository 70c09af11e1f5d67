"""The demo's wiring: source -> feed -> (window | mp4) and the runtime's stream loop -> decisions.

Threads in the window: the display loop runs in the main thread (Tk needs
it); the runtime's :func:`~edgevc.runtime.live.run_live` runs in a worker
thread, with its producer thread reading the :class:`~demo_cam.pipeline.Feed`.
The display shows the newest frame as it arrives, whatever inference is
doing; the classifier takes the newest frame when it is free, and the
frames it never took are the dropped frames.

Headless, a file goes through :func:`~edgevc.runtime.live.run_all` (every
frame, as fast as it decodes: the decisions equal ``edgevc run``'s), a
camera, a stream or a file played ``--realtime`` through ``run_live``; with ``--output`` every frame is
drawn and written, one output frame per input frame.
"""

from __future__ import annotations

import collections
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from demo_cam.display import Display, open_display
from demo_cam.hud import Hud
from demo_cam.output import VideoWriter, save_screenshot
from demo_cam.overlay import Layout, draw, make_layout
from demo_cam.pipeline import Controls, DemoClassifier, Feed, open_demo_source
from edgevc.runtime.live import run_all, run_live
from edgevc.runtime.stats import RunStats, summarize
from edgevc.runtime.stream import Decision
from edgevc.video import Frame, classify_source

KEEP_DECISIONS = 1000  # DemoResult.decisions: the last ones only (the JSON lines carry every decision)


@dataclass
class DemoResult:
    """What a demo run delivered, for the summary and the tests."""

    stats: RunStats
    decisions: list[Decision]       # the last KEEP_DECISIONS (a camera demo may run for days)
    mode: str                       # "window" or "headless"
    gui: str | None
    output: str | None
    frames_written: int
    codec: str | None
    frames_shown: int
    paused_frames: int
    loops: int
    render_s: float = 0.0           # drawing the overlay for the window and the mp4
    encode_s: float = 0.0           # encoding the mp4
    screenshots: list[str] = field(default_factory=list)
    interrupted: bool = False

    def demo_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "gui": self.gui, "output": self.output, "frames_written": self.frames_written,
                "codec": self.codec, "frames_shown": self.frames_shown, "paused_frames": self.paused_frames,
                "loops": self.loops,
                "render_s": round(self.render_s, 4), "encode_s": round(self.encode_s, 4),
                "screenshots": self.screenshots, "interrupted": self.interrupted}


WAITING = Frame(-1, 0.0, np.zeros((480, 640, 3), np.uint8))


def decision_line(d: Decision) -> str:
    """One readable line per decision (headless without --json)."""
    best = d.topk[0]
    rest = ", ".join(f"{p.label} {p.score:.3f}" for p in d.topk[1:3])
    return (f"frames {d.frames[0]:5d}-{d.frames[1]:<5d} t {d.t[0]:6.2f}-{d.t[1]:6.2f} s  {best.label} "
            f"{best.score:.3f}" + (f"  ({rest})" if rest else "") + f"  {d.latency_ms:.1f} ms")


class DemoApp:
    """One run of the demo on an opened artifact (``edgevc.runtime.load``) with the parsed options."""

    def __init__(self, model: Any, args: Any, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.model, self.args = model, args
        self.out, self.err = out or sys.stdout, err or sys.stderr
        meta = model.meta
        self.kind = classify_source(args.source)[0]
        # a file plays at its own pace in the window (or with --realtime); headless it goes as fast as it decodes
        self.pace = self.kind == "file" and (not args.headless or args.realtime)
        self.live = self.pace or self.kind != "file"
        self.controls = Controls()
        self.clf = DemoClassifier(model, hop=args.hop, k=args.topk, newest_only=self.live)
        c = self.clf.counters
        self.hud = Hud(f"{meta.model} | {meta.target} {meta.precision}", self.clf.span,
                       hop=lambda: self.clf.shown_hop,
                       dropped=lambda: c.frames_dropped or max(0, c.frames_read - c.frames_processed - 1),
                       infer_ms=lambda: 1000 * c.infer_s / c.inferences if c.inferences else None,
                       filled=lambda: self.clf.window.count)
        self.writer = VideoWriter(args.output) if args.output else None
        self.title = f"edgevc demo: {meta.model} ({meta.target} {meta.precision})"
        self.latest: Frame | None = None
        self.canvas: np.ndarray | None = None
        self.screenshots: list[str] = []
        self.frames_shown = 0
        self.render_s = 0.0
        self.failure: BaseException | None = None
        self.decisions: collections.deque[Decision] = collections.deque(maxlen=KEEP_DECISIONS)
        self._layouts: dict[tuple[int, int], Layout] = {}

    # -- callbacks -------------------------------------------------------------------------------
    def layout(self, rgb: np.ndarray) -> Layout:
        key = (rgb.shape[1], rgb.shape[0])
        if key not in self._layouts:
            self._layouts[key] = make_layout(*key, rows=self.clf.k)
        return self._layouts[key]

    def on_frame(self, frame: Frame) -> None:
        self.hud.frame()
        self.latest = frame
        if self.writer is not None:
            self.writer.write(self.render(frame), frame.pts)

    def render(self, frame: Frame) -> np.ndarray:
        t = time.perf_counter()
        canvas = draw(frame.rgb, self.hud.view(), self.layout(frame.rgb))
        self.render_s += time.perf_counter() - t
        return canvas

    def on_decision(self, d: Decision) -> None:
        self.decisions.append(d)
        self.hud.decision(tuple((p.label, p.score) for p in d.topk), d.latency_ms)
        if self.args.json:
            print(json.dumps(d.to_dict()), file=self.out, flush=True)
        elif self.args.headless:
            print(decision_line(d), file=self.out, flush=True)

    def on_event(self, message: str) -> None:
        self.hud.event(message)
        print(f"demo: {message}", file=self.err, flush=True)

    def handle_key(self, key: str) -> None:
        """q/esc quit, space pause, s screenshot, +/- double or halve the hop."""
        if key in ("q", "esc"):
            self.controls.quit()
        elif key == "space":
            self.hud.paused = self.controls.toggle_pause()
        elif key == "s" and self.canvas is not None:
            path = save_screenshot(self.canvas, self.args.screenshots)
            self.screenshots.append(str(path))
            self.hud.banner(f"saved {path.name}")
            print(f"demo: screenshot {path}", file=self.err, flush=True)
        elif key in ("+", "-"):
            hop = self.clf.shown_hop
            new = self.clf.request_hop(hop * 2 if key == "+" else max(1, hop // 2))
            wait = "" if self.clf.stateful else f"; next decision after a full clip ({self.clf.span} frames)"
            self.hud.banner(f"hop {new}{wait}")

    # -- running ---------------------------------------------------------------------------------
    def _classify(self, feed: Feed) -> None:
        try:
            loop = run_live if self.live else run_all
            loop(feed, self.clf, self.on_decision, keep=False)  # on_decision keeps the last ones
        except BaseException as err:  # noqa: BLE001 -- raised again in the main thread
            self.failure = err

    def _window(self, feed: Feed, display: Display) -> None:
        worker = threading.Thread(target=self._classify, args=(feed,), name="edgevc-demo-classify", daemon=True)
        worker.start()
        shown, drawn_at = None, 0.0
        try:
            while worker.is_alive():
                for key in display.poll(0.01):
                    self.handle_key(key)
                if display.closed:
                    self.controls.quit()
                    worker.join(0.05)
                    continue
                frame, now = self.latest, time.monotonic()
                if frame is not shown or now - drawn_at > 0.25:  # a new frame, or the figures and banners
                    self.canvas = self.render(frame or WAITING)  # (a black picture until the first frame)
                    display.show(self.canvas)
                    self.frames_shown += frame is not shown
                    shown, drawn_at = frame, now
        finally:
            self.controls.quit()
            worker.join(timeout=30)
            display.close()

    def run(self) -> DemoResult:
        """Play the source to its end (or q, or Ctrl-C); returns the summary. Errors are raised."""
        def reopen():
            return open_demo_source(self.args.source, self.args.decoder, self.args.retries,
                                    on_event=self.on_event, sleep=self.controls.sleep)

        first = [reopen()]  # a missing file or a camera that cannot open fails here, before any window

        def opener():
            return first.pop() if first else reopen()

        feed = Feed(opener, self.controls, self.clf.counters, self.on_frame, pace=self.pace,
                    loop=self.args.loop, max_frames=self.args.max_frames)
        display = None if self.args.headless else open_display(self.title, self.args.gui)
        interrupted = False
        t0 = time.perf_counter()
        try:
            if display is not None:
                self._window(feed, display)
            else:
                self._classify(feed)
        except KeyboardInterrupt:
            interrupted = True
            self.controls.quit()
        finally:
            if self.writer is not None:
                self.writer.close()
        wall = time.perf_counter() - t0
        if self.failure is not None:
            if isinstance(self.failure, KeyboardInterrupt):
                interrupted = True
            else:
                raise self.failure
        self.clf.counters.reconnects = feed.reconnects
        mode = "live" if self.live else "file"
        stats = summarize(self.clf.counters, self.model.meta, wall, str(self.args.source), mode,
                          threads=self.args.threads)
        w = self.writer
        return DemoResult(stats, list(self.decisions), "headless" if display is None else "window",
                          getattr(display, "name", None), str(w.path) if w else None, w.frames if w else 0,
                          w.codec if w else None, self.frames_shown, feed.paused_frames, feed.loops,
                          self.render_s, w.encode_s if w else 0.0, self.screenshots, interrupted)


def print_summary(result: DemoResult, as_json: bool, out: TextIO | None = None) -> None:
    """The runtime's run summary, plus what the demo showed and wrote."""
    out = out or sys.stdout
    if as_json:
        print(json.dumps({"summary": result.stats.to_dict(), "demo": result.demo_dict()}), file=out, flush=True)
        return
    print(result.stats.to_table(), file=out)
    width = max(len(k) for k, _ in result.stats.rows())
    gui = f" ({result.gui})" if result.gui else ""
    rows = [("demo", f"{result.mode}{gui}, {result.frames_shown} frames shown, {result.paused_frames} read while "
                     f"paused, {result.loops} loops; overlay {result.render_s:.2f} s")]
    if result.output:
        rows.append(("output", f"{result.output} ({result.frames_written} frames, {result.codec}, "
                               f"encoding {result.encode_s:.2f} s)"))
    rows += [("screenshot", s) for s in result.screenshots]
    for k, v in rows:
        print(f"{k:>{width}}  {v}", file=out)
    out.flush()

