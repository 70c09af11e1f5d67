"""Stateful stream export: the graph is ``forward_step`` with the state as explicit inputs and outputs.

A stream model (``ModelInfo.stream``: MoViNet stream, online TSM) has
``init_state(batch, input_size)`` and a pure ``forward_step(frame, state)``.
Exporters take a module whose ``forward`` has a flat signature, so
:class:`StepModule` exposes ``forward(frame, *state) -> (logits, *new_state)``.
Names follow :class:`edgevc.spec.ArtifactMeta`: inputs ``frame``,
``state_0`` .. ``state_{n-1}``; outputs ``logits``, ``state_0_out`` ...;
the frame is ``(1, 3, 1, H, W)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgevc.runtime.backend import io_names  # noqa: F401  (re-exported: the names targets use)
from edgevc.spec import ArtifactMeta, TensorSpec


class StepModule(nn.Module):
    """``forward(frame, *state) -> (logits, *new_state)`` around a stream model's ``forward_step``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, new = self.model.forward_step(frame, list(state))
        return (logits, *new)


def state_specs(model: nn.Module, size: tuple[int, int]) -> tuple[TensorSpec, ...]:
    """The state inputs ``state_i`` of a stream model at frame size (H, W), in order."""
    return tuple(TensorSpec(f"state_{i}", tuple(int(d) for d in s.shape), "float32")
                 for i, s in enumerate(model.init_state(1, input_size=size)))


def accumulating_states(model: nn.Module, clip: np.ndarray, ratio: float = 1.5) -> list[int]:
    """Indices of the states that grow with time (frame counters, running sums), found by running a clip twice.

    Fed the same T frames twice in a row, a bounded state (a causal-conv
    buffer, a shift buffer) ends near where it was after the first pass,
    while an accumulator doubles. int8 must not quantize an accumulator:
    calibration would fix its range to what a short clip reaches, and a
    longer stream would be clamped (MoViNet's frame count stuck at the
    calibration length). Example: MoViNet-A0 stream -> [0, 1, 3, 5, ...]
    (``frame_count`` and every ``*.pool.sum``), online TSM -> [].
    """
    from edgevc.export.calib import split_frames

    frames = split_frames(clip)
    state = model.init_state(1, input_size=tuple(clip.shape[-2:]))
    peaks = []
    with torch.no_grad():
        for _ in range(2):
            for frame in frames:
                _, state = model.forward_step(torch.from_numpy(frame), state)
            peaks.append([float(s.abs().max()) if s.numel() else 0.0 for s in state])
    return [i for i, (a, b) in enumerate(zip(*peaks, strict=True)) if b > ratio * a + 1e-6]


def zero_state(meta: ArtifactMeta) -> list[torch.Tensor]:
    return [torch.zeros(s.shape, dtype=torch.float32) for s in meta.state]
