"""Every zoo model x {onnx, openvino} x {fp32, int8} at its default input: exports, runs, passes parity.

The matrix is generated from the registries (models, targets, their precisions); a cell listed as a
known gap in the target's profile (``targets/<target>-<precision>.yaml``) is expected to fail, strictly:
when the gap closes the test fails until the profile is updated. Slow: minutes per large model.
CI runs the x3d_xs and i3d_k400 cells in test_export_onnx_openvino.py.
"""

from __future__ import annotations

import pytest
from export_fixtures import export_cell  # noqa: F401  (the session fixture)

from edgevc.export.profiles import load_profile
from edgevc.models import list_models

TARGETS = ("onnx", "openvino")
PRECISIONS = ("fp32", "int8")


def _cells() -> list:
    cells = []
    for target in TARGETS:
        for precision in PRECISIONS:
            _, profile = load_profile(f"{target}-{precision}")
            for model in list_models():
                gap = profile.gap(model, precision)
                marks = [pytest.mark.slow]
                if gap:
                    marks.append(pytest.mark.xfail(reason=gap.reason, strict=True))
                cells.append(pytest.param(model, target, precision, marks=marks, id=f"{model}-{target}-{precision}"))
    return cells


@pytest.mark.parametrize(("model", "target", "precision"), _cells())
def test_zoo_cell_exports_runs_and_passes_parity(export_cell, model, target, precision):  # noqa: F811
    # 8 real clips per cell (48 for I3D's agreement figure); a known gap is judged on the export's default 32,
    # what a user's `edgevc export` sees
    gap = load_profile(f"{target}-{precision}")[1].gap(model, precision)
    clips = 48 if model == "i3d_k400" else 32 if gap else 8
    res = export_cell(model, target, precision, verify_clips=clips, random_clips=2)
    report = res.verify
    assert report is not None and report.numeric == "run"
    assert res.ok, f"{model} {target} {precision}\n{report.table()}\n{report.failures()}"
    real = next(r for r in report.rows if r.name == "artifact" and r.inputs == "real")
    if precision == "fp32":
        assert real.figures.max_abs <= 1e-4
    elif report.trained:
        assert real.figures.top1_agreement_decisive >= 0.95
