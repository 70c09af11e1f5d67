"""CoreML export: conversion, weight compression and the structural checks Linux can run.

Core ML predictions need macOS, so on Linux numeric parity is NOT RUN: the
tests check what can be checked (the package reloads; input and output
names and shapes; one MIL conv per torch convolution; weights stored as
the precision says; the metadata embedded) and that the runtime backend
refuses plainly. CI cells: x3d_xs and i3d_k400 (real weights, 16x112²) in
fp16 and with int8 weights; the whole zoo in fp16 is marked slow.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from edgevc.errors import EdgevcError
from edgevc.export.base import ExportJob
from edgevc.export.stream import StepModule, state_specs
from edgevc.models import create, list_models, model_info
from edgevc.models.labels import numbered
from edgevc.spec import AggSpec, ArtifactMeta

pytest.importorskip("coremltools")

from edgevc.export.targets.coreml import (  # noqa: E402
    MODEL_FILE,
    TARGET,
    register_converters,
    structural_check,
)

LINUX = sys.platform != "darwin"


def _meta(name: str, precision: str, frames: int, size: int, model: nn.Module) -> ArtifactMeta:
    info = model_info(name)
    stream = info.stream
    return ArtifactMeta(
        model=name, labels=numbered(info.num_classes), clip=info.clip.replace(num_frames=frames),
        preproc=info.preproc.replace(crop=(size, size), resize_short=size if info.preproc.resize_short else None),
        agg=AggSpec(), input_name="frame" if stream else "clip",
        input_shape=(1, 3, 1 if stream else frames, size, size), output_name="logits", params=0, macs_per_clip=0,
        precision=precision, target="coreml", model_file="model",
        state=state_specs(model, (size, size)) if stream else ())


def export_cell(name: str, precision: str, frames: int, size: int, folder: Path,
                options: dict | None = None) -> tuple[ArtifactMeta, dict]:
    info = model_info(name)
    torch.manual_seed(0)
    model = create(name, pretrained=info.weights is not None).eval()
    meta = _meta(name, precision, frames, size, model)
    x = torch.randn(meta.input_shape)
    if info.stream:
        job_model, example = StepModule(model).eval(), (x, *model.init_state(1, (size, size)))
    else:
        job_model, example = model, (x,)
    job = ExportJob(job_model, example, meta, folder, precision, options=options or {})
    model_file = TARGET.export(job)
    assert model_file == MODEL_FILE and (folder / MODEL_FILE / "Manifest.json").is_file()
    return meta.replace(model_file=model_file), job.info


@pytest.fixture(scope="module", params=[("x3d_xs", 4, 160), ("i3d_k400", 16, 112)], ids=["x3d_xs", "i3d_k400"])
def fp16_and_int8(request, tmp_path_factory):
    name, frames, size = request.param
    out = {}
    for precision in ("fp16", "int8"):
        folder = tmp_path_factory.mktemp(f"{name}-{precision}")
        out[precision] = (folder, *export_cell(name, precision, frames, size, folder))
    return name, out


def _checks(folder: Path, meta: ArtifactMeta) -> dict[str, dict]:
    return {c["check"]: c for c in TARGET.structural_checks(folder, meta)}


# ---- CI: x3d_xs and i3d_k400, fp16 and int8 weights ---------------------------------------------

def test_structural_checks_all_run_and_pass(fp16_and_int8):
    name, cells = fp16_and_int8
    for precision, (folder, meta, info) in cells.items():
        checks = _checks(folder, meta)
        assert set(checks) == {"reload", "inputs", "outputs", "convolutions", "compression", "metadata"}
        failed = {k: c["detail"] for k, c in checks.items() if not c["passed"]}
        assert not failed, f"{name} {precision}: {failed}"
        assert info["coreml"]["checks_passed"] == 6
        if LINUX:
            assert "numeric parity NOT RUN: CoreML prediction needs macOS" in info["coreml"]["answer"]


def test_every_torch_convolution_is_a_mil_conv(fp16_and_int8):
    name, cells = fp16_and_int8
    folder, meta, info = cells["fp16"]
    expected = {"x3d_xs": 116, "i3d_k400": 58}[name]  # 3D convs, kept as 3D MIL convs (no rewrite needed)
    assert info["coreml"]["ops"]["conv"] == expected
    assert _checks(folder, meta)["convolutions"]["detail"].startswith(f"{expected} MIL conv ops for {expected}")


def test_int8_weights_are_constexpr_dequantized_and_the_package_shrinks(fp16_and_int8):
    name, cells = fp16_and_int8
    fp16_folder, _, fp16_info = cells["fp16"]
    int8_folder, _, int8_info = cells["int8"]
    ops = int8_info["coreml"]["ops"]
    dequant = ops.get("constexpr_affine_dequantize", 0) + ops.get("constexpr_blockwise_shift_scale", 0)
    assert dequant >= 0.8 * fp16_info["coreml"]["weights_by_dtype"].get("const:float16", 0)
    assert "constexpr_affine_dequantize" not in fp16_info["coreml"]["ops"]

    def size(folder: Path) -> int:
        return sum(p.stat().st_size for p in (folder / MODEL_FILE).rglob("*") if p.is_file())

    assert size(int8_folder) < 0.6 * size(fp16_folder)  # int8 vs fp16 weights, small tensors left in fp16


def test_structural_check_fails_when_the_artifact_is_not_what_the_metadata_says(fp16_and_int8):
    _, cells = fp16_and_int8
    folder, meta, _ = cells["fp16"]
    wrong = meta.replace(input_shape=(1, 3, 2, 64, 64), labels=numbered(10))
    checks = {c["check"]: c for c in structural_check(folder / MODEL_FILE, wrong)["checks"]}
    assert not checks["inputs"]["passed"] and not checks["outputs"]["passed"]
    assert not checks["metadata"]["passed"] and "labels" in checks["metadata"]["detail"]
    missing = structural_check(folder / "nothing.mlpackage", meta)
    assert [c["passed"] for c in missing["checks"]] == [False]
    assert missing["summary"]["checks_passed"] == 0


@pytest.mark.skipif(not LINUX, reason="the Linux refusal")
def test_runtime_backend_refuses_plainly_on_linux(fp16_and_int8):
    from edgevc.runtime.backends.coreml import CoremlBackend

    _, cells = fp16_and_int8
    folder, meta, _ = cells["fp16"]
    with pytest.raises(EdgevcError) as err:
        CoremlBackend(folder / MODEL_FILE, meta)
    assert "CoreML prediction needs macOS" in str(err.value)
    assert "--target onnx" in err.value.hint
    assert TARGET.cannot_run().startswith("CoreML prediction needs macOS")


@pytest.mark.skipif(LINUX, reason="Core ML predictions need macOS: numeric parity is NOT RUN on Linux")
def test_predictions_match_pytorch_on_macos(fp16_and_int8):  # pragma: no cover - macOS only
    import numpy as np

    from edgevc.runtime.backends.coreml import CoremlBackend

    name, cells = fp16_and_int8
    folder, meta, _ = cells["fp16"]
    torch.manual_seed(0)
    model = create(name, pretrained=model_info(name).weights is not None).eval()
    x = torch.randn(meta.input_shape)
    with torch.no_grad():
        ref = model(x).numpy()
    got = CoremlBackend(folder / MODEL_FILE, meta).run([x.numpy()])[0]
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-2


# slow (23 s): CI keeps CoreML's fp16/int8 structural checks for x3d_xs and i3d_k400
@pytest.mark.slow
def test_palettized_weights_are_look_up_tables(tmp_path):
    meta, info = export_cell("x3d_xs", "fp16", 4, 64, tmp_path, options={"palettize": 6})
    assert info["coreml"]["ops"].get("constexpr_lut_to_dense", 0) > 50
    assert _checks(tmp_path, meta)["compression"]["detail"].endswith("fp16 weights left")
    assert "6-bit palettes" in _checks(tmp_path, meta)["compression"]["detail"]


def test_adaptive_avg_pool3d_gets_a_converter(tmp_path):
    """coremltools 9.0 has none: a 1x1x1 output becomes reduce_mean, a dividing size an avg_pool."""
    import coremltools as ct

    register_converters()
    for size, op in ((1, "reduce_mean"), ((2, 1, 1), "avg_pool")):
        model = nn.Sequential(nn.Conv3d(3, 4, 1), nn.AdaptiveAvgPool3d(size)).eval()
        x = torch.randn(1, 3, 4, 8, 8)
        program = torch.export.export(model, (x,)).run_decompositions({})
        ml = ct.convert(program, inputs=[ct.TensorType(name="x", shape=x.shape)], convert_to="mlprogram",
                        minimum_deployment_target=ct.target.iOS17)
        ops = [o.op_type for f in ml._mil_program.functions.values() for o in f.operations]
        assert op in ops


# ---- slow: every zoo model converts and passes the structural checks ----------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_zoo_converts_and_passes_structural_checks(name, tmp_path):
    info = model_info(name)
    frames = 1 if info.stream else min(info.clip.num_frames, 16)
    meta, job_info = export_cell(name, "fp16", frames, info.preproc.crop[0], tmp_path)
    checks = _checks(tmp_path, meta)
    assert all(c["passed"] for c in checks.values()), {k: c["detail"] for k, c in checks.items()}
