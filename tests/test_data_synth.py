"""The temporal benchmark: class semantics, time-reversed pairs, determinism, caching, and no single-frame shortcut."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgevc.data.baselines import fit_linear, predict_linear, run_baselines
from edgevc.data.lists import folder_list
from edgevc.data.synth import (
    KINDS,
    LABELS,
    MANIFEST,
    PAIRS,
    BenchConfig,
    make_bench,
    sample_poses,
    sample_video,
    split_textures,
)
from edgevc.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(size=32, frames=8, train_sources=("bbb_720p", "carphone"), test_sources=("bikes",),
            textures_per_source=8, texture_short=64, pan=(6.0, 12.0))


def tiny(**kw) -> BenchConfig:
    return BenchConfig(**{"name": "tiny", "train_per_class": 2, "test_per_class": 1, **TINY, **kw})


def _screen_track(kind: str) -> np.ndarray:
    """Where one texture point appears on screen (x right, y down, from the centre) in each frame."""
    p = sample_poses(np.random.default_rng(3), kind, BenchConfig(), (300, 400))
    q = np.array([p.cx[12] + 20.0, p.cy[12] + 10.0])
    out = []
    for cx, cy, s, th in zip(p.cx, p.cy, p.s, p.theta, strict=True):
        d = q - (cx, cy)
        c, sn = math.cos(th), math.sin(th)  # screen = R(-theta) d / s
        out.append(((c * d[0] + sn * d[1]) / s, (-sn * d[0] + c * d[1]) / s))
    return np.array(out)


def test_forward_renders_move_the_scene_as_the_forward_class_says():
    pan_x, pan_y, zoom, rot = (_screen_track(k) for k in KINDS)
    assert PAIRS["pan_x"][0] == "pan_right" and pan_x[-1, 0] - pan_x[0, 0] < -20  # camera right: scene slides left
    assert abs(pan_x[-1, 1] - pan_x[0, 1]) < 1e-6
    assert PAIRS["pan_y"][0] == "pan_down" and pan_y[-1, 1] - pan_y[0, 1] < -20  # camera down: scene slides up
    assert PAIRS["zoom"][0] == "zoom_in"
    assert np.hypot(*zoom[-1]) > 1.3 * np.hypot(*zoom[0])  # the scene grows about the centre
    angle = np.unwrap(np.arctan2(rot[:, 1], rot[:, 0]))  # y down: a growing angle turns clockwise on screen
    assert PAIRS["rotate"][0] == "rotate_ccw" and math.degrees(angle[-1] - angle[0]) < -25
    assert np.allclose(np.hypot(rot[:, 0], rot[:, 1]), np.hypot(*rot[0]))  # a pure turn
    assert sorted(LABELS) == sorted(c for pair in PAIRS.values() for c in pair)


def test_frozen_nuisances_give_every_class_the_same_per_frame_scale_and_angle_distribution():
    cfg = BenchConfig()
    logs, angles = {}, {}
    for kind in KINDS:
        poses = [sample_poses(np.random.default_rng(i), kind, cfg, (288, 512)) for i in range(1000)]
        logs[kind] = np.log(np.concatenate([p.s for p in poses]))
        angles[kind] = np.mod(np.concatenate([p.theta for p in poses]), 2 * np.pi)
        assert np.log(cfg.scale[0]) - 1e-9 <= logs[kind].min() and logs[kind].max() <= np.log(cfg.scale[1]) + 1e-9
    q = np.linspace(0.1, 0.9, 9)
    ref = np.quantile(logs["pan_x"], q)
    assert abs(np.median(logs["pan_x"]) - 0.5 * np.log(cfg.scale[0] * cfg.scale[1])) < 0.03
    for kind in KINDS:  # same quantiles of log-scale and of the angle (uniform on the circle) for every kind
        assert np.abs(np.quantile(logs[kind], q) - ref).max() < 0.05, kind
        assert np.abs(np.quantile(angles[kind], q) - q * 2 * np.pi).max() < 0.3, kind


@pytest.fixture(scope="module")
def tiny_bench():
    return make_bench(tiny())


def test_the_two_classes_of_a_pair_are_one_render_forwards_and_backwards(tiny_bench):
    manifest = json.loads((tiny_bench.root / MANIFEST).read_text())
    rows = {r["path"]: r for r in manifest["splits"]["train"]}
    textures = split_textures(tiny_bench.config, "train")
    for kind in KINDS:
        fwd, rev = PAIRS[kind]
        frames, texture = sample_video(tiny_bench.config, "train", 1, kind, textures)
        assert rows[f"train/{fwd}/00001.mp4"]["frames_sha256"] == _sha(frames)
        assert rows[f"train/{rev}/00001.mp4"]["frames_sha256"] == _sha(frames[::-1])
        assert rows[f"train/{fwd}/00001.mp4"]["texture"] == rows[f"train/{rev}/00001.mp4"]["texture"] == texture


def _sha(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_videos_are_h264_mp4_that_edgevc_video_reads_back(tiny_bench):
    from edgevc.video import probe, read_video

    path = tiny_bench.split_dir("train") / "zoom_in" / "00000.mp4"
    info = probe(path)
    assert (info.codec, info.width, info.height, info.frames, info.fps) == ("h264", 32, 32, 8, 25.0)
    frames = read_video(path).frames
    assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
    train, test = folder_list(tiny_bench.split_dir("train"), LABELS), folder_list(tiny_bench.split_dir("test"), LABELS)
    assert set(train.counts().values()) == {2} and set(test.counts().values()) == {1}
    assert (tiny_bench.root / "train.csv").read_text().splitlines()[1] == "train/pan_right/00000.mp4,pan_right"


def test_train_and_test_textures_come_from_different_clips(tiny_bench):
    manifest = json.loads((tiny_bench.root / MANIFEST).read_text())
    src = {split: {r["texture"].split("#")[0] for r in rows} for split, rows in manifest["splits"].items()}
    assert src["train"] <= {"bbb_720p", "carphone"} and src["test"] == {"bikes"}
    with pytest.raises(SpecError, match="test_sources"):
        tiny(test_sources=("carphone",))


def test_same_seed_gives_identical_files_even_from_a_fresh_process_and_a_second_call_uses_the_cache(tmp_path):
    cfg = tiny(seed=7)
    a = make_bench(cfg, root=tmp_path / "a")
    code = ("import sys; from edgevc.data.synth import BenchConfig, make_bench; "
            "make_bench(BenchConfig.from_json(sys.argv[1]), root=sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, cfg.to_json(), str(tmp_path / "b")], check=True, timeout=120)
    ma, mb = (json.loads((root / cfg.key() / MANIFEST).read_text()) for root in (tmp_path / "a", tmp_path / "b"))
    assert ma["splits"] == mb["splits"]  # frames AND encoded bytes are identical (first encode of a process too)
    other = json.loads((make_bench(tiny(seed=8), root=tmp_path / "a").root / MANIFEST).read_text())
    assert other["splits"]["train"][0]["frames_sha256"] != ma["splits"]["train"][0]["frames_sha256"]
    stamp = (a.root / MANIFEST).stat().st_mtime_ns
    t0 = time.monotonic()
    assert make_bench(cfg, root=tmp_path / "a").root == a.root
    assert time.monotonic() - t0 < 0.5 and (a.root / MANIFEST).stat().st_mtime_ns == stamp
    assert not list((tmp_path / "a").glob("*.tmp*"))


def test_config_rejects_a_texture_too_small_for_the_view():
    with pytest.raises(SpecError, match="texture_short"):
        tiny(texture_short=40)
    with pytest.raises(SpecError, match="train_per_class"):
        tiny(train_per_class=3)


@pytest.fixture(scope="module")
def stats_bench():
    return make_bench(tiny(name="tiny_stats", train_per_class=16, test_per_class=16, textures_per_source=32))


def test_a_single_frame_or_the_order_blind_mean_is_at_chance(stats_bench):
    train = folder_list(stats_bench.split_dir("train"), LABELS)
    test = folder_list(stats_bench.split_dir("test"), LABELS)
    single, mean = run_baselines(train, test, features="pixels", seed=0)
    # 128 test videos: chance is 0.125 +- 0.03; 0.25 is four standard deviations above it
    assert single.name == "single_frame" and single.n_test == 128 and single.test_top1 <= 0.25
    assert mean.name == "mean" and mean.test_top1 <= 0.25


@pytest.mark.slow
def test_the_full_benchmark_single_frame_baseline_is_at_chance():
    bench = make_bench(BenchConfig())
    train, test = folder_list(bench.split_dir("train"), LABELS), folder_list(bench.split_dir("test"), LABELS)
    single, mean = run_baselines(train, test, features="pixels", seed=0)
    assert single.n_test == 200 and single.test_top1 <= 0.2 and mean.test_top1 <= 0.25


@pytest.mark.slow
def test_frozen_imagenet_features_tell_the_source_clip_from_one_frame_but_not_the_class():
    """The control makes the chance result mean something: the same features and classifier do see the frames."""
    from edgevc.data.baselines import mobilenet_extractor
    from edgevc.video import read_video

    bench = make_bench(BenchConfig())
    rows = json.loads((bench.root / MANIFEST).read_text())["splits"]["train"][::4]  # 160 videos, 40 per kind
    extract = mobilenet_extractor()
    x = np.stack([extract(read_video(bench.root / r["path"]).frames[::6]) for r in rows])
    y = np.array([r["texture"].startswith("carphone") for r in rows], dtype=int)  # trailer or carphone
    fit, held = np.arange(len(rows)) % 2 == 0, np.arange(len(rows)) % 2 == 1  # split by video
    model = fit_linear(x[fit].reshape(-1, x.shape[-1]), np.repeat(y[fit], x.shape[1]), 2)
    assert np.mean(predict_linear(model, x[held, 0]) == y[held]) >= 0.95  # measured 0.975
    train, test = folder_list(bench.split_dir("train"), LABELS), folder_list(bench.split_dir("test"), LABELS)
    single, mean = run_baselines(train, test, features="mobilenet_v2", seed=0, frames_per_video=4)
    assert single.test_top1 <= 0.2 and mean.test_top1 <= 0.25  # measured 0.135 and 0.11 (8 frames per video)
