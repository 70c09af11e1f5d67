"""ONNX Runtime backend (``pip install 'edgevc[onnx]'``): numpy in, numpy out.

Options: ``providers`` (default ``["CPUExecutionProvider"]``, e.g.
``["TensorrtExecutionProvider", "CUDAExecutionProvider"]`` on a Jetson) and
``graph_optimization_level`` (``disable`` | ``basic`` | ``extended`` | ``all``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgevc.errors import EdgevcError, MissingDependencyError
from edgevc.runtime.backend import io_names
from edgevc.spec import ArtifactMeta

_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
           "all": "ORT_ENABLE_ALL"}


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int | None = None,
                 options: dict[str, Any] | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("onnxruntime", "onnx", "running an ONNX artifact") from None
        opts = dict(options or {})
        providers = list(opts.pop("providers", ["CPUExecutionProvider"]))
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = int(threads)
            so.inter_op_num_threads = 1
        level = opts.pop("graph_optimization_level", None)
        if level is not None:
            if level not in _LEVELS:
                raise EdgevcError(f"onnx graph_optimization_level '{level}'", hint=f"one of {', '.join(_LEVELS)}")
            so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[level])
        if opts:
            raise EdgevcError(f"unknown onnx runtime options: {', '.join(opts)}",
                              hint="onnx takes: providers, graph_optimization_level")
        self.session = ort.InferenceSession(str(path), so, providers=providers)
        self.inputs, self.outputs = io_names(meta)
        have = [i.name for i in self.session.get_inputs()]
        if sorted(have) != sorted(self.inputs):
            raise EdgevcError(f"'{path}' takes inputs {have}, edgevc.json says {self.inputs}",
                              hint="re-export the artifact")
        self.runtime_info = {"providers": self.session.get_providers(), "onnxruntime": ort.__version__,
                             "threads": threads}

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.outputs, dict(zip(self.inputs, inputs, strict=True)))


BACKEND = OnnxBackend
