"""A temporal benchmark: camera motions over real textures, in time-reversed class pairs.

Eight classes in four pairs, named by what the camera does (the scene moves
the other way on screen)::

    pan_left  / pan_right    the scene slides right / left
    pan_up    / pan_down     the scene slides down / up
    zoom_in   / zoom_out     the scene grows / shrinks about the centre
    rotate_cw / rotate_ccw   the scene turns clockwise / counter-clockwise on screen

Each sample is ONE rendered sequence of frames; the two classes of its pair
are that sequence forwards and backwards (``train/pan_right/00007.mp4`` is
``train/pan_left/00007.mp4`` reversed, before encoding). Both classes of a
pair therefore show exactly the same set of frames and only the order tells
them apart.

Nuisances are matched across classes so that no single frame carries the
label: every video has a random base rotation (uniform on the circle), a
random scale and position, and draws an amount for every motion kind; a
zoom or a turn that is not the video's own is frozen at a random phase
``tau'`` of its trajectory instead of running through it. The per-frame
distribution of (scale, angle) is then the same for all eight classes;
zooms and turns are about the frame centre. The margin kept from the
texture border is the same formula for every kind.

Camera pose at normalised time ``tau`` in [-1, 1] (frame ``t`` of ``T`` at
``tau = (2t - T + 1) / (T - 1)``): output pixel ``p`` (from the frame
centre) shows texture point ``c + s R(theta) p``, with ``log s = log s0 -
z/2 tau_z``, ``theta = theta0 + r/2 tau_r`` and ``c = c0 + s R(theta)
(d/2 tau) a`` for pans (``a`` the pan axis in view coordinates, x right,
y down; other kinds keep ``c = c0``).

Textures are frames of real clips (:mod:`edgevc.assets`), resized so the
short side is ``texture_short``; train and test use different clips.
Videos are H.264 mp4 (PyAV, libx264) read back through :mod:`edgevc.video`.
Generation is deterministic: sample ``i`` of a kind in a split uses
``numpy.random.default_rng([seed, split, kind, i])``, so the same config
gives byte-identical frames; the encoder settings of :func:`write_mp4`
make the files byte-identical too (see there: x264's defaults did not).
``bench.json`` records the sha256 of both for every video. The folder is a
cache keyed by the config's hash: a second call returns at once.

Sizes (defaults): 8 classes x (80 train + 25 test) videos of 24 frames,
128x128, 25 fps, about 10 MB; per frame the camera pans 1.6-3.1 pixels,
zooms 2-4 % or turns 2-4 degrees. Train textures: the Big Buck Bunny
trailer and the "carphone" clip; test textures: the 5 s Big Buck Bunny
excerpt and "bikes". (The excerpt and the trailer are cut from the same
film; the paired design makes textures carry no label either way.)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgevc.spec import _check, _Spec

LABELS: tuple[str, ...] = (
    "pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out", "rotate_cw", "rotate_ccw",
)
KINDS: tuple[str, ...] = ("pan_x", "pan_y", "zoom", "rotate")
# kind -> (class of the forward render, class of the reversed render)
PAIRS: dict[str, tuple[str, str]] = {
    "pan_x": ("pan_right", "pan_left"),
    "pan_y": ("pan_down", "pan_up"),
    "zoom": ("zoom_in", "zoom_out"),
    "rotate": ("rotate_ccw", "rotate_cw"),
}
SPLITS: tuple[str, ...] = ("train", "test")
MANIFEST = "bench.json"
GENERATOR_VERSION = 2


@dataclass(frozen=True)
class BenchConfig(_Spec):
    """Sizes, motions and sources of the benchmark (every field goes into the cache key).

    ``pan`` is the camera travel over the whole video in output pixels,
    ``zoom`` the change of log-scale, ``rotate`` the turn in degrees: each
    a (low, high) range sampled uniformly. ``scale`` bounds texture pixels
    per output pixel (below 1: the texture is magnified).
    """

    name: str = "motion8"
    seed: int = 0
    size: int = 128
    frames: int = 24
    fps: float = 25.0
    train_per_class: int = 80
    test_per_class: int = 25
    train_sources: tuple[str, ...] = ("bbb_trailer", "carphone")
    test_sources: tuple[str, ...] = ("bbb_720p", "bikes")
    textures_per_source: int = 64
    texture_short: int = 288
    pan: tuple[float, ...] = (36.0, 72.0)
    zoom: tuple[float, ...] = (0.45, 0.9)
    rotate: tuple[float, ...] = (45.0, 90.0)
    scale: tuple[float, ...] = (0.4, 1.0)
    crf: int = 18

    def validate(self) -> None:
        _check(self.size % 2 == 0 and 16 <= self.size <= 1024, self, "size", f"got {self.size}", "even, 16..1024")
        _check(3 <= self.frames <= 1000, self, "frames", f"got {self.frames}", "3..1000")
        _check(self.train_per_class % 2 == 0 and self.train_per_class >= 2, self, "train_per_class",
               f"got {self.train_per_class}", "an even number >= 2 (half the samples of a pair go each way)")
        _check(self.test_per_class >= 1, self, "test_per_class", f"got {self.test_per_class}", ">= 1")
        _check(not set(self.train_sources) & set(self.test_sources), self, "test_sources",
               "shares a clip with train_sources", "different clips for train and test")
        _check(bool(self.train_sources) and bool(self.test_sources), self, "train_sources", "empty", "clip names")
        for name in ("pan", "zoom", "rotate", "scale"):
            lo_hi = getattr(self, name)
            _check(len(lo_hi) == 2 and 0 <= lo_hi[0] <= lo_hi[1], self, name, f"got {list(lo_hi)}", "[low, high]")
        _check(self.scale[0] > 0, self, "scale", f"got {list(self.scale)}", "positive")
        _check(self.zoom[1] < math.log(self.scale[1] / self.scale[0]), self, "zoom",
               f"{self.zoom[1]} does not fit in the scale range {list(self.scale)}", "< log(scale_hi / scale_lo)")
        _check(0 <= self.crf <= 51, self, "crf", f"got {self.crf}", "0..51")
        rho = self.scale[1] * (self.size / math.sqrt(2) + self.pan[1] / 2) + 2
        _check(self.texture_short >= 2 * rho, self, "texture_short", f"got {self.texture_short}",
               f">= {math.ceil(2 * rho)} so every view stays inside the texture")

    def key(self) -> str:
        """Cache key: the name plus a hash of every field and the generator version."""
        blob = json.dumps({"config": self.to_dict(), "version": GENERATOR_VERSION}, sort_keys=True)
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    def per_class(self, split: str) -> int:
        return self.train_per_class if split == "train" else self.test_per_class

    def sources(self, split: str) -> tuple[str, ...]:
        return self.train_sources if split == "train" else self.test_sources


@dataclass(frozen=True)
class Bench:
    """A generated benchmark: ``root/train/<label>/*.mp4``, ``root/test/...``, CSV lists and the manifest."""

    root: Path
    labels: tuple[str, ...]
    config: BenchConfig

    def split_dir(self, split: str) -> Path:
        return self.root / split

    def csv(self, split: str) -> Path:
        return self.root / f"{split}.csv"


# ---------------------------------------------------------------- textures


def load_textures(source: str, count: int, short: int) -> list[np.ndarray]:
    """``count`` evenly spaced frames of an asset clip, short side resized to ``short`` (uint8 RGB)."""
    from edgevc.assets import fetch
    from edgevc.sampling import resize_crop
    from edgevc.video import open_source, probe

    path = fetch(source)
    n = max(1, probe(path).frames)
    wanted = set(np.linspace(0, n - 1, min(count, n)).round().astype(int).tolist())
    out = []
    reader = open_source(path, decoder="pyav")
    try:
        for frame in reader:
            if frame.index in wanted:
                h, w = frame.rgb.shape[:2]
                rh, rw = (short, round(w * short / h)) if h <= w else (round(h * short / w), short)
                img = resize_crop(frame.rgb, short, (rh, rw))
                out.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    finally:
        reader.close()
    return out


def detail(frame: np.ndarray) -> float:
    """Fraction of pixels whose luma gradient exceeds 8 levels: low for black cards, sky and fades."""
    y = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    gx = np.abs(np.diff(y, axis=1))[:-1]
    gy = np.abs(np.diff(y, axis=0))[:, :-1]
    return float(np.mean(np.hypot(gx, gy) > 8.0))


# ---------------------------------------------------------------- trajectories and rendering


@dataclass(frozen=True)
class Poses:
    """Per-frame camera pose: centre (cx, cy) in texture pixels, scale s, angle theta (radians)."""

    cx: np.ndarray
    cy: np.ndarray
    s: np.ndarray
    theta: np.ndarray


def sample_poses(rng: np.random.Generator, kind: str, cfg: BenchConfig, tex_hw: tuple[int, int]) -> Poses:
    """The forward trajectory of one video of motion ``kind`` (see the module docstring)."""
    t = cfg.frames
    tau = (2.0 * np.arange(t) - (t - 1)) / (t - 1)
    d = rng.uniform(*cfg.pan)
    z = rng.uniform(*cfg.zoom)
    r = math.radians(rng.uniform(*cfg.rotate))
    frozen = rng.uniform(-1.0, 1.0, size=2)  # phases of the zoom and the turn when they do not move
    pan = kind in ("pan_x", "pan_y")
    tau_z = tau if kind == "zoom" else np.full(t, frozen[0])
    tau_r = tau if kind == "rotate" else np.full(t, frozen[1])
    lo, hi = math.log(cfg.scale[0]) + z / 2, math.log(cfg.scale[1]) - z / 2
    log_s0 = rng.uniform(lo, hi)
    theta0 = rng.uniform(0.0, 2 * math.pi)
    s = np.exp(log_s0 - z / 2 * tau_z)
    theta = theta0 + r / 2 * tau_r
    rho = math.exp(log_s0 + z / 2) * (cfg.size / math.sqrt(2) + d / 2) + 1.0  # the same margin for every kind
    h, w = tex_hw
    cx0, cy0 = rng.uniform(rho, w - rho), rng.uniform(rho, h - rho)
    off = d / 2 * tau * s if pan else np.zeros(t)  # travel along the view's axis, in texture pixels
    ax, ay = (np.cos(theta), np.sin(theta)) if kind != "pan_y" else (-np.sin(theta), np.cos(theta))
    return Poses(cx0 + off * ax, cy0 + off * ay, s, theta)


def render(texture: np.ndarray, poses: Poses, size: int) -> np.ndarray:
    """Frames (T, size, size, 3) uint8: bilinear views of ``texture`` at each pose."""
    h, w = texture.shape[:2]
    g = np.arange(size, dtype=np.float64) - (size - 1) / 2
    px, py = np.meshgrid(g, g)  # px: columns (x right), py: rows (y down)
    tex = texture.astype(np.float32)
    frames = np.empty((len(poses.s), size, size, 3), dtype=np.uint8)
    for i in range(len(poses.s)):
        c, sn = math.cos(poses.theta[i]) * poses.s[i], math.sin(poses.theta[i]) * poses.s[i]
        qx = poses.cx[i] + c * px - sn * py
        qy = poses.cy[i] + sn * px + c * py
        frames[i] = _bilinear(tex, qx, qy, h, w)
    return frames


def _bilinear(tex: np.ndarray, qx: np.ndarray, qy: np.ndarray, h: int, w: int) -> np.ndarray:
    x0 = np.clip(np.floor(qx).astype(np.int64), 0, w - 2)
    y0 = np.clip(np.floor(qy).astype(np.int64), 0, h - 2)
    fx = np.clip(qx - x0, 0.0, 1.0).astype(np.float32)[..., None]
    fy = np.clip(qy - y0, 0.0, 1.0).astype(np.float32)[..., None]
    top = tex[y0, x0] * (1 - fx) + tex[y0, x0 + 1] * fx
    bottom = tex[y0 + 1, x0] * (1 - fx) + tex[y0 + 1, x0 + 1] * fx
    return np.clip(np.rint(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, crf: int = 18) -> None:
    """Encode uint8 RGB frames as H.264 (libx264, yuv420p, one thread), with deterministic bytes.

    Measured with PyAV 18.1 (its bundled libx264), on 32x32 and 64x64 clips:
    with x264's defaults the bytes of a file depended on what the process had
    done before (the same frames gave different files in a fresh process and
    after other encodes), and the first file of a process could differ
    from the next ones. Numbering ``pts``, converting to yuv420p explicitly
    and turning off the macroblock-tree rate control (``mbtree=0``) made
    every file identical in every trial. ``tests/test_data_synth.py``
    compares a generation in a fresh process with one in the test process.
    """
    from fractions import Fraction

    import av

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate,
                                      options={"crf": str(crf), "preset": "medium", "threads": "1",
                                               "x264-params": "mbtree=0"})
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# ---------------------------------------------------------------- generation


def sample_video(cfg: BenchConfig, split: str, index: int, kind: str,
                 textures: list[tuple[str, np.ndarray]], max_tries: int = 20) -> tuple[np.ndarray, str]:
    """The forward frames of sample ``index`` of ``kind`` in ``split``, and the texture's name.

    Deterministic from the seed. Views with too little texture (black
    cards, sky) are redrawn: the first, middle and last frames must each have
    at least 8% of their pixels on an edge, or the motion would be invisible.
    The redraw depends on the frames, never on the class.
    """
    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), KINDS.index(kind), index])
    for _ in range(max_tries):
        name, tex = textures[int(rng.integers(len(textures)))]
        frames = render(tex, sample_poses(rng, kind, cfg, tex.shape[:2]), cfg.size)
        if min(detail(frames[0]), detail(frames[len(frames) // 2]), detail(frames[-1])) >= 0.08:
            break
    return frames, name


def split_textures(cfg: BenchConfig, split: str) -> list[tuple[str, np.ndarray]]:
    """The split's textures as ``("<source>#<k>", image)``, in a fixed order."""
    out = []
    for src in cfg.sources(split):
        out += [(f"{src}#{k}", img) for k, img in
                enumerate(load_textures(src, cfg.textures_per_source, cfg.texture_short))]
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _generate_split(cfg: BenchConfig, split: str, folder: Path, report: Callable[[str], None]) -> list[dict]:
    textures = split_textures(cfg, split)
    n_pairs = cfg.per_class(split)
    rows = []
    for kind in KINDS:
        fwd_label, rev_label = PAIRS[kind]
        for label in (fwd_label, rev_label):
            (folder / split / label).mkdir(parents=True, exist_ok=True)
        for i in range(n_pairs):
            frames, texture = sample_video(cfg, split, i, kind, textures)
            for label, seq in ((fwd_label, frames), (rev_label, frames[::-1])):
                rel = f"{split}/{label}/{i:05d}.mp4"
                write_mp4(folder / rel, seq, cfg.fps, cfg.crf)
                rows.append({"path": rel, "label": label, "pair": f"{kind}/{i:05d}", "texture": texture,
                             "frames_sha256": _sha(np.ascontiguousarray(seq).tobytes()),
                             "file_sha256": _sha((folder / rel).read_bytes())})
        report(f"{split}: {kind} done ({n_pairs} pairs)")
    return rows


def make_bench(cfg: BenchConfig | None = None, root: str | Path | None = None,
               report: Callable[[str], None] | None = None) -> Bench:
    """Generate the benchmark into ``root/<cfg.key()>`` (default: the edgevc cache), or return it if there.

    Safe to call from several processes at once: one generates under a file
    lock, into a temporary folder renamed into place when complete.
    """
    import fcntl

    from edgevc.assets import cache_dir

    cfg = cfg or BenchConfig()
    base = Path(root) if root is not None else cache_dir() / "bench"
    folder = base / cfg.key()
    if (folder / MANIFEST).is_file():
        return Bench(folder, LABELS, cfg)
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f".{cfg.key()}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / MANIFEST).is_file():
            _generate(cfg, folder, report or (lambda _msg: None))
    return Bench(folder, LABELS, cfg)


def _generate(cfg: BenchConfig, folder: Path, report: Callable[[str], None]) -> None:
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    manifest = {"config": cfg.to_dict(), "generator_version": GENERATOR_VERSION, "labels": list(LABELS),
                "pairs": {k: list(v) for k, v in PAIRS.items()}, "splits": {}}
    for split in SPLITS:
        rows = _generate_split(cfg, split, tmp, report)
        manifest["splits"][split] = rows
        lines = ["path,label"] + [f"{r['path']},{r['label']}" for r in rows]
        (tmp / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (tmp / "labels.txt").write_text("\n".join(LABELS) + "\n")
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
