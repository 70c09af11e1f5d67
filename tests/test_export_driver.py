"""The export driver: specs, errors a user can act on, stream models with explicit state, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from edgevc.errors import MissingDependencyError, UnknownNameError
from edgevc.export.driver import adapt_specs, export_model
from edgevc.models import model_info
from edgevc.spec import ArtifactMeta


def test_frames_and_size_adapt_the_specs_keeping_the_resize_ratio():
    info = model_info("i3d_k400")
    clip, pre = adapt_specs(info.clip, info.preproc, 16, 112)
    assert clip == info.clip.replace(num_frames=16)
    assert (pre.crop, pre.resize_short) == ((112, 112), 128)
    assert adapt_specs(info.clip, info.preproc, None, None) == (info.clip, info.preproc)


def test_unknown_model_gets_did_you_mean(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'x3d_xs'"):
        export_model("x3d_xz", "onnx", out=tmp_path / "a", log=None)


def test_a_missing_package_prints_the_pip_command(tmp_path, monkeypatch):
    from edgevc.export import get_target

    target = get_target("onnx")
    monkeypatch.setattr(target, "requires", (*target.requires, ("edgevc_no_such_runtime", "onnx")), raising=False)
    with pytest.raises(MissingDependencyError) as err:
        export_model("x3d_xs", "onnx", out=tmp_path / "a", log=None)
    assert "edgevc_no_such_runtime" in err.value.message
    assert err.value.hint == "pip install 'edgevc[onnx]'"
    assert not (tmp_path / "a").exists()


class _Airy(nn.Module):
    """A model with an op no exporter converts (aten::special_airy_ai) inside a submodule."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv3d(3, 4, 1)
        self.odd = _AiryBlock()

    def forward(self, x):
        return self.odd(self.stem(x)).mean((2, 3, 4))


class _AiryBlock(nn.Module):
    def forward(self, x):
        return torch.special.airy_ai(x)


@pytest.mark.parametrize("target_name", ["openvino", "onnx"])
def test_an_op_the_target_cannot_take_names_the_op_the_module_and_the_line(tmp_path, target_name):
    from edgevc.export import get_target
    from edgevc.export.base import ExportJob
    from edgevc.export.driver import _run_target
    from edgevc.export.support import UnsupportedOpError

    meta = ArtifactMeta.from_json(json.dumps({
        "model": "airy", "labels": ["a", "b", "c", "d"], "clip": {"num_frames": 2},
        "preproc": {"crop": [8, 8]}, "agg": {}, "input_name": "clip", "input_shape": [1, 3, 2, 8, 8],
        "output_name": "logits", "params": 16, "macs_per_clip": 0, "precision": "fp32",
        "target": target_name, "model_file": "model"}))
    model = _Airy().eval()
    job = ExportJob(model, (torch.randn(1, 3, 2, 8, 8),), meta, tmp_path / "out", "fp32")
    with pytest.raises(UnsupportedOpError) as err:
        _run_target(get_target(target_name), job, tmp_path / "out", model)
    msg = err.value.message
    assert f"{target_name} cannot convert aten::special_airy_ai at odd (_AiryBlock)" in msg
    assert "test_export_driver.py" in msg and "torch.special.airy_ai(x)" in msg
    assert "replace the op" in err.value.hint
    assert not (tmp_path / "out").exists()  # a failed export leaves nothing behind


def test_stream_model_exports_forward_step_with_named_state(tmp_path):
    import onnx

    res = export_model("tsm_mobilenet_v2_online", "onnx", "fp32", size=96, out=tmp_path / "tsm", threads=2,
                       verify_clips=2, random_clips=1, log=None)
    meta = ArtifactMeta.load(res.out)
    assert meta.input_shape == (1, 3, 1, 96, 96) and meta.input_name == "frame"
    assert [s.name for s in meta.state] == [f"state_{i}" for i in range(10)]
    assert meta.state[0].shape == (1, 3, 24, 24)  # the first shift buffer: 1/8 of 24 channels at 1/4 size
    graph = onnx.load(str(res.out / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["frame", *(f"state_{i}" for i in range(10))]
    assert [o.name for o in graph.output] == ["logits", *(f"state_{i}_out" for i in range(10))]
    real = next(r for r in res.verify.rows if r.inputs == "real")
    assert real.figures.samples == 2 * 8  # every step of two 8-frame clips is compared
    assert res.ok and real.figures.max_abs < 1e-4
    assert meta.macs_per_clip == pytest.approx(model_info("tsm_mobilenet_v2_online").macs / 8 * (96 / 224) ** 2,
                                               rel=0.05)  # one frame at 96²


# slow (24 s): a MoViNet stream int8 export; CI keeps the stream model's fp32 checks
@pytest.mark.slow
def test_stream_model_int8_keeps_accumulators_in_float_beyond_the_calibration_length(tmp_path):
    """Calibrated on 8-frame clips, the int8 MoViNet still counts frame 30 as 30 (not clamped at 8)."""
    from edgevc import runtime
    from edgevc.export.calib import RealClips, split_frames
    from edgevc.export.driver import build_model

    res = export_model("movinet_a0_stream", "openvino", "int8", frames=8, size=64, out=tmp_path / "mv",
                       threads=2, verify_clips=2, random_clips=1, calib_clips=8, log=None)
    assert res.ok, res.verify.table()
    model = runtime.load(res.out, threads=2, options={"INFERENCE_PRECISION_HINT": "f32"})
    meta = model.meta
    assert len(meta.state) == 28
    reference, _, _ = build_model("movinet_a0_stream", None, meta.clip, meta.preproc)
    clip = next(iter(RealClips(meta.clip.replace(num_frames=30, stride=1), meta.preproc, 1)))
    state, ref_state = model.init_state(), reference.init_state(1, input_size=(64, 64))
    with torch.no_grad():
        for t, frame in enumerate(split_frames(clip), start=1):
            logits, state = model.step(frame, state)
            ref, ref_state = reference.forward_step(torch.from_numpy(frame), ref_state)
            assert state[0].reshape(-1).tolist() == [float(t)]  # the frame counter, exact
    rel = np.linalg.norm(logits - ref.numpy()) / np.linalg.norm(ref.numpy())
    assert rel < 0.5, f"int8 logits after 30 frames are {rel:.2f} away from PyTorch"


def test_cli_exports_reports_json_and_exits_nonzero_over_tolerance(tmp_path, monkeypatch, capsys):
    from edgevc.cli.main import main

    strict = tmp_path / "profiles"
    strict.mkdir()
    (strict / "onnx-fp32.yaml").write_text(
        "backend: onnx\nprecision: fp32\ntolerances: {max_abs: 0.0, rel_l2: 0.0}\n")
    monkeypatch.setenv("EDGEVC_TARGETS", str(strict))
    out = tmp_path / "x3d"
    args = ["export", "x3d_xs", "--target", "onnx", "--frames", "2", "--size", "64", "--out", str(out),
            "--verify-clips", "2", "--random-clips", "1", "--threads", "2", "--json"]
    assert main(args) == 1  # zero tolerance cannot hold against onnxruntime's own arithmetic
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["ok"] is False and data["profile"] == "onnx-fp32" and data["next"][0].startswith("edgevc run")
    assert "parity over tolerance" in captured.err and "kept" in captured.err
    assert (out / "model.onnx").is_file() and json.loads((out / "verify.json").read_text())["passed"] is False
    assert main(args) == 1  # now refused: the folder exists
    assert "exists and is not empty" in capsys.readouterr().err
