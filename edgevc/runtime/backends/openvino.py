"""OpenVINO Runtime backend (``pip install 'edgevc[openvino]'``): numpy in, numpy out.

Compiled with ``PERFORMANCE_HINT=LATENCY`` and ``INFERENCE_NUM_THREADS``;
``options`` go to ``compile_model`` as they are (e.g.
``{"INFERENCE_PRECISION_HINT": "f32"}``), except ``device`` (default
``CPU``). On a CPU with bf16, OpenVINO's default inference precision is
bf16, even for an fp32 model: ``runtime_info`` says which one ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgevc.errors import EdgevcError, MissingDependencyError
from edgevc.runtime.backend import io_names
from edgevc.spec import ArtifactMeta


class OpenVINOBackend:
    name = "openvino"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int | None = None,
                 options: dict[str, Any] | None = None) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise MissingDependencyError("openvino", "openvino", "running an OpenVINO artifact") from None
        opts = dict(options or {})
        device = str(opts.pop("device", "CPU"))
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        config.update(opts)
        self.compiled = ov.Core().compile_model(str(path), device, config)
        self.request = self.compiled.create_infer_request()
        self.inputs, self.outputs = io_names(meta)
        have = sorted(n for port in self.compiled.inputs for n in port.get_names())
        if not set(self.inputs) <= set(have):
            raise EdgevcError(f"'{path}' takes inputs {have}, edgevc.json says {self.inputs}",
                              hint="re-export the artifact")
        self._out_ports = [self.compiled.output(n) for n in self.outputs]
        self.runtime_info = {"device": device, "openvino": ov.get_version(),
                             "inference_precision": _type_name(self.compiled.get_property("INFERENCE_PRECISION_HINT")),
                             "threads": self.compiled.get_property("INFERENCE_NUM_THREADS")}

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        res = self.request.infer(dict(zip(self.inputs, inputs, strict=True)))
        return [np.array(res[p], copy=True) for p in self._out_ports]


def _type_name(t: Any) -> str:
    """``<Type: 'bfloat16'>`` -> ``bf16``."""
    name = t.get_type_name() if hasattr(t, "get_type_name") else str(t)
    return {"bf16": "bf16", "f32": "f32", "f16": "f16"}.get(name, name)


BACKEND = OpenVINOBackend
