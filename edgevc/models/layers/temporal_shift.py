"""Temporal shift: move a fraction of the channels one frame along time (zero parameters, zero MACs).

From "TSM: Temporal Shift Module for Efficient Video Understanding" (Lin, Gan,
Han, ICCV 2019, arXiv:1811.08383). Frames are batched as ``(N*T, C, H, W)``
(frame ``t`` of clip ``n`` at row ``n*T + t``); ``fold = C // fold_div``.

- **Bidirectional** (offline, Fig. 1b): channels ``[0, fold)`` of frame ``t``
  come from frame ``t+1``, channels ``[fold, 2*fold)`` from frame ``t-1``, the
  rest stay; zeros where the neighbour is outside the clip.
- **Causal** (online, Fig. 1c, as the authors' ``online_demo``): channels
  ``[0, fold)`` of frame ``t`` come from frame ``t-1`` (zeros at ``t = 0``).
  Run frame by frame, the state is the previous frame's first ``fold``
  channels: :func:`shift_step` takes it and returns the next one.

Example, ``C = 8`` channels, ``fold_div = 8`` (fold 1), ``T = 3``, channel
values ``x[t, c] = 10*t + c``::

    bidirectional, channel 0: [10, 20, 0]   channel 1: [0, 1, 11]   channel 2: [2, 12, 22]
    causal,        channel 0: [0, 0, 10]    channel 1: [1, 11, 21]

Everything is slicing and ``torch.cat`` (no in-place writes, no index_put),
so it exports to ONNX / ExecuTorch / OpenVINO unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def shift_fold(channels: int, fold_div: int = 8) -> int:
    """Channels moved in each direction: ``channels // fold_div`` (3 of 24, 20 of 160)."""
    return channels // fold_div


def temporal_shift(x: torch.Tensor, num_frames: int, fold_div: int = 8) -> torch.Tensor:
    """Bidirectional shift of ``x`` ``(N*T, C, H, W)`` with ``T = num_frames`` (TSM offline)."""
    nt, c, h, w = x.shape
    fold = shift_fold(c, fold_div)
    v = x.reshape(-1, num_frames, c, h, w)
    first, second = v[:, :, :fold], v[:, :, fold:2 * fold]
    from_next = torch.cat([first[:, 1:], torch.zeros_like(first[:, :1])], dim=1)
    from_prev = torch.cat([torch.zeros_like(second[:, :1]), second[:, :-1]], dim=1)
    return torch.cat([from_next, from_prev, v[:, :, 2 * fold:]], dim=2).reshape(nt, c, h, w)


def causal_temporal_shift(x: torch.Tensor, num_frames: int, fold_div: int = 8) -> torch.Tensor:
    """Uni-directional shift from the past of ``x`` ``(N*T, C, H, W)`` (TSM online, zero state at t=0)."""
    nt, c, h, w = x.shape
    fold = shift_fold(c, fold_div)
    v = x.reshape(-1, num_frames, c, h, w)
    first = v[:, :, :fold]
    from_prev = torch.cat([torch.zeros_like(first[:, :1]), first[:, :-1]], dim=1)
    return torch.cat([from_prev, v[:, :, fold:]], dim=2).reshape(nt, c, h, w)


def shift_step(x: torch.Tensor, state: torch.Tensor, fold_div: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame of the causal shift: ``x`` ``(N, C, H, W)``, ``state`` ``(N, fold, H, W)``.

    Returns ``(shifted, new_state)``: ``shifted`` is ``x`` with its first
    ``fold`` channels replaced by ``state`` (the previous frame's), and
    ``new_state`` is this frame's first ``fold`` channels. Pure: nothing is
    written in place, so the state is an explicit input and output of an
    exported graph.
    """
    fold = shift_fold(x.shape[1], fold_div)
    return torch.cat([state, x[:, fold:]], dim=1), x[:, :fold]


class TemporalShift(nn.Module):
    """The shift as a module (no parameters, no buffers): ``forward(x, num_frames)``, ``step(x, state)``.

    ``causal=False`` is the offline bidirectional shift; ``causal=True`` the
    online one, whose ``step`` runs it one frame at a time.
    """

    def __init__(self, fold_div: int = 8, causal: bool = False) -> None:
        super().__init__()
        if fold_div < 2:
            raise ValueError(f"fold_div must be >= 2 (1/fold_div of the channels move), got {fold_div}")
        self.fold_div = fold_div
        self.causal = causal

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        if self.causal:
            return causal_temporal_shift(x, num_frames, self.fold_div)
        return temporal_shift(x, num_frames, self.fold_div)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.causal:
            raise RuntimeError("the bidirectional shift reads the next frame and cannot run frame by frame")
        return shift_step(x, state, self.fold_div)

    def extra_repr(self) -> str:
        return f"fold_div={self.fold_div}, causal={self.causal}"
