"""The window: Tk from the standard library by default, OpenCV's highgui where the cv2 build has one.

Why Tk: edgevc depends on ``opencv-python-headless``, which has no highgui
(``cv2.imshow`` raises "The function is not implemented"). Installing the
GUI wheel ``opencv-python`` beside it makes two packages own the same
``cv2`` folder (uninstalling either breaks the other), so the demo does not
ask for it. Tk 8.6 ships with Python (Debian: ``python3-tk``) and shows a
frame from raw bytes (a binary PPM), so no imaging package is needed
either: 2-3 ms per 640x480 frame. A cv2 built with a GUI (a Jetson's or a
Raspberry Pi's system OpenCV) is used with ``--gui opencv`` or when Tk is
missing.

Both return key presses as the same names: ``q``, ``esc``, ``space``,
``s``, ``+``, ``-``.
"""

from __future__ import annotations

import os
import time
from typing import Protocol

import numpy as np

from edgevc.errors import EdgevcError

_TK_KEYS = {"q": "q", "Q": "q", "Escape": "esc", "space": "space", "s": "s", "S": "s", "plus": "+",
            "KP_Add": "+", "equal": "+", "minus": "-", "KP_Subtract": "-", "underscore": "-"}
_CV_KEYS = {ord("q"): "q", ord("Q"): "q", 27: "esc", 32: "space", ord("s"): "s", ord("S"): "s", ord("+"): "+",
            ord("="): "+", ord("-"): "-", ord("_"): "-"}


class Display(Protocol):
    closed: bool

    def show(self, canvas: np.ndarray) -> None: ...

    def poll(self, seconds: float) -> list[str]: ...

    def close(self) -> None: ...


class TkDisplay:
    """A Tk window at the top-left of the screen showing RGB canvases; keys collected between polls."""

    name = "tk"

    def __init__(self, title: str) -> None:
        import tkinter as tk

        self.tk = tk
        self.root = tk.Tk()
        self.root.title(title)
        self.root.geometry("+0+0")
        self.root.resizable(False, False)
        self.label = tk.Label(self.root, bd=0, highlightthickness=0, padx=0, pady=0)
        self.label.pack()
        self.photo = None
        self.keys: list[str] = []
        self.closed = False
        self.root.bind("<KeyPress>", self._key)
        self.root.protocol("WM_DELETE_WINDOW", self.close)
        self.root.focus_force()

    def _key(self, event) -> None:
        key = _TK_KEYS.get(event.keysym) or _TK_KEYS.get(event.char or "")
        if key:
            self.keys.append(key)

    def show(self, canvas: np.ndarray) -> None:
        if self.closed:
            return
        h, w = canvas.shape[:2]
        data = b"P6 %d %d 255\n" % (w, h) + np.ascontiguousarray(canvas, dtype=np.uint8).tobytes()
        if self.photo is None or (self.photo.width(), self.photo.height()) != (w, h):
            self.photo = self.tk.PhotoImage(master=self.root, data=data, format="ppm")
            self.label.configure(image=self.photo)
        else:
            self.photo.configure(data=data, format="ppm")
        self.root.update_idletasks()

    def poll(self, seconds: float) -> list[str]:
        end = time.monotonic() + seconds
        while not self.closed:
            self.root.update()
            if time.monotonic() >= end:
                break
            time.sleep(min(0.005, max(0.0, end - time.monotonic())))
        keys, self.keys = self.keys, []
        return keys

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.root.destroy()
            except self.tk.TclError:
                pass


class OpenCVDisplay:
    """``cv2.imshow`` / ``cv2.waitKey``, for OpenCV builds with a GUI."""

    name = "opencv"

    def __init__(self, title: str) -> None:
        import cv2

        self.cv2 = cv2
        self.title = title
        self.closed = False
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)

    def show(self, canvas: np.ndarray) -> None:
        if not self.closed:
            self.cv2.imshow(self.title, self.cv2.cvtColor(canvas, self.cv2.COLOR_RGB2BGR))

    def poll(self, seconds: float) -> list[str]:
        code = self.cv2.waitKey(max(1, int(seconds * 1000)))
        key = _CV_KEYS.get(code & 0xFF) if code >= 0 else None
        try:  # the window's close button
            if self.cv2.getWindowProperty(self.title, self.cv2.WND_PROP_VISIBLE) < 1:
                self.closed = True
        except self.cv2.error:
            self.closed = True
        return [key] if key else []

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.cv2.destroyWindow(self.title)


def cv2_has_gui() -> bool:
    """Was this cv2 built with a GUI backend? (``opencv-python-headless``: no.)"""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "")
    return False


def open_display(title: str, gui: str = "auto") -> Display:
    """A window titled ``title``: ``gui`` is ``tk``, ``opencv`` or ``auto`` (Tk, else a GUI build of cv2)."""
    reasons = []
    if gui in ("auto", "tk"):
        try:
            return TkDisplay(title)
        except ImportError:
            reasons.append("tkinter is not installed (Debian/Ubuntu: apt install python3-tk)")
        except Exception as err:  # noqa: BLE001 -- tkinter.TclError: no display, bad $DISPLAY
            where = os.environ.get("DISPLAY")
            reasons.append(f"Tk cannot open a window ({err}; DISPLAY={where!r})")
    if gui in ("auto", "opencv"):
        if cv2_has_gui():
            return OpenCVDisplay(title)
        reasons.append("this OpenCV has no GUI (opencv-python-headless)")
    raise EdgevcError("cannot open a window: " + "; ".join(reasons),
                      hint="run on a desktop (or under Xvfb), or without a window: --headless --output out.mp4")
