"""The narrow protocol every export target implements, and what it is given."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edgevc.spec import ArtifactMeta

if TYPE_CHECKING:  # torch stays out of `edgevc targets` and the CLI's start-up
    import numpy as np
    import torch
    from torch import nn


@dataclass
class ExportJob:
    """Everything a target needs for one export.

    ``meta`` is the final metadata except ``files`` (filled by the driver
    after the target wrote them, since embedding changes the bytes): the
    target embeds ``meta.to_json()`` wherever its format allows.
    ``calib`` yields preprocessed inputs cut from real video (for int8): one
    item per model call, a clip array for a clip model, or a tuple
    ``(frame, *state)`` for a stream model (whose ``model`` is then the
    :class:`~edgevc.export.stream.StepModule` and ``example`` is
    ``(frame, *zero_state)``; names come from ``edgevc.export.stream``).
    ``options`` are the device profile's ``export_options`` plus ``threads``
    and, for an int8 stream model, ``float_inputs``: the state inputs that
    accumulate over time (frame counters, running sums), whose paths must
    stay in float (see :func:`edgevc.export.stream.accumulating_states`). ``info`` is
    where a target records what it measured (delegation share, int8 speed
    vs fp32...): the driver prints it and writes it to ``verify.json``.
    """

    model: nn.Module
    example: tuple[torch.Tensor, ...]
    meta: ArtifactMeta
    out_dir: Path
    precision: str
    calib: Callable[[], Iterable[np.ndarray]] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class ExportTarget(Protocol):
    """``name`` (= module name = runtime backend), the precisions it writes, and ``export``.

    ``export`` writes the model file(s) into ``job.out_dir`` and returns the
    name of the file (or folder) the runtime opens.

    Two optional members, for a target whose artifacts cannot execute on
    every machine (CoreML on Linux), read by the driver's verification:

    - ``cannot_run() -> str | None``: why this machine cannot execute the
      artifact, or None. Numeric parity is then reported as NOT RUN (never
      as passed).
    - ``structural_checks(folder, meta) -> list[dict]``: checks that need no
      execution (reload, input/output names and shapes, op histogram...),
      each ``{"check": str, "passed": bool, "detail": str}``.
    """

    name: str
    precisions: tuple[str, ...]
    requires: tuple[tuple[str, str], ...]  # (python module, pip extra) pairs

    def export(self, job: ExportJob) -> str: ...
