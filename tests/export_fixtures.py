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


def _key(model: str, target: str, precision: str, kw: dict) -> tuple:
    return (model, target, precision, *sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kw.items()))


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
