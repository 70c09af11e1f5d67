"""ExecuTorch (XNNPACK) export: the .pte executes, matches PyTorch, and reports its delegation.

CI cells: x3d_xs (its own 4x160² clip) in fp32 (its int8 cell is slow) and
i3d_k400 (real weights, 16x112² instead of 32x224² to keep lowering and
calibration within CI time) in fp32 and int8; each is exported once per module and several tests read it. The
whole zoo x {fp32, int8} runs through ``edgevc export``'s driver (export +
verification against the device profile) and is marked slow, as is I3D's
int8 top-1 agreement at its real 32x224² clip.

Random-init models get their BatchNorm statistics from real clips first
(``calibrate_bn``), so parity figures are not vacuous; int8 calibrates on
real video (the clips the driver would use), never on noise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from edgevc.assets import sha256_file
from edgevc.export.base import ExportJob
from edgevc.export.calib import RealClips, calibrate_bn, split_frames
from edgevc.export.profiles import resolve
from edgevc.export.stream import StepModule, state_specs
from edgevc.export.verify import compare
from edgevc.models import create, list_models, model_info
from edgevc.models.labels import numbered
from edgevc.runtime import load
from edgevc.spec import AggSpec, ArtifactMeta

pytest.importorskip("executorch")

from edgevc.export.targets.executorch import (  # noqa: E402
    DELEGATION_FILE,
    MODEL_FILE,
    TARGET,
    ExecutionError,
    execute_once,
    lower,
)

DELEGATION_MODELS = ("x3d_s", "r2plus1d_18", "tsm_mobilenet_v2", "movinet_a0")


@dataclass
class Cell:
    """One exported artifact and the torch model it came from."""

    name: str
    precision: str
    model: Any
    meta: ArtifactMeta
    folder: Path
    info: dict[str, Any]
    trained: bool

    def report(self) -> dict[str, Any]:
        return json.loads((self.folder / DELEGATION_FILE).read_text())


def _stream_items(model: Any, clips: list[np.ndarray]):
    with torch.no_grad():
        for clip in clips:
            state = model.init_state(1, input_size=tuple(clip.shape[-2:]))
            for frame in split_frames(clip):
                yield (frame, *(s.numpy() for s in state))
                _, state = model.forward_step(torch.from_numpy(frame), state)


def export_cell(name: str, precision: str, frames: int, size: int, folder: Path, calib: int = 8) -> Cell:
    """Export ``name`` with the executorch target and write ``edgevc.json`` as the driver does."""
    info = model_info(name)
    clip = info.clip.replace(num_frames=frames)
    preproc = info.preproc.replace(crop=(size, size), resize_short=size if info.preproc.resize_short else None)
    torch.manual_seed(0)
    trained = info.weights is not None
    model = create(name, pretrained=trained)
    clips = list(RealClips(clip, preproc, calib, phase=0.0))
    if not trained:
        calibrate_bn(model, clips)
    model.eval()
    stream = info.stream
    shape = (1, 3, 1 if stream else frames, size, size)
    meta = ArtifactMeta(
        model=name, labels=numbered(info.num_classes), clip=clip, preproc=preproc, agg=AggSpec(),
        input_name="frame" if stream else "clip", input_shape=shape, output_name="logits", params=0,
        macs_per_clip=0, precision=precision, target="executorch", model_file="model",
        state=state_specs(model, (size, size)) if stream else ())
    x = torch.from_numpy(clips[0][:, :, :1] if stream else clips[0])
    job_model, example = (StepModule(model).eval(), (x, *model.init_state(1, (size, size)))) if stream \
        else (model, (x,))
    calib_fn = (lambda: _stream_items(model, clips[:2])) if stream else (lambda: iter(clips))
    job = ExportJob(job_model, example, meta, folder, precision, calib=calib_fn, options={"threads": 2})
    model_file = TARGET.export(job)
    files = {p.name: sha256_file(p) for p in folder.iterdir() if p.is_file()}
    meta = meta.replace(model_file=model_file, files=files)
    meta.save(folder)
    return Cell(name, precision, model, meta, folder, job.info, trained)


def figures(cell: Cell, count: int = 4) -> Any:
    """Parity of the artifact (opened with edgevc.runtime.load) vs torch fp32 on real clips."""
    artifact = load(cell.folder, threads=2)
    clips = list(RealClips(cell.meta.clip, cell.meta.preproc, count, phase=0.5))
    ref, got = [], []
    with torch.no_grad():
        for clip in clips:
            ref.append(cell.model(torch.from_numpy(clip)).numpy())
            got.append(artifact.infer(clip))
    return compare(np.concatenate(ref), np.concatenate(got))


def _cell_fixture(name: str, precision: str, frames: int, size: int):
    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory):
        return export_cell(name, precision, frames, size, tmp_path_factory.mktemp(f"{name}-{precision}"))

    return fixture


x3d_fp32 = _cell_fixture("x3d_xs", "fp32", 4, 160)
x3d_int8 = _cell_fixture("x3d_xs", "int8", 4, 160)
i3d_fp32 = _cell_fixture("i3d_k400", "fp32", 16, 112)
i3d_int8 = _cell_fixture("i3d_k400", "int8", 16, 112)


# ---- CI: x3d_xs and i3d_k400, fp32 and int8 ---------------------------------------------------
# x3d_xs int8 is slow-marked: lowering its quantized graph (1884 delegated nodes) takes over 2 minutes on
# 2 cores, in ExecuTorch's Python passes; CI runs the int8 path on I3D (trained weights) and x3d_xs in fp32.
X3D_INT8 = pytest.param("x3d_int8", marks=pytest.mark.slow)

@pytest.mark.parametrize("cell_name", ["x3d_fp32", "i3d_fp32"])
def test_fp32_pte_matches_pytorch_within_the_profile_tolerance(cell_name, request):
    cell = request.getfixturevalue(cell_name)
    """max_abs scales with the logits: I3D's reach 34 here, and PyTorch's own fp32 result differs from
    float64 by ~5e-5 on them (XNNPACK's by ~1.3e-4 from PyTorch's), so 1e-4 absolute is below fp32 noise."""
    limits = resolve("executorch", "fp32").profile.limits(cell.trained, "real")
    fig = figures(cell)
    scale = max(fig.ref_abs_max, 1.0)
    assert fig.ref_abs_max > 0.05, "vacuous: the reference logits are ~0"
    assert fig.max_abs <= limits.max_abs * scale, f"max abs {fig.max_abs:.2e} (logits up to {fig.ref_abs_max:.1f})"
    assert fig.rel_l2 <= limits.rel_l2, f"rel L2 {fig.rel_l2:.2e}"
    assert fig.top1_agreement == 1.0


@pytest.mark.parametrize("cell_name", ["x3d_fp32", X3D_INT8, "i3d_fp32", "i3d_int8"])
def test_every_pte_was_executed_once_at_export_and_its_delegation_recorded(cell_name, request):
    cell = request.getfixturevalue(cell_name)
    report = cell.report()
    assert report["executed"]["ok"] and report["executed"]["outputs"] == [[1, 400]]
    assert report["subgraphs"] == 1  # one XNNPACK partition: nothing splits the graph
    assert report["compute_share"] >= 0.9 and report["share"] >= 0.9
    # only the shared zero blocks of the temporal padding and the delegate's output unpacking stay outside
    assert set(report["not_delegated"]) <= {"aten_full_default", "getitem"}
    assert report["not_delegated_at"] == []
    assert cell.info["delegation"]["compute_share"] == report["compute_share"]
    assert "XNNPACK runs" in cell.info["delegation"]["answer"]
    assert report["rewrite"], "the 3D -> 2D rewrite recorded nothing"
    assert set(cell.meta.files) == {MODEL_FILE, DELEGATION_FILE}


def test_x3d_fp32_delegates_every_compute_node(x3d_fp32):
    report = x3d_fp32.report()
    assert report["compute_delegated"] == report["compute_nodes"]
    assert report["rewrite"]["conv3d 3x3x3 depthwise"] == 26 and report["rewrite"]["batch_norm folded"] == 83


@pytest.mark.parametrize("cell_name", [X3D_INT8, "i3d_int8"])
def test_int8_pte_matches_its_pt2e_reference_and_is_4x_smaller(cell_name, request):
    cell = request.getfixturevalue(cell_name)
    executed = cell.report()["executed"]
    assert executed["reference"] == "the PT2E int8 torch model"
    fp32 = {"x3d_int8": "x3d_fp32", "i3d_int8": "i3d_fp32"}[cell_name]
    fp32_size = (request.getfixturevalue(fp32).folder / MODEL_FILE).stat().st_size
    assert (cell.folder / MODEL_FILE).stat().st_size < 0.3 * fp32_size


def test_i3d_int8_keeps_the_pretrained_answers(i3d_int8):
    """Real weights at a reduced 16x112² clip: the profile's rel-L2 limit, most top-1 answers kept.

    The profile's top-1 limit (95 %) is for the model's real 32x224² clip
    (slow test below); at 112² the fp32 model is less sure of itself and
    int8 rounding flips more near-ties.
    """
    limits = resolve("executorch", "int8").profile.limits(True, "real")
    fig = figures(i3d_int8, count=8)
    assert fig.rel_l2 <= limits.rel_l2, f"rel L2 {fig.rel_l2:.3f}"
    assert fig.top1_agreement >= 0.75 and fig.top5_agreement >= 0.95


@pytest.mark.slow
def test_x3d_int8_random_init_within_the_untrained_limit(x3d_int8):
    limits = resolve("executorch", "int8").profile.limits(False, "real")
    fig = figures(x3d_int8)
    assert fig.rel_l2 <= limits.rel_l2, f"rel L2 {fig.rel_l2:.3f}"


def test_runtime_backend_gives_the_same_logits_as_the_export_check(x3d_fp32):
    artifact = load(x3d_fp32.folder)
    clip = next(iter(RealClips(x3d_fp32.meta.clip, x3d_fp32.meta.preproc, 1, phase=0.5)))
    first, second = artifact.infer(clip), artifact.infer(clip)
    assert first.shape == (1, 400) and np.array_equal(first, second)
    assert artifact.backend.runtime_info["delegate"] == "XNNPACK"


def test_backend_module_imports_without_torch_and_opens_without_the_export_stack(x3d_fp32):
    code = ("import sys; import edgevc.runtime.backends.executorch as b; print('torch' in sys.modules); "
            f"import edgevc.runtime as r; m = r.load({str(x3d_fp32.folder)!r}); "
            "print('torch' in sys.modules, 'executorch.exir' in sys.modules, 'torchao' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-800:]
    before, after = out.stdout.split()[-4], out.stdout.split()[-3:]
    assert before == "False"
    # documented gap: the pip wheel's bindings link libtorch, so opening a .pte imports torch (not exir/torchao)
    assert after == ["True", "False", "False"]


def test_a_pte_that_lowers_but_cannot_execute_is_refused_with_the_op(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3, padding=1), torch.nn.ReLU()).eval()
    x = torch.randn(1, 3, 4, 16, 16)
    edge, report = lower(torch.export.export(model, (x,)))  # no rewrite: Conv3d stays 5-D
    path = tmp_path / MODEL_FILE
    path.write_bytes(edge.to_executorch().buffer)
    with pytest.raises(ExecutionError) as err:
        execute_once(path, (x,), model, "fp32", 1, report["not_delegated_at"])
    assert "convolution" in str(err.value) and "0 (Conv3d)" in str(err.value)
    assert "--target openvino" in err.value.hint


# ---- slow: the zoo through the driver, I3D int8 at its real clip -------------------------------

def _matrix() -> list[Any]:
    return [pytest.param(n, p, marks=pytest.mark.slow, id=f"{n}-{p}") for n in list_models() for p in ("fp32", "int8")]


@pytest.mark.parametrize("name,precision", _matrix())
def test_zoo_exports_runs_and_passes_parity(name, precision, tmp_path):
    from edgevc.export.driver import export_model

    profile = resolve("executorch", precision).profile
    gap = profile.gap(name, precision)
    frames = None if name.startswith("i3d") else min(model_info(name).clip.num_frames, 16)
    result = export_model(name, "executorch", precision, frames=frames, out=tmp_path / "a", log=None,
                          verify_clips=32 if name.startswith("i3d") else 8)
    if gap and result.ok:
        pytest.fail(f"known gap closed ({gap.reason}): remove it from targets/executorch-{precision}.yaml")
    if gap:
        pytest.xfail(f"known gap: {gap.reason}")
    assert result.ok, result.verify.failures()
    delegation = result.info["delegation"]
    if name in DELEGATION_MODELS:
        assert delegation["compute_share"] >= 0.9, delegation["answer"]
    assert delegation["subgraphs"] >= 1
