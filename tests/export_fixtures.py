"""A session cache of exports for the export tests (import the fixture into a test module to use it).

``export_cell(model, target, precision, **kw)`` runs :func:`edgevc.export.driver.export_model` once per
distinct request in the session and returns the :class:`ExportResult` (its ``verify`` report included).

CI sizes: I3D at 32x224² costs about a second per PyTorch forward on 2 cores, so CI cells use fewer
verification and calibration clips (``CI_CLIPS``); the slow acceptance tests use the full 32.
"""

from __future__ import annotations

import pytest

# real clips to verify on / to calibrate int8 on, in CI
CI_CLIPS = {"verify_clips": 4, "random_clips": 2, "calib_clips": 8}
# plain NNCF PTQ (the profile's accuracy control off): what CI fixtures export, since accuracy control costs
# about 2 minutes per I3D export; test_export_from_run checks accuracy control on a trained tiny model in CI,
# the slow acceptance tests run the profile as it is
PLAIN_PTQ = {"accuracy_control_rel_l2": None}
I3D_CI = {"verify_sources": ["kinetics/arm_wrestling.mp4"], "verify_clips": 4, "random_clips": 1}
# x3d_xs int8 calibrates on the profile's 32 clips: a random-init X3D is chaotic (onnxruntime's own graph
# optimisations move its int8 logits by 0.28-0.37 relative L2 on the same QDQ file), and with 8 calibration
# clips its ONNX int8 logits were 1.28 away from PyTorch's (0.72 with 32; the untrained limit is 0.8).
CI_MODELS = {"x3d_xs": {"calib_clips": 32}, "i3d_k400": {**I3D_CI, "export_options": PLAIN_PTQ}}


def ci_kwargs(model: str) -> dict:
    """The export keywords of ``model``'s CI cells (the same request shares one export across modules)."""
    return {**CI_CLIPS, **CI_MODELS[model]}


def _key(model: str, target: str, precision: str, kw: dict) -> tuple:
    def frozen(v):
        return tuple(v) if isinstance(v, list) else tuple(sorted(v.items())) if isinstance(v, dict) else v

    return (model, target, precision, *sorted((k, frozen(v)) for k, v in kw.items()))


@pytest.fixture(scope="session")
def export_cell(tmp_path_factory):
    from edgevc.export.driver import export_model

    root = tmp_path_factory.mktemp("exports")
    made: dict[tuple, object] = {}

    def get(model: str, target: str, precision: str, **kw):
        key = _key(model, target, precision, kw)
        if key not in made:
            out = root / f"{model}-{target}-{precision}-{len(made)}"
            made[key] = export_model(model, target, precision, out=out, threads=2, log=None, **kw)
        return made[key]

    return get
