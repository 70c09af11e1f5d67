"""The bad-video corpus: files an edge device meets sooner or later, written deterministically with PyAV.

Run it as a script (``python tests/bad_video/make_corpus.py [DIR]``) or call
:func:`make_corpus`; ``tests/test_reliability_corpus.py`` does the latter.
Files go into ``DIR`` (default ``$EDGEVC_CACHE/bad_video/v<VERSION>``), are
written once (atomically, ``.part`` then rename) and reused afterwards, so
a second call costs nothing. The pictures are synthetic: frame ``i`` is a
flat grey level ``level(i)`` with a small bright square moving across it,
so a test can check what a decoder returned, not only that it returned.

Besides these files the corpus takes, unchanged, ``../shared/clips/edge_cases``
(``corrupted.mp4``, ``rotated_*.mov``, ``unordered.mov``) and ``tree.avi``
(``edgevc.assets.fetch("tree")``: cinepak, variable frame rate); see
:data:`SHARED` and :data:`ASSET_CASES`.

What the encoders in PyAV 18.1's wheel accept (measured here; it decides
which codec each case uses):

- 1x1 and 4097x2161: ``libx264`` refuses odd sizes in yuv420p
  (``avcodec_open2`` fails) but takes them in yuv444p; ``mpeg4``, ``mjpeg``,
  ``libvpx-vp9``, ``ffv1`` and ``png`` take odd sizes in their usual
  formats. The corpus uses ffv1 (1x1, yuv444p) and mpeg4 (4097x2161, yuv420p),
  which is what a camera or phone file of that kind would carry.
- grayscale: ``ffv1`` keeps ``gray`` (8 bit) and ``gray16le`` (16 bit);
  ``libx264`` silently stores gray as yuv420p, so it would not test anything.
- 16-bit colour: ``png`` in ``.mov`` keeps ``rgb48be``.
- alpha: ``png`` in ``.mov`` keeps ``rgba``; ``libvpx-vp9`` writes yuva420p
  into WebM, but FFmpeg's native vp9 decoder returns yuv420p (the alpha
  plane is side data it ignores).
- audio only: ``pcm_s16le`` in ``.wav`` and ``mp2`` in ``.mka``.
- long GOP: ``libx264`` with ``g=600``, ``keyint_min=600``, no scene cuts:
  one key frame every 600 frames.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

VERSION = 2
W, H = 96, 64  # the size of the ordinary synthetic clips (even, so every encoder takes it)
BITEXACT = {"fflags": "+bitexact"}  # no random Matroska segment UID, no date: the same bytes every time


def level(i: int) -> int:
    """The flat grey level of synthetic frame ``i`` (16..235, distinct for 0..54)."""
    return 16 + (i * 4) % 220


def frame(i: int, w: int = W, h: int = H) -> np.ndarray:
    """Synthetic RGB frame ``i``: grey ``level(i)`` with a white square moving across (from 8x8 pixels up)."""
    img = np.full((h, w, 3), level(i), np.uint8)
    if min(w, h) >= 8:
        s = min(w, h) // 8
        x, y = (2 * i) % (w - s + 1), (i // 2) % (h - s + 1)
        img[y:y + s, x:x + s] = 255
    return img


@dataclass(frozen=True)
class Case:
    """One generated file: its name in the corpus and what it is."""

    name: str
    filename: str
    what: str
    write: Callable[[Path], None]


def _encode(path: Path, codec: str, frames: list[np.ndarray], pix_fmt: str, in_fmt: str = "rgb24",
            rate: int = 25, options: dict[str, str] | None = None, container_options: dict[str, str] | None = None,
            fmt: str | None = None) -> None:
    import av

    with av.open(str(path), "w", format=fmt, options={**BITEXACT, **(container_options or {})}) as out:
        s = out.add_stream(codec, rate=rate, options=options or {})
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = pix_fmt
        s.codec_context.thread_count = 1  # deterministic output
        for img in frames:
            out.mux(s.encode(av.VideoFrame.from_ndarray(img, format=in_fmt)))
        out.mux(s.encode())


def _x264(path: Path, n: int, extra: dict[str, str] | None = None, **kw) -> None:
    opts = {"preset": "ultrafast", "threads": "1", **(extra or {})}
    _encode(path, "libx264", [frame(i) for i in range(n)], "yuv420p", options=opts, **kw)


def _cut(src: Path, dst: Path, fraction: float) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])


def _tmp_sibling(path: Path, name: str) -> Path:
    return path.with_name(f".{name}.{path.name}")


# ---------------------------------------------------------------------------------------------- writers


def _zero_byte(p: Path) -> None:
    p.write_bytes(b"")


def _text(p: Path) -> None:
    p.write_text("# meeting notes\nThis is a text file somebody renamed to .mp4.\n" * 40)


def _truncated_moov_at_end(p: Path) -> None:
    full = _tmp_sibling(p, "full")
    _x264(full, 50)  # mp4's index (moov) is written last: a cut file has none
    _cut(full, p, 0.6)
    full.unlink()


def _truncated_faststart(p: Path) -> None:
    full = _tmp_sibling(p, "full")
    _x264(full, 50, container_options={"movflags": "faststart"})  # index first, then the frames
    _cut(full, p, 0.5)
    full.unlink()


def _truncated_mkv(p: Path) -> None:
    full = _tmp_sibling(p, "full")
    _x264(full, 50, fmt="matroska")
    _cut(full, p, 0.5)
    full.unlink()


def _garbled(p: Path) -> None:
    full = _tmp_sibling(p, "full")
    _x264(full, 50, container_options={"movflags": "faststart"})
    data = bytearray(full.read_bytes())
    full.unlink()
    rng = np.random.default_rng(9)
    start = int(len(data) * 0.55)  # inside the frame data, past the index
    data[start:start + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(data))


def _audio(p: Path, codec: str, fmt: str) -> None:
    import av

    rate = 16000 if codec == "pcm_s16le" else 32000
    t = np.arange(rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    with av.open(str(p), "w", format=fmt, options=BITEXACT) as out:
        s = out.add_stream(codec, rate=rate, layout="mono")
        for k in range(0, rate, 1152):
            chunk = tone[k:k + 1152]
            f = av.AudioFrame.from_ndarray(chunk[None], format="s16", layout="mono")
            f.sample_rate, f.pts, f.time_base = rate, k, Fraction(1, rate)
            out.mux(s.encode(f))
        out.mux(s.encode())


def _no_frames(p: Path) -> None:
    import av

    with av.open(str(p), "w", format="matroska", options=BITEXACT) as out:  # a video track that never got a frame
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        out.start_encoding()  # the header is written; no packet follows


def _one_frame(p: Path) -> None:
    _x264(p, 1)


def _gray8(p: Path) -> None:
    _encode(p, "ffv1", [frame(i)[..., 0] for i in range(12)], "gray", in_fmt="gray")


def _gray16(p: Path) -> None:
    # 16-bit values 256 * v + 77: the 8-bit picture should be v, the high byte
    frames = [frame(i)[..., 0].astype(np.uint16) * 256 + 77 for i in range(12)]
    _encode(p, "ffv1", frames, "gray16le", in_fmt="gray16le")


def _rgb48(p: Path) -> None:
    frames = [frame(i).astype(np.uint16) * 256 + 77 for i in range(12)]
    _encode(p, "png", frames, "rgb48be", in_fmt="rgb48le", fmt="mov")


def _rgba(p: Path) -> None:
    frames = []
    for i in range(12):
        img = np.empty((H, W, 4), np.uint8)
        img[..., :3] = frame(i)
        img[..., 3] = np.linspace(0, 255, W, dtype=np.uint8)[None, :]  # transparent on the left
        frames.append(img)
    _encode(p, "png", frames, "rgba", in_fmt="rgba", fmt="mov")


def _vp9_alpha(p: Path) -> None:
    frames = [np.dstack([frame(i), np.full((H, W), 128, np.uint8)]) for i in range(12)]
    _encode(p, "libvpx-vp9", frames, "yuva420p", in_fmt="rgba", options={"lossless": "1", "cpu-used": "8"})


def _tiny(p: Path) -> None:
    _encode(p, "ffv1", [frame(i, 1, 1) for i in range(40)], "yuv444p")


def _huge(p: Path) -> None:
    frames = [frame(i, 4097, 2161) for i in range(3)]
    _encode(p, "mpeg4", frames, "yuv420p", options={"qscale": "4"})


def _long_gop(p: Path) -> None:
    _x264(p, 660, {"g": "600", "keyint_min": "600", "sc_threshold": "0", "x264-params": "scenecut=0"})


CASES: dict[str, Case] = {c.name: c for c in [
    Case("zero_byte", "zero_byte.mp4", "an empty file", _zero_byte),
    Case("text_as_mp4", "notes.mp4", "a text file renamed .mp4", _text),
    Case("truncated_no_index", "truncated_no_index.mp4", "h264 mp4 cut at 60%: the index (moov, at the end) is lost",
         _truncated_moov_at_end),
    Case("truncated_faststart", "truncated_faststart.mp4",
         "h264 mp4 with its index first (faststart), cut at 50%: the index lists frames that are gone",
         _truncated_faststart),
    Case("truncated_mkv", "truncated.mkv", "h264 Matroska cut at 50% (a streamable container)", _truncated_mkv),
    Case("garbled", "garbled.mp4", "h264 mp4 with 2000 random bytes written over its frame data", _garbled),
    Case("audio_only_wav", "audio_only.wav", "one second of a 440 Hz tone, pcm_s16le, no video",
         lambda p: _audio(p, "pcm_s16le", "wav")),
    Case("audio_only_mka", "audio_only.mka", "mp2 audio in Matroska, no video", lambda p: _audio(p, "mp2", "matroska")),
    Case("no_frames", "no_frames.mkv", "a video track (ffv1) with no frame in it", _no_frames),
    Case("one_frame", "one_frame.mp4", "h264 mp4 of a single frame", _one_frame),
    Case("gray8", "gray8.mkv", "ffv1 grayscale (gray, 8 bit), 12 frames", _gray8),
    Case("gray16", "gray16.mkv", "ffv1 16-bit grayscale (gray16le), 12 frames", _gray16),
    Case("rgb48", "rgb48.mov", "png 16-bit colour (rgb48be) in QuickTime, 12 frames", _rgb48),
    Case("alpha_png", "alpha.mov", "png with alpha (rgba) in QuickTime, alpha ramp left to right, 12 frames",
         _rgba),
    Case("alpha_vp9", "alpha.webm", "vp9 with alpha (yuva420p) in WebM, lossless, 12 frames", _vp9_alpha),
    Case("size_1x1", "tiny_1x1.mkv", "1x1 pixel ffv1 (yuv444p), 40 frames", _tiny),
    Case("size_4097x2161", "huge_4097x2161.mp4", "4097x2161 mpeg4 (odd sizes), 3 frames", _huge),
    Case("long_gop", "long_gop.mp4", "h264, 660 frames, one key frame every 600 (g=600, no scene cuts)",
         _long_gop),
]}

# taken as they are from ../shared/clips/edge_cases
SHARED = {
    "corrupted": "corrupted.mp4",
    "rotated_90": "rotated_90.mov",
    "rotated_270": "rotated_270.mov",
    "unordered": "unordered.mov",
}
# fetched with edgevc.assets.fetch
ASSET_CASES = {"vfr_tree": "tree"}


def default_dir() -> Path:
    from edgevc.assets import cache_dir

    return cache_dir() / "bad_video" / f"v{VERSION}"


def make_corpus(out: str | Path | None = None) -> dict[str, Path]:
    """Write the generated cases into ``out`` (once) and return ``{case name: path}``."""
    import av.logging

    av.logging.set_level(av.logging.PANIC)
    root = Path(out) if out is not None else default_dir()
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for case in CASES.values():
        path = root / case.filename
        if not path.exists():
            part = path.with_name(path.stem + ".part" + path.suffix)  # keeps the extension the muxer needs
            part.unlink(missing_ok=True)
            case.write(part)
            os.replace(part, path)
        paths[case.name] = path
    manifest = {name: {"file": p.name, "bytes": p.stat().st_size, "what": CASES[name].what}
                for name, p in paths.items()}
    (root / "manifest.json").write_text(json.dumps({"version": VERSION, "cases": manifest}, indent=2) + "\n")
    return paths


if __name__ == "__main__":
    for name, path in make_corpus(sys.argv[1] if len(sys.argv) > 1 else None).items():
        print(f"{name:>22}  {path.stat().st_size:>9}  {path}")
