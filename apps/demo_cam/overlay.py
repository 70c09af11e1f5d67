"""What the demo draws over the picture: the top-k panel, the status strip and a banner.

:func:`make_layout` fixes where everything goes for a source size (the
picture is scaled so it is at least 480 pixels high and fits in 1280x720;
text and bars scale with it), and :func:`draw` paints a :class:`HudView`
(a snapshot of what to show) over a frame. Pure numpy + cv2 on RGB arrays,
so the window, the screenshots and the headless video share one drawing.

Example: a 340x256 Kinetics clip is shown at 638x480 (scale 1.876); the
top-k panel sits in the top-left corner, 270 pixels wide, one row (label,
percentage, bar) per class; the status strip is the bottom 46 pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
GREY = (190, 190, 190)
TRACK = (70, 70, 70)       # an empty bar
BAR_TOP = (60, 200, 110)   # the best class's bar
BAR = (80, 150, 230)       # the other bars
PANEL_BG = (16, 16, 16)
ERROR_BG = (200, 40, 40)
INFO_BG = (40, 40, 40)


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``canvas[rect.slices]`` is the rectangle's pixels."""
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)


@dataclass(frozen=True)
class Row:
    """One class in the panel: its text baseline (x, y) and its probability bar."""

    text: tuple[int, int]
    bar: Rect


@dataclass(frozen=True)
class Layout:
    """Where everything goes on a ``size = (width, height)`` canvas showing a ``source`` picture."""

    source: tuple[int, int]
    size: tuple[int, int]
    unit: float                 # 1.0 at 480 pixels high
    panel: Rect
    title: tuple[int, int]
    rows: tuple[Row, ...]
    status: Rect
    status_lines: tuple[tuple[int, int], ...]
    banner: Rect
    font_scale: float

    @property
    def scale(self) -> float:
        return self.size[0] / self.source[0]


def display_size(width: int, height: int, min_h: int = 480, max_w: int = 1280, max_h: int = 720) -> tuple[int, int]:
    """The canvas size for a ``width x height`` source: >= ``min_h`` high, within ``max_w x max_h``, same aspect.

    Both sides are even (H.264 in yuv420p needs it): 340x256 -> 638x480, 1280x720 -> 1280x720.
    """
    s = min(max_w / width, max_h / height, max(1.0, min_h / height))
    return max(2, 2 * round(width * s / 2)), max(2, 2 * round(height * s / 2))


def make_layout(width: int, height: int, rows: int = 5) -> Layout:
    """The layout for a source of ``width x height`` with ``rows`` classes in the panel."""
    w, h = display_size(width, height)
    u = h / 480.0
    pad, row_h = round(8 * u), round(30 * u)
    panel = Rect(round(8 * u), round(8 * u), min(w - round(16 * u), round(270 * u)), 0)
    title = (panel.x + pad, panel.y + pad + round(12 * u))
    table: list[Row] = []
    y = title[1] + round(10 * u)
    for _ in range(rows):
        text = (panel.x + pad, y + round(14 * u))
        bar = Rect(panel.x + pad, y + round(19 * u), panel.w - 2 * pad, max(2, round(7 * u)))
        table.append(Row(text, bar))
        y += row_h
    panel = Rect(panel.x, panel.y, panel.w, y + pad - panel.y)
    status_h = round(46 * u)
    status = Rect(0, h - status_h, w, status_h)
    lines = ((pad, status.y + round(18 * u)), (pad, status.y + round(38 * u)))
    banner = Rect(round(0.1 * w), round(0.45 * h), round(0.8 * w), round(34 * u))
    return Layout((width, height), (w, h), u, panel, title, tuple(table), status, lines, banner, 0.45 * u)


@dataclass(frozen=True)
class HudView:
    """A snapshot of everything drawn over one frame (strings and numbers, no live objects)."""

    title: str
    topk: tuple[tuple[str, float], ...] = ()
    waiting: str | None = None            # shown in the panel before the first decision
    status: tuple[str, str] = ("", "")
    banner: str | None = None
    banner_error: bool = False
    extra: dict = field(default_factory=dict)


def fit_text(text: str, max_w: int, scale: float, thickness: int = 1) -> str:
    """``text``, shortened with '..' until it is at most ``max_w`` pixels wide."""
    if cv2.getTextSize(text, FONT, scale, thickness)[0][0] <= max_w:
        return text
    while len(text) > 1 and cv2.getTextSize(text + "..", FONT, scale, thickness)[0][0] > max_w:
        text = text[:-1]
    return text.rstrip() + ".."


