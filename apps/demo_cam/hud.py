"""The live figures the overlay shows, updated from the capture and inference threads.

:class:`Hud` collects frame arrivals, decisions and source events as they
happen and returns an immutable :class:`~demo_cam.overlay.HudView` for each
drawing. Rates are measured over a sliding window (:class:`RateMeter`), so
the window shows what is happening now, not an average since the start.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from demo_cam.overlay import HudView

KEYS_HELP = "q quit  space pause  s screenshot  +/- hop"


class RateMeter:
    """Events per second over the last ``window_s`` seconds (0.0 until two events are in)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, t: float) -> None:
        self._times.append(t)
        self._trim(t)

    def rate(self, now: float) -> float:
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        # n events: n - 1 intervals since the first; measured up to now, so a source that stops decays to 0
        return (len(self._times) - 1) / max(now - self._times[0], 1e-9)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


class Hud:
    """Thread-safe live state: ``frame()`` from capture, ``decision()`` from inference, ``view()`` to draw.

    ``hop`` and ``dropped`` are callables read at drawing time (the classifier's
    hop, the live loop's drop count), ``span`` the frames one clip needs.
    """

    def __init__(self, title: str, span: int, hop: Callable[[], int], dropped: Callable[[], int],
                 infer_ms: Callable[[], float | None], filled: Callable[[], int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.title = title
        self.span = span
        self.hop = hop
        self.dropped = dropped
        self.infer_ms = infer_ms
        self.filled = filled
        self.clock = clock
        self.capture = RateMeter(2.0)
        self.decisions = RateMeter(6.0)
        self._lock = threading.Lock()
        self._topk: tuple[tuple[str, float], ...] = ()
        self._latency: float | None = None
        self._banner: tuple[str, bool, float | None] | None = None  # text, error?, until (None: until cleared)
        self.paused = False

    # -- updates (any thread) ----------------------------------------------------------------------
    def frame(self) -> None:
        """A frame arrived: an error banner about a lost source goes away."""
        now = self.clock()
        with self._lock:
            self.capture.tick(now)
            if self._banner is not None and self._banner[1]:
                self._banner = None

    def decision(self, topk: tuple[tuple[str, float], ...], latency_ms: float) -> None:
        with self._lock:
            self.decisions.tick(self.clock())
            self._topk = topk
            self._latency = latency_ms

    def event(self, message: str) -> None:
        """A source event (lost, retrying, reconnected): an error banner until frames come back."""
        error = "reconnected" not in message
        head, sep, retry = message.rpartition("; ")
        if sep and retry.startswith("retry"):  # what happens next first: "retry 2 of 10 in 1.0 s: <why>"
            message = f"{retry}: {head}"
        self.banner(message, error=error, seconds=None if error else 3.0)

    def banner(self, text: str, error: bool = False, seconds: float | None = 2.0) -> None:
        with self._lock:
            self._banner = (text, error, None if seconds is None else self.clock() + seconds)

    # -- drawing (the display thread) --------------------------------------------------------------
    def view(self) -> HudView:
        now = self.clock()
        with self._lock:
            fps, rate = self.capture.rate(now), self.decisions.rate(now)
            topk, latency, banner = self._topk, self._latency, self._banner
            if banner is not None and banner[2] is not None and now > banner[2]:
                self._banner = banner = None
        infer = self.infer_ms()
        def ms(x: float | None) -> str:
            return "-" if x is None else f"{x:.0f} ms"

        line1 = f"capture {fps:.1f} fps | decisions {rate:.2f}/s | latency {ms(latency)} | infer {ms(infer)}"
        line2 = f"dropped {self.dropped()} | hop {self.hop()} | {KEYS_HELP}"
        waiting = None if topk else f"first clip: {min(self.filled(), self.span)}/{self.span} frames"
        if self.paused and banner is None:
            banner = ("PAUSED (space to resume)", False, None)
        return HudView(self.title, topk, waiting, (line1, line2),
                       banner[0] if banner else None, bool(banner and banner[1]))
