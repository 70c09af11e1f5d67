"""The device side: numpy plus one backend runtime, never torch.

``load(artifact_dir)`` opens any exported artifact from its ``edgevc.json``
and returns a :class:`Model` with ``.meta`` and ``.infer(clip) -> logits``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgevc.assets import sha256_file
from edgevc.errors import EdgevcError
from edgevc.plugins import load_plugin, plugin_names
from edgevc.spec import ArtifactMeta, SpecError

BACKENDS_PACKAGE = "edgevc.runtime.backends"


def available_backends() -> list[str]:
    return plugin_names(BACKENDS_PACKAGE)


class ArtifactError(EdgevcError):
    """An artifact folder that is missing, incomplete, tampered with or inconsistent."""


class Model:
    """An opened artifact: ``infer`` for clip models, ``init_state``/``step`` for stream models."""

    def __init__(self, meta: ArtifactMeta, backend: Any, folder: Path) -> None:
        self.meta = meta
        self.backend = backend
        self.folder = folder

    def infer(self, clip: np.ndarray) -> np.ndarray:
        """Logits (N, K) for a preprocessed clip shaped like ``meta.input_shape``."""
        if self.meta.stateful:
            raise EdgevcError(f"'{self.meta.model}' is a stream model: use init_state() and step(frame, state)")
        self._check_input(clip)
        return self._check_output(self.backend.run([np.ascontiguousarray(clip, dtype=np.float32)])[0])

    def init_state(self) -> list[np.ndarray]:
        dtypes = {"float32": np.float32, "int64": np.int64}
        return [np.zeros(s.shape, dtype=dtypes[s.dtype]) for s in self.meta.state]

    def step(self, frame: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One frame (shaped like ``meta.input_shape``) through a stream model: (logits, new state)."""
        self._check_input(frame)
        out = self.backend.run([np.ascontiguousarray(frame, dtype=np.float32), *state])
        return self._check_output(out[0]), list(out[1:])

    def _check_output(self, logits: np.ndarray) -> np.ndarray:
        """K logits per clip, K = the number of labels; anything else would name the wrong classes."""
        shape, k = np.shape(logits), self.meta.num_classes
        if not shape or shape[-1] != k or int(np.prod(shape)) != k:
            raise ArtifactError(f"'{self.folder}': the model gives scores of shape {tuple(shape)}, but edgevc.json "
                                f"lists {k} labels (expected {k} scores per clip)",
                                hint="re-export the artifact; edgevc.json's labels must follow the model's outputs")
        if not np.all(np.isfinite(logits)):  # a top-k of NaN scores would be an arbitrary answer
            raise EdgevcError(f"'{self.meta.model}' gave non-finite scores ({int(np.sum(~np.isfinite(logits)))} of "
                              f"{k} are NaN or infinite)", hint="a damaged or badly quantized model can overflow: "
                              "re-export the artifact (the export verifies it against PyTorch)")
        return logits

    def _check_input(self, x: np.ndarray) -> None:
        if tuple(x.shape) != tuple(self.meta.input_shape):
            raise EdgevcError(f"input of shape {tuple(x.shape)} for '{self.meta.model}', which takes "
                              f"{tuple(self.meta.input_shape)} ({self.meta.preproc.layout})",
                              hint="preprocess frames with edgevc.sampling and the artifact's specs")


def load(artifact_dir: str | Path, threads: int | None = None, options: dict[str, Any] | None = None,
         check_files: bool = True) -> Model:
    """Open an artifact folder written by ``edgevc export``.

    Checks, before any framework sees a byte: the folder and ``edgevc.json``
    exist and validate, every file listed in ``files`` exists with its
    sha256, and the labels fit. A mismatch raises :class:`ArtifactError`.
    """
    folder = Path(artifact_dir)
    if not folder.is_dir():
        raise ArtifactError(f"artifact folder not found: '{folder}'",
                            hint="export one first: edgevc export MODEL --target openvino --out DIR")
    try:
        meta = ArtifactMeta.load(folder)
    except SpecError as err:
        raise ArtifactError(f"'{folder}' is not a valid edgevc artifact: {err.message}",
                            hint="re-export it with this edgevc version (edgevc export ...)") from None
    if check_files:
        verify_files(folder, meta)
    module = load_plugin(BACKENDS_PACKAGE, meta.target, "backend")
    try:
        backend = module.BACKEND(folder / meta.model_file, meta, threads=threads, options=options)
    except EdgevcError:
        raise
    except Exception as err:  # a damaged model file: the runtime's own error, as one message
        reason = ([x.strip() for x in str(err).splitlines() if x.strip()] or [""])[-1][:300]  # OpenVINO: last line
        raise ArtifactError(f"'{folder}': the {meta.target} runtime cannot open '{meta.model_file}': "
                            f"{type(err).__name__}: {reason}",
                            hint="the model file is damaged or not from this export; re-export the artifact") from None
    return Model(meta, backend, folder)


def verify_files(folder: Path, meta: ArtifactMeta) -> None:
    """Every file the export wrote is present and unchanged (sha256); the model file is among them."""
    if not (folder / meta.model_file).exists():
        raise ArtifactError(f"'{folder}': model file '{meta.model_file}' is missing",
                            hint="copy the whole artifact folder, or re-export it")
    if not any(name == meta.model_file or name.startswith(f"{meta.model_file}/") for name in meta.files):
        raise ArtifactError(f"'{folder}': edgevc.json lists no sha256 for the model file '{meta.model_file}', "
                            "so it cannot be checked", hint="re-export the artifact; do not edit edgevc.json")
    for name, digest in meta.files.items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"'{folder}': file '{name}' listed in edgevc.json is missing",
                                hint="copy the whole artifact folder, or re-export it")
        actual = sha256_file(path)
        if actual != digest:
            raise ArtifactError(f"'{folder}': file '{name}' has sha256 {actual[:12]}..., edgevc.json says "
                                f"{digest[:12]}... (truncated, modified or replaced)",
                                hint="re-export the artifact; do not edit its files")
