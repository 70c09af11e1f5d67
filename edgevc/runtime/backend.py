"""The narrow protocol every runtime backend implements (numpy in, numpy out; never torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgevc.spec import ArtifactMeta


class Backend(Protocol):
    """One inference engine opened on one artifact.

    ``__init__(path, meta, threads, options)`` opens ``path`` (the artifact's
    ``model_file``); ``run`` takes the inputs in the artifact's order (the clip
    or frame, then the state tensors of a stream model) and returns the
    outputs in order (logits, then the new state).
    """

    name: str

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int | None = None,
                 options: dict[str, Any] | None = None) -> None: ...

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


def io_names(meta: ArtifactMeta) -> tuple[list[str], list[str]]:
    """The artifact's input and output names, in order.

    Inputs: the clip (or frame), then the state of a stream model
    (``state_0``, ...); outputs: the logits, then the new state
    (``state_0_out``, ...), as :class:`~edgevc.spec.ArtifactMeta` names them.
    """
    inputs = [meta.input_name, *(s.name for s in meta.state)]
    outputs = [meta.output_name, *(f"{s.name}_out" for s in meta.state)]
    return inputs, outputs
