"""CoreML runtime: predictions from ``model.mlpackage`` on numpy inputs, on macOS only.

The Core ML framework exists only on Apple platforms: on Linux this backend
refuses to open (``coremltools`` converts and inspects packages there, but
"Model prediction is only supported on macOS"), and ``edgevc export``
verifies CoreML artifacts structurally instead (see
:mod:`edgevc.export.targets.coreml`). ``coremltools`` imports torch when it
is installed (for its converters); it does not need it to predict.

Options: ``compute_units`` = ``ALL`` (default) | ``CPU_ONLY`` | ``CPU_AND_GPU`` | ``CPU_AND_NE``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgevc.errors import EdgevcError, MissingDependencyError
from edgevc.runtime.backend import io_names
from edgevc.spec import ArtifactMeta


class CoremlBackend:
    """``run([clip])`` -> ``[logits]``; a stream model: ``run([frame, *state])`` -> ``[logits, *state]``."""

    name = "coreml"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int | None = None,
                 options: dict[str, Any] | None = None) -> None:
        if sys.platform != "darwin":
            raise EdgevcError(
                f"CoreML prediction needs macOS (the Core ML framework); this is {sys.platform}, where coremltools "
                "can convert and inspect '{}' but not run it".format(Path(path).name),
                hint="run the artifact on a Mac or an iPhone; here, export --target onnx, openvino or executorch "
                     "(edgevc export checks CoreML artifacts structurally on Linux)")
        try:
            import coremltools as ct
        except ImportError:
            raise MissingDependencyError("coremltools", "coreml", "running a CoreML artifact") from None
        units = str((options or {}).get("compute_units", "ALL")).upper()
        self.meta = meta
        self.inputs, self.outputs = io_names(meta)
        self.model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, units))
        self.runtime_info = {"compute_units": units, "inference_precision": meta.precision}

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self.inputs):
            raise EdgevcError(f"'{self.meta.model}' takes {len(self.inputs)} input(s), got {len(inputs)}")
        feed = {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in zip(self.inputs, inputs, strict=True)}
        out = self.model.predict(feed)
        return [np.asarray(out[n], dtype=np.float32) for n in self.outputs]


BACKEND = CoremlBackend
