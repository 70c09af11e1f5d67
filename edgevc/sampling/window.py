"""The streaming window: a ring buffer sized to one clip span, emitting a clip every ``hop`` frames.

It stores whatever it is given (raw frames, or frames already preprocessed
once on arrival, which is what the device runtime does: overlapping clips
then cost no second resize). The clips it emits are exactly
:func:`~edgevc.sampling.indices.stream_clips` of the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgevc.sampling.indices import window_offsets
from edgevc.spec import ClipSpec


@dataclass(frozen=True)
class WindowClip:
    """A clip the window emitted: its items stacked on axis 0, and the source indices they came from."""

    items: np.ndarray
    indices: np.ndarray

    @property
    def first(self) -> int:
        return int(self.indices.min())

    @property
    def last(self) -> int:
        return int(self.indices.max())


class StreamingWindow:
    """Feed frames one at a time with :meth:`push`; a clip comes out every ``hop`` frames.

    The first clip is emitted when ``span`` frames have arrived (window
    ``[0, span)``), then at every ``hop`` frames (window ``[k*hop, k*hop + span)``).
    :meth:`flush` at the end of a stream shorter than one span emits the one
    clamped clip an offline reader would take, so no video goes unclassified.
    """

    def __init__(self, spec: ClipSpec, hop: int | None = None) -> None:
        self.spec = spec
        self.span = spec.span
        self.hop = spec.stream_hop if hop is None else int(hop)
        if self.hop < 1:
            raise ValueError(f"hop must be >= 1, got {self.hop}")
        self.offsets = window_offsets(spec)
        self._buf: list[Any] = [None] * self.span
        self.count = 0
        self.emitted = 0

    def set_hop(self, hop: int) -> None:
        """Change the hop; the next clip comes ``hop`` frames after the last one."""
        if hop < 1:
            raise ValueError(f"hop must be >= 1, got {hop}")
        self.hop = int(hop)

    def push(self, item: Any) -> WindowClip | None:
        self._buf[self.count % self.span] = item
        self.count += 1
        start = self.count - self.span
        if start < 0:
            return None
        if self.emitted == 0:
            due = start == 0
        else:
            due = start - self._last_start >= self.hop
        if not due:
            return None
        self._last_start = start
        self.emitted += 1
        idx = start + self.offsets
        return WindowClip(np.stack([self._buf[i % self.span] for i in idx]), idx)

    def flush(self) -> WindowClip | None:
        """At the end of a stream that never filled one window: the clamped clip, else None."""
        if self.emitted or self.count == 0:
            return None
        self.emitted += 1
        idx = np.minimum(self.offsets, self.count - 1)
        return WindowClip(np.stack([self._buf[i] for i in idx]), idx)

    def reset(self) -> None:
        self._buf = [None] * self.span
        self.count = 0
        self.emitted = 0
