"""The runtime on real exported artifacts, per backend: streaming equals offline, stream models equal
their clip form, and the acceptance run of the I3D OpenVINO int8 artifact on a real Kinetics clip.

Artifacts are exported once per session (``edgevc.export.driver.export_model``, verification skipped:
the export tests verify parity; here the question is whether the runtime feeds the artifact right).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from export_fixtures import ci_kwargs, export_cell  # noqa: F401  (the session fixture)

from edgevc import runtime
from edgevc.runtime.live import run_all
from edgevc.runtime.sources import open_frames
from edgevc.runtime.stream import StreamingClassifier
from edgevc.sampling import aggregate, preprocess, resample_indices, stream_clips, topk
from edgevc.video import read_video

# backends whose artifacts cannot be run on this machine, and why (strict: a new backend must be listed or run)
CANNOT_RUN = {
    "coreml": None if sys.platform == "darwin" else
    "CoreML prediction needs macOS (coremltools: 'Model prediction is only supported on macOS')",
}


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """``exported(model, target, precision, frames=None, size=None) -> artifact folder``, once per session."""
    import torch

    from edgevc.export.driver import export_model

    root = tmp_path_factory.mktemp("artifacts")
    made: dict[tuple, object] = {}

    def get(model: str, target: str, precision: str, frames: int | None = None, size: int | None = None, **kw):
        key = (model, target, precision, frames, size,
               *sorted((k, tuple(sorted(v.items())) if isinstance(v, dict) else v) for k, v in kw.items()))
        if key not in made:
            out = root / "-".join(str(k) for k in key[:5] if k is not None)
            threads = torch.get_num_threads()
            torch.set_num_threads(2)
            try:
                export_model(model, target, precision, frames=frames, size=size, out=out, verify=False, log=None,
                             threads=2, **kw)
            finally:
                torch.set_num_threads(threads)
            made[key] = out
        return made[key]

    return get


def offline(model, path, max_frames=None, hop=None):
    """Offline classification: decode all, resample by timestamps, stream_clips, preprocess, infer, aggregate."""
    meta = model.meta
    video = read_video(path, max_frames=max_frames)
    slots = np.arange(len(video)) if meta.clip.fps is None else resample_indices(video.pts, meta.clip.fps)
    clips = [slots[c] for c in stream_clips(meta.clip, len(slots), hop)]
    logits = np.stack([model.infer(preprocess(video.frames[c], meta.preproc)).reshape(-1) for c in clips])
    return clips, logits, aggregate(logits, meta.agg)


def streamed(model, path, max_frames=None, hop=None):
    clf = StreamingClassifier(model, hop=hop)
    src = open_frames(path)
    try:
        return run_all(src, clf, max_frames=max_frames)
    finally:
        src.close()


# x3d_xs (strided, 30 fps: 280 frames at 28 fps -> 299 slots; span 37, hop 18 -> 15 clips) on every backend;
# tsm_mobilenet_v2 (TSN segments, 25 fps: 250 slots; span 64, hop 32 -> 6 clips) on one
CASES = [("x3d_xs", b, 15) for b in runtime.available_backends()] + [("tsm_mobilenet_v2", "onnx", 6)]


@pytest.mark.parametrize("name,backend,num_clips", CASES, ids=[f"{m}-{b}" for m, b, _ in CASES])
def test_streaming_decisions_equal_offline_classification_per_backend(name, backend, num_clips, exported,
                                                                      arm_wrestling):
    if CANNOT_RUN.get(backend):
        pytest.skip(CANNOT_RUN[backend])
    model = runtime.load(exported(name, backend, "fp32", frames=4 if name == "x3d_xs" else None, size=64),
                         threads=2)
    got = streamed(model, arm_wrestling)
    clips, logits, final = offline(model, arm_wrestling)
    assert len(got) == len(clips) == num_clips
    for d, c in zip(got, clips, strict=True):
        assert list(d.indices) == c.tolist()
    diff = np.abs(np.stack([d.logits for d in got]) - logits).max()
    print(f"{name}-{backend}: {len(got)} decisions, max |streaming - offline| logits = {diff:.3g}")
    assert diff <= 1e-5, f"{backend}: streaming vs offline logits differ by {diff:.3g} (same inputs, same artifact)"
    assert [p.label for p in got[-1].topk] == [p.label for p in topk(final, model.meta.labels, model.meta.agg.topk)]
    assert np.allclose(got[-1].scores, final, atol=1e-6)


@pytest.mark.parametrize("name", ["movinet_a0_stream", "tsm_mobilenet_v2_online"])
def test_stream_model_decision_equals_its_clip_form_in_torch(name, exported, arm_wrestling):
    """The first decision carries the state from zero over the window's frames: the clip form of those frames.

    MoViNet stream: logits after the last frame = ``forward(clip)``; online TSM: the last frame's
    logits = ``forward_frames(clip)[:, -1]`` (causal shift, zero state before the first frame).
    """
    import torch

    from edgevc.export.driver import build_model

    model = runtime.load(exported(name, "onnx", "fp32", size=64), threads=2)
    meta, clip = model.meta, model.meta.clip
    got = streamed(model, arm_wrestling)
    video = read_video(arm_wrestling)
    slots = resample_indices(video.pts, clip.fps)
    fed = slots[np.arange(0, clip.span, clip.stride)]
    assert got and list(got[0].indices) == fed.tolist()
    net, _, _ = build_model(name, None, clip, meta.preproc)  # seed 0 + BN from real clips: the exported weights
    with torch.no_grad():
        x = torch.from_numpy(preprocess(video.frames[fed], meta.preproc))
        ref = (net.forward_frames(x)[0, -1] if hasattr(net, "forward_frames") else net(x)[0]).numpy()
    err = np.abs(got[0].logits - ref).max()
    print(f"{name}: max |stream decision - clip form| = {err:.3g} (logits up to {np.abs(ref).max():.3g})")
    assert err <= 1e-4 * max(1.0, np.abs(ref).max()), f"{name}: stream vs clip form differ by {err:.3g}"


def test_i3d_openvino_int8_names_arm_wrestling_for_most_windows(export_cell, arm_wrestling):  # noqa: F811
    # the export tests' CI cell (plain PTQ, 8 calibration clips), shared with them: one export per session
    art = export_cell("i3d_k400", "openvino", "int8", **ci_kwargs("i3d_k400")).out
    out = subprocess.run([sys.executable, "-m", "edgevc", "run", str(art), "--source", str(arm_wrestling),
                          "--json", "--threads", "2"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    decisions, summary = lines[:-1], lines[-1]["summary"]
    top1 = [d["topk"][0]["label"] for d in decisions]
    print(f"i3d_k400 openvino int8: 'arm wrestling' top-1 in {top1.count('arm wrestling')} of {len(top1)} windows; "
          f"latency p50 {summary['latency']['p50_ms']} ms")
    assert len(decisions) >= 10 and top1.count("arm wrestling") / len(top1) >= 0.8, top1
    lat = summary["latency"]
    assert lat["p50_ms"] > 0 and lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"]
    assert summary["frames_read"] == summary["frames_processed"] == 280 and summary["model"] == "i3d_k400"


def test_torch_free_install_runs_an_exported_artifact(exported, arm_wrestling, tmp_path):
    """A fresh venv with only the device extra: no torch, and ``edgevc run`` gives the same decisions.

    pip reads local wheels (pip config: find-links /opt/wheels), so this takes seconds, not minutes.
    """
    import shutil
    from pathlib import Path

    art = exported("x3d_xs", "openvino", "fp32", frames=4, size=64)
    repo = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"  # a copy: pip builds in the source tree, and the repo stays clean
    shutil.copytree(repo / "edgevc", src / "edgevc", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (repo / name).exists():
            shutil.copy(repo / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py, edgevc = venv / "bin" / "python", venv / "bin" / "edgevc"
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{src}[openvino]"],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-3000:]
    probe = subprocess.run([str(py), "-c", "import sys; print(sys.prefix != sys.base_prefix); import torch"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "True" and "No module named 'torch'" in probe.stderr
    run = [str(art), "--source", str(arm_wrestling), "--json", "--threads", "2"]
    device = subprocess.run([str(edgevc), "run", *run], capture_output=True, text=True, timeout=300)
    assert device.returncode == 0, device.stderr[-3000:]
    here = subprocess.run([sys.executable, "-m", "edgevc", "run", *run], capture_output=True, text=True, timeout=300)
    got = [json.loads(x) for x in device.stdout.splitlines()]
    want = [json.loads(x) for x in here.stdout.splitlines()]
    assert len(got) == len(want) == 16 and got[-1]["summary"]["decisions"] == 15
    for a, b in zip(got[:-1], want[:-1], strict=True):
        assert a["frames"] == b["frames"] and a["t"] == b["t"]
        assert [p["label"] for p in a["topk"]] == [p["label"] for p in b["topk"]]
        assert np.allclose([p["score"] for p in a["topk"]], [p["score"] for p in b["topk"]], atol=1e-5)
