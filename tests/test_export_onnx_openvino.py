"""ONNX and OpenVINO exports of x3d_xs and i3d_k400 (CI), verified through the artifacts' own runtimes.

Every cell exports with the driver (real-video calibration for int8), and the driver's verification
runs the artifact through ``edgevc.runtime.load`` on real and random clips against PyTorch fp32.
The tests assert the verification's numbers, the artifact contract (files, sha256, embedded metadata,
input/output names), and the I3D int8 artifact's answer on a real Kinetics clip.

CI runs I3D at its default 32x224² input (at 16x112² its fp32 logits already differ from float64 by
4e-5 in PyTorch itself, and int8 flips more clips) on 4 clips of the Kinetics video, where PyTorch's
top-1 is decisive; the slow acceptance test verifies on 48 clips of all four real videos, of which
33 are decisive (PyTorch's top-1 beats its top-2 by 0.1): top-1 agreement is required there.
CI's I3D int8 cells are plain PTQ (``PLAIN_PTQ``); the OpenVINO profile's accuracy control runs in the
slow acceptance test on I3D and, in CI, on a trained tiny x3d_xs (``test_export_from_run``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_fixtures import CI_CLIPS, CI_MODELS, I3D_CI, ci_kwargs, export_cell  # noqa: F401  (the session fixture)

from edgevc import runtime
from edgevc.spec import ArtifactMeta

CELLS = [(m, t, p) for m in CI_MODELS for t in ("onnx", "openvino") for p in ("fp32", "int8")]


def _cell(export_cell, model, target, precision):  # noqa: F811
    return export_cell(model, target, precision, **ci_kwargs(model))


@pytest.mark.parametrize(("model", "target", "precision"), CELLS)
def test_cell_exports_runs_and_passes_parity(export_cell, model, target, precision):  # noqa: F811
    res = _cell(export_cell, model, target, precision)
    report = res.verify
    assert report is not None and report.numeric == "run"
    assert res.ok, f"{model} {target} {precision}:\n{report.table()}\n{report.failures()}"
    real = next(r for r in report.rows if r.name == "artifact" and r.inputs == "real")
    assert real.figures.samples == ci_kwargs(model)["verify_clips"]
    if precision == "fp32":
        assert real.figures.max_abs <= 1e-4 and real.figures.rel_l2 <= 1e-4
        assert real.figures.top1_agreement == 1.0
    else:
        limit = 0.25 if report.trained else 0.8
        assert real.figures.rel_l2 <= limit
        assert report.trained == (model == "i3d_k400")
        if report.trained:  # the Kinetics clip: every window decisive
            assert real.figures.decisive_samples == real.figures.samples
            assert real.figures.top1_agreement_decisive >= 0.95
        _check_accuracy_control(res, report.trained)
    if target == "openvino":
        precisions = {r.runtime_info["inference_precision"] for r in report.rows}
        assert "f32" in precisions  # the parity row ran with the hint; the default row is separate
        assert {r.name for r in report.rows} == {"artifact", "default-precision"}
    saved = json.loads((res.out / "verify.json").read_text())
    assert saved["passed"] is True and len(saved["rows"]) == len(report.rows)


@pytest.mark.parametrize(("model", "target", "precision"), CELLS)
def test_artifact_carries_its_contract_inside(export_cell, model, target, precision):  # noqa: F811
    res = _cell(export_cell, model, target, precision)
    meta = ArtifactMeta.load(res.out)
    assert (meta.model, meta.target, meta.precision, meta.profile) == (model, target, precision,
                                                                       f"{target}-{precision}")
    expected_files = {"onnx": {"model.onnx"}, "openvino": {"model.xml", "model.bin"}}[target]
    assert set(meta.files) == expected_files and meta.model_file in expected_files
    assert all(len(d) == 64 for d in meta.files.values())
    runtime.verify_files(res.out, meta)
    if target == "onnx":
        import onnx

        graph = onnx.load(str(res.out / "model.onnx"))
        embedded = {p.key: p.value for p in graph.metadata_props}["edgevc"]
        assert [i.name for i in graph.graph.input] == ["clip"]
        assert [o.name for o in graph.graph.output] == ["logits"]
        assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
        assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.graph.initializer)
        if precision == "int8":
            ops = {n.op_type for n in graph.graph.node}
            assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    else:
        import openvino as ov

        ir = ov.Core().read_model(str(res.out / "model.xml"))
        embedded = ir.get_rt_info("edgevc").astype(str)
        assert [list(p.get_shape()) for p in ir.inputs] == [list(meta.input_shape)]  # static
        assert ir.inputs[0].get_any_name() == "clip" and ir.outputs[0].get_any_name() == "logits"
        types = {op.get_type_name() for op in ir.get_ops()}
        assert ("FakeQuantize" in types) == (precision == "int8")
        if precision == "fp32":
            weights = [op for op in ir.get_ops() if op.get_type_name() == "Constant"]
            assert all(op.get_element_type() != ov.Type.f16 for op in weights)  # fp32 stays fp32
    inside = ArtifactMeta.from_json(embedded)
    assert inside.replace(files={}) == meta.replace(files={}) and inside.files == {}


def _check_accuracy_control(res, trained):
    """OpenVINO: the profile's accuracy control ran on a trained model (and held its limit), and was skipped,
    saying why, on a random-init one; the export options are recorded for the cache's reuse check."""
    if res.verify.target_info["export_options"].get("accuracy_control_rel_l2") is None:  # onnx: see onnx-int8.yaml
        assert "accuracy_control" not in res.info
        return
    ac = res.info["accuracy_control"]
    assert res.verify.target_info["export_options"]["accuracy_control_rel_l2"] == 0.03
    if not trained:
        assert ac == {"skipped": "random-init weights", "answer": "not run: random-init weights"}
        return
    assert ac["clips"] == CI_CLIPS["calib_clips"] and ac["limit"] == 0.03
    assert 0 < ac["rel_l2"] <= 0.03 + 1e-6, ac  # measured again on the returned model, not taken from NNCF
    assert ac["ptq_rel_l2"] is not None and ac["quantized_ops"] > 0
    assert len(ac["reverted"]) == ac["reverted_to_float"] < ac["quantized_ops"]
    if ac["ptq_rel_l2"] > 0.03:
        assert ac["reverted_to_float"] > 0 and ac["rel_l2"] < ac["ptq_rel_l2"]