def wrap_text(text: str, max_w: int, scale: float, max_lines: int = 3) -> list[str]:
    """``text`` broken at spaces into lines at most ``max_w`` pixels wide; the last kept line ends '..' if cut."""
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and cv2.getTextSize(f"{line} {words[0]}", FONT, scale, 1)[0][0] <= max_w:
            line += " " + words.pop(0)
        lines.append(fit_text(line, max_w, scale))
    if words:
        lines[-1] = fit_text(lines[-1] + " " + " ".join(words), max_w, scale)
    return lines


def _put(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float, color=WHITE, thick: int = 1) -> None:
    cv2.putText(canvas, text, org, FONT, scale, color, thick, cv2.LINE_AA)


def _shade(canvas: np.ndarray, rect: Rect, color: tuple[int, int, int], alpha: float) -> None:
    """Blend ``color`` over the rectangle with weight ``alpha`` (the picture shows through)."""
    region = canvas[rect.slices]
    if region.size:
        cv2.addWeighted(region, 1.0 - alpha, np.full_like(region, color), alpha, 0.0, dst=region)


def scale_frame(rgb: np.ndarray, layout: Layout) -> np.ndarray:
    """The frame at the canvas size (area filter when shrinking, bilinear when enlarging); always a new array."""
    w, h = layout.size
    if (rgb.shape[1], rgb.shape[0]) == (w, h):
        return np.array(rgb, dtype=np.uint8, copy=True)
    interp = cv2.INTER_AREA if w < rgb.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(rgb), (w, h), interpolation=interp)


def draw_panel(canvas: np.ndarray, view: HudView, layout: Layout) -> None:
    """The title (model, target, precision) and one row per class: label, percentage, bar."""
    fs = layout.font_scale
    _shade(canvas, layout.panel, PANEL_BG, 0.72)
    _put(canvas, fit_text(view.title, layout.panel.w - 16, fs), layout.title, fs, GREY)
    for i, row in enumerate(layout.rows):
        cv2.rectangle(canvas, (row.bar.x, row.bar.y), (row.bar.x + row.bar.w - 1, row.bar.y + row.bar.h - 1),
                      TRACK, -1)
        if i >= len(view.topk):
            if i == 0 and view.waiting:
                _put(canvas, fit_text(view.waiting, row.bar.w, fs), row.text, fs, GREY)
            continue
        label, score = view.topk[i]
        pct = f"{100 * score:.1f}%"
        pct_w = cv2.getTextSize(pct, FONT, fs, 1)[0][0]
        _put(canvas, fit_text(label, row.bar.w - pct_w - 8, fs, 1 + (i == 0)), row.text, fs, WHITE, 1 + (i == 0))
        _put(canvas, pct, (row.bar.x + row.bar.w - pct_w, row.text[1]), fs, GREY)
        fill = int(round(min(1.0, max(0.0, score)) * row.bar.w))
        if fill > 0:
            cv2.rectangle(canvas, (row.bar.x, row.bar.y), (row.bar.x + fill - 1, row.bar.y + row.bar.h - 1),
                          BAR_TOP if i == 0 else BAR, -1)


def draw(rgb: np.ndarray, view: HudView, layout: Layout) -> np.ndarray:
    """The annotated canvas (a new RGB uint8 array of ``layout.size``) for one frame."""
    canvas = scale_frame(rgb, layout)
    draw_panel(canvas, view, layout)
    _shade(canvas, layout.status, PANEL_BG, 0.72)
    fs = layout.font_scale
    for text, org in zip(view.status, layout.status_lines, strict=False):
        _put(canvas, fit_text(text, layout.size[0] - 2 * org[0], fs), org, fs, WHITE)
    if view.banner:
        draw_banner(canvas, view.banner, view.banner_error, layout)
    return canvas


def draw_banner(canvas: np.ndarray, text: str, error: bool, layout: Layout) -> None:
    """A message across the middle of the picture (red for a lost source), up to three centred lines."""
    b, fs = layout.banner, layout.font_scale * 1.1
    lines = wrap_text(text, b.w - round(16 * layout.unit), fs)
    line_h = round(22 * layout.unit)
    box = Rect(b.x, b.y, b.w, b.h + line_h * (len(lines) - 1))
    _shade(canvas, box, ERROR_BG if error else INFO_BG, 0.85)
    for i, line in enumerate(lines):
        tw, th = cv2.getTextSize(line, FONT, fs, 1)[0]
        _put(canvas, line, (b.x + (b.w - tw) // 2, b.y + (b.h + th) // 2 + i * line_h), fs, WHITE)
