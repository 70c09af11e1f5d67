"""ExecuTorch runtime: run ``model.pte`` (XNNPACK delegate, fp32 or int8) on numpy inputs.

Torch on the device: the ``executorch`` 1.5.1 pip wheel's Python bindings
(``executorch.extension.pybindings._C``) link ``libtorch_python.so`` and take
and return ``torch.Tensor`` only (numpy arrays are refused), and
``executorch.runtime`` imports ``torch`` itself. So with the pip wheel this
backend needs torch installed at run time; it converts with
``torch.from_numpy`` / ``.numpy()`` (no copies) and never imports torch
before a model is opened, so ``import edgevc.runtime`` stays torch-free.
It loads the bindings' extension module directly: ``executorch.runtime`` and
``portable_lib`` also import ``executorch.exir`` (the export stack and
torchao), about 5 s instead of 1 s. A torch-free deployment runs the same
``.pte`` with ExecuTorch's C++ runtime (``Module`` API) or its Android/iOS
bindings; edgevc's numpy pre/post-processing is unchanged there.

``threads`` sets ExecuTorch's shared thread pool (process-wide).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgevc.errors import EdgevcError, MissingDependencyError
from edgevc.spec import ArtifactMeta


def _bindings() -> Any:
    """The ExecuTorch pybindings module (the fast direct path, else the public wrapper)."""
    try:
        import torch  # noqa: F401  -- must be loaded first: the bindings link libtorch
    except ImportError:
        raise MissingDependencyError("torch", "torch", "the ExecuTorch pip runtime (its bindings link libtorch)") \
            from None
    try:
        from executorch.extension.pybindings import _C as bindings
    except ImportError:
        try:
            from executorch.extension.pybindings import portable_lib as bindings
        except ImportError:
            raise MissingDependencyError("executorch", "executorch", "running an ExecuTorch artifact") from None
    return bindings


def load_method(path: str | Path, precision: str = "fp32", threads: int | None = None) -> Any:
    """The program's ``forward``, loaded (XNNPACK initialises its subgraphs here)."""
    bindings = _bindings()
    if precision == "int8":  # quantize/dequantize kernels for q/dq ops left outside the delegate
        import executorch.kernels.quantized  # noqa: F401
    if threads:
        bindings._unsafe_reset_threadpool(int(threads))
    return bindings._load_for_executorch(str(path))


def run_method(module: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    import torch

    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]
    return [o.numpy() for o in module.forward(tensors)]


class ExecutorchBackend:
    """``run([clip])`` -> ``[logits]``; a stream model: ``run([frame, *state])`` -> ``[logits, *state]``."""

    name = "executorch"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int | None = None,
                 options: dict[str, Any] | None = None) -> None:
        self.meta = meta
        self.path = Path(path)
        try:
            self._module = load_method(self.path, meta.precision, threads)
        except (MissingDependencyError, ImportError):
            raise
        except Exception as err:  # noqa: BLE001 -- the runtime raises RuntimeError with an error code
            raise EdgevcError(f"ExecuTorch cannot load '{self.path}': {str(err).strip()[:300]}",
                              hint="re-export it with this edgevc/executorch version (edgevc export ... "
                                   "--target executorch)") from None
        self.num_inputs = 1 + len(meta.state)
        self.runtime_info = {"inference_precision": meta.precision, "delegate": "XNNPACK",
                             "threads": _bindings()._threadpool_get_thread_count()}

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != self.num_inputs:
            raise EdgevcError(f"'{self.meta.model}' takes {self.num_inputs} input(s), got {len(inputs)}")
        arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in inputs]
        return run_method(self._module, arrays)


BACKEND = ExecutorchBackend