def test_onnx_int8_export_answers_whether_int8_is_faster(export_cell):  # noqa: F811
    res = _cell(export_cell, "x3d_xs", "onnx", "int8")
    speed = res.info["int8_vs_fp32"]
    assert speed["fp32_ms"] > 0 and speed["int8_ms"] > 0 and speed["runs"] >= 5
    assert speed["speedup"] == pytest.approx(speed["fp32_ms"] / speed["int8_ms"], rel=0.01)
    assert ("FASTER" in speed["answer"]) == (speed["speedup"] >= 1.05)
    assert res.verify.target_info["int8_vs_fp32"] == speed  # recorded in verify.json too


def test_i3d_openvino_int8_names_arm_wrestling_on_the_kinetics_clip(export_cell, arm_wrestling):  # noqa: F811
    from edgevc.models.labels import get_labels
    from edgevc.sampling import activate, eval_clips, preprocess
    from edgevc.video import read_video

    res = _cell(export_cell, "i3d_k400", "openvino", "int8")
    model = runtime.load(res.out, threads=2)
    meta = model.meta
    video = read_video(arm_wrestling, fps=meta.clip.fps)
    scores = np.mean([activate(model.infer(preprocess(video.frames[idx], meta.preproc)), "softmax")
                      for idx in eval_clips(meta.clip, len(video), num_clips=3)], axis=0)[0]
    assert meta.labels == get_labels("kinetics400")
    assert meta.labels[int(scores.argmax())] == "arm wrestling"
    assert scores.max() > 0.5


def test_random_init_models_are_bn_calibrated_on_real_clips_and_say_so(export_cell):  # noqa: F811
    res = _cell(export_cell, "x3d_xs", "openvino", "int8")
    prep = json.loads((res.out / "verify.json").read_text())["preparation"]
    assert prep["weights"] == "random init (seed 0)"
    assert prep["bn_calibration"]["layers"] == 83 and len(prep["bn_calibration"]["clips"]) == 4
    assert "momentum=None" in prep["bn_calibration"]["why"]
    i3d = _cell(export_cell, "i3d_k400", "openvino", "int8")
    assert i3d.verify.preparation == {"weights": "asset i3d_k400_ckpt"}
    assert ArtifactMeta.load(i3d.out).weights_sha256.startswith("af5c50f0df57")


def test_export_refuses_an_existing_folder_and_reuses_a_matching_one(export_cell, tmp_path):  # noqa: F811
    from edgevc.errors import EdgevcError
    from edgevc.export.driver import export_model

    res = _cell(export_cell, "x3d_xs", "onnx", "fp32")
    before = sorted(p.name for p in res.out.iterdir())
    with pytest.raises(EdgevcError, match="exists and is not empty") as err:
        export_model("x3d_xs", "onnx", "fp32", out=res.out, log=None)
    assert "--force" in err.value.hint and "--if-missing" in err.value.hint
    again = export_model("x3d_xs", "onnx", "fp32", out=res.out, if_missing=True, log=None)
    assert again.reused and again.model_file == "model.onnx"
    assert sorted(p.name for p in res.out.iterdir()) == before
    with pytest.raises(EdgevcError, match="precision is 'fp32', requested 'int8'"):
        export_model("x3d_xs", "onnx", "int8", out=res.out, if_missing=True, log=None)
    stranger = tmp_path / "notes"
    stranger.mkdir()
    (stranger / "todo.txt").write_text("mine")
    with pytest.raises(EdgevcError, match="holds no edgevc.json"):
        export_model("x3d_xs", "onnx", "fp32", out=stranger, force=True, log=None)
    assert (stranger / "todo.txt").read_text() == "mine"


def test_a_cached_artifact_whose_verification_failed_is_kept_not_reused(export_cell, tmp_path):  # noqa: F811
    import shutil

    from edgevc.errors import EdgevcError
    from edgevc.export.driver import export_model

    res = _cell(export_cell, "x3d_xs", "onnx", "fp32")
    failed = tmp_path / "failed"
    shutil.copytree(res.out, failed)
    report = json.loads((failed / "verify.json").read_text())
    (failed / "verify.json").write_text(json.dumps({**report, "passed": False}))
    before = {p.name: p.read_bytes() for p in failed.iterdir()}
    with pytest.raises(EdgevcError, match="its verification failed: it is kept for inspection") as err:
        export_model("x3d_xs", "onnx", "fp32", out=failed, if_missing=True, log=None)
    assert "verify.json" in err.value.hint and "--force" in err.value.hint
    assert {p.name: p.read_bytes() for p in failed.iterdir()} == before


@pytest.mark.slow
def test_i3d_openvino_int8_with_the_profiles_accuracy_control_on_the_ci_clips(export_cell):  # noqa: F811
    """The OpenVINO int8 profile as it is (accuracy control at 0.03) on I3D, with CI's clip counts."""
    res = export_cell("i3d_k400", "openvino", "int8", **{**CI_CLIPS, **I3D_CI})
    assert res.ok, res.verify.table()
    _check_accuracy_control(res, res.verify.trained)
    assert res.verify.trained


@pytest.mark.slow
@pytest.mark.parametrize("target", ["openvino", "onnx"])
def test_acceptance_i3d_int8_agrees_with_pytorch_on_32_decisive_real_clips(export_cell, target):  # noqa: F811
    """48 clips of the four real videos give >= 32 where PyTorch's top-1 is decisive (margin >= 0.1)."""
    res = export_cell("i3d_k400", target, "int8", verify_clips=48, random_clips=4)
    real = next(r for r in res.verify.rows if r.name == "artifact" and r.inputs == "real")
    print(f"\n{target} int8 acceptance:\n{res.verify.table()}\n{real.figures.disagreements}")
    assert real.figures.samples == 48 and real.figures.decisive_samples >= 32
    assert real.figures.top1_agreement_decisive >= 0.95, res.verify.table()
    assert real.figures.top5_agreement >= 0.95
    assert res.ok, res.verify.table()
