"""Streaming classification: frames with timestamps in, one decision per clip out.

:class:`StreamingClassifier` runs, on the device, the same numpy code that
sampled and preprocessed the training clips, with every constant read from
the artifact's metadata (never re-typed):

1. **Timestamps -> the model's fps.** With ``meta.clip.fps`` set, each frame
   goes through :class:`~edgevc.sampling.FpsResampler`, which says how many
   slots of the model's constant-fps grid it fills (0: dropped, 2: shown
   twice). A 30 fps camera feeding a 25 fps model adapts; without ``fps`` a
   frame is one slot.
2. **Preprocess once, on arrival.** A slot that some clip will use is
   preprocessed (:func:`~edgevc.sampling.preprocess_frame`) when it arrives
   and cached by slot number, so overlapping clips share the work and slots
   no clip uses are never resized (x3d_xs takes 4 frames 12 apart every 18
   slots: about one slot in 6).
3. **Clips.** A :class:`~edgevc.sampling.StreamingWindow` over slot numbers
   (``meta.clip``, ``hop``) schedules the clips: exactly the clips
   :func:`~edgevc.sampling.stream_clips` gives offline. Each is assembled
   (:func:`~edgevc.sampling.assemble`), run (``model.infer``) and aggregated
   (:class:`~edgevc.sampling.Aggregator` with ``meta.agg``).
4. **Decision.** Top-k labels and scores, the frame range ``[first, last]``
   in SOURCE frame indices (as the source numbered them, before
   resampling), their timestamps, and the latency.

**Stateful stream models** (``meta.state`` non-empty: MoViNet stream,
online TSM) never re-run a clip. The frames fed to the model are the slots
at the clip's stride (``slot % stride == 0``: the frames a strided clip of
that spec is made of when ``hop`` is a multiple of ``stride``); each goes
through ``model.step`` once, carrying the state. Decisions come on the
same schedule as a clip model of the same spec (the window ``[k*hop,
k*hop + span)``: first when ``span`` slots have arrived, then every ``hop``
slots), and a decision's logits are the step logits of the latest fed
frame: the model's own answer after everything it has seen (MoViNet:
equal to its clip form over all frames so far; online TSM: that frame's
logits, which ``meta.agg`` then averages like clip scores). ``hop``
therefore only sets how often a decision is reported; the compute is one
step per fed frame whatever the hop. A decision's ``frames`` are the
window's, although the state also carries older frames.

Torch-free: numpy plus the backend of the artifact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgevc.errors import EdgevcError
from edgevc.runtime.stats import StreamCounters
from edgevc.sampling import (
    Aggregator,
    FpsResampler,
    Prediction,
    StreamingWindow,
    WindowClip,
    assemble,
    preprocess_frame,
    topk,
    window_offsets,
)


@dataclass(frozen=True)
class Decision:
    """One decision: top-k, the source frames and times it covers, and how long it took.

    ``latency_ms`` runs from the arrival of the frame that completed the clip
    (its ``push``, or its capture time in live mode) to the decision.
    ``indices`` are the source indices of the clip's frames; ``scores`` the
    aggregated scores and ``logits`` the model's raw output for this clip.
    """

    index: int
    frames: tuple[int, int]
    t: tuple[float, float]
    topk: tuple[Prediction, ...]
    latency_ms: float
    indices: tuple[int, ...] = field(repr=False)
    scores: np.ndarray = field(repr=False, compare=False)
    logits: np.ndarray = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        return self.topk[0].label

    def to_dict(self) -> dict[str, Any]:
        """The JSON line ``edgevc run --json`` prints for this decision."""
        return {"frames": list(self.frames), "t": [round(self.t[0], 4), round(self.t[1], 4)],
                "topk": [p.to_dict() for p in self.topk], "latency_ms": round(self.latency_ms, 3)}


class StreamingClassifier:
    """Feed frames one at a time with :meth:`push`; call :meth:`flush` at the end of the stream.

    ``hop`` (slots on the model's fps grid; default ``meta.clip.stream_hop``)
    and ``k`` (default ``meta.agg.topk``) are the only knobs; everything else
    comes from ``model.meta``. ``newest_only`` (live mode): when one frame
    completes several clips at once (a frame after a long gap fills many
    slots), only the newest is run and the others are counted as skipped,
    so one push costs at most one inference and a slow model cannot fall
    further and further behind. ``restart_gap_s``: a gap in the timestamps
    of at least this many seconds that also covers a whole clip span (a
    stream that reconnected, a camera that stalled) restarts the window from
    the frame after it instead of filling the gap with copies of that frame
    (``counters.gap_restarts``; None: never). Shorter gaps hold the last
    frame, exactly as offline reading resamples.
    """

    def __init__(self, model: Any, hop: int | None = None, k: int | None = None, newest_only: bool = False,
                 counters: StreamCounters | None = None, clock: Callable[[], float] = time.perf_counter,
                 restart_gap_s: float | None = 1.0) -> None:
        self.model = model
        self.restart_gap_s = restart_gap_s
        self.meta = model.meta
        clip = self.meta.clip
        self.hop = clip.stream_hop if hop is None else int(hop)
        if self.hop < 1:
            raise EdgevcError(f"hop must be at least 1 frame, got {self.hop}")
        self.k = self.meta.agg.topk if k is None else int(k)
        if not 1 <= self.k <= self.meta.num_classes:
            raise EdgevcError(f"top-k of {self.k} for a model with {self.meta.num_classes} classes",
                              hint=f"pass a k between 1 and {self.meta.num_classes}")
        self.newest_only = newest_only
        self.stateful = self.meta.stateful
        if self.stateful and clip.mode != "strided":
            raise EdgevcError(f"stream model '{self.meta.model}' has a '{clip.mode}' clip spec",
                              hint="stateful stream models take frames at a fixed stride (mode 'strided')")
        self.counters = counters if counters is not None else StreamCounters()
        self.clock = clock
        self.offsets = window_offsets(clip)
        self.span = clip.span
        self.reset()

    def reset(self) -> None:
        """Forget the stream (window, resampler, aggregation, state); the counters keep running."""
        clip = self.meta.clip
        self.window = StreamingWindow(clip, self.hop)
        self.resampler = FpsResampler(clip.fps) if clip.fps else None
        self.aggregator = Aggregator(self.meta.agg)
        self._source: dict[int, tuple[int, float]] = {}  # slot -> (source index, pts)
        self._cache: dict[int, np.ndarray] = {}          # slot -> preprocessed frame
        self._last_rgb: np.ndarray | None = None
        self._next_index = 0
        self._decisions = 0
        self._state = self.model.init_state() if self.stateful else []
        self._logits: np.ndarray | None = None

    # -- the stream ------------------------------------------------------------------------------
    def push(self, rgb: np.ndarray, pts: float | None = None, index: int | None = None,
             arrival: float | None = None) -> list[Decision]:
        """One uint8 RGB frame (H, W, 3) with its timestamp (seconds) -> the decisions it completes.

        ``index`` is the source's frame number (default: counting pushes);
        ``arrival`` the ``clock()`` time the frame arrived (default: now).
        """
        arrival = self.clock() if arrival is None else arrival
        index = self._next_index if index is None else int(index)
        self._next_index = index + 1
        self.counters.frames_processed += 1
        if self.resampler is None:
            repeat = 1
        else:
            if pts is None:
                raise EdgevcError(f"'{self.meta.model}' runs at {self.meta.clip.fps} fps: frames need timestamps",
                                  hint="pass pts (seconds) with every frame")
            last = self.resampler.last_pts
            repeat = self.resampler.push(float(pts))
            if (self.restart_gap_s is not None and repeat >= self.span and self.window.count > 0
                    and float(pts) - last >= self.restart_gap_s):
                repeat = self._restart_after_gap(float(pts), index)
        self._last_rgb = rgb
        ready: list[WindowClip] = []
        decisions: list[Decision] = []
        pre: np.ndarray | None = None
        for _ in range(repeat):
            slot = self.window.count
            self._source[slot] = (index, 0.0 if pts is None else float(pts))
            self.counters.slots += 1
            if self.stateful:
                if slot % self.meta.clip.stride == 0:
                    pre = self._preprocess(rgb) if pre is None else pre
                    self._step(pre)
                clip = self.window.push(slot)
                if clip is not None:
                    decisions.append(self._decide_stateful(clip, arrival))
            else:
                if self._needed(slot):
                    pre = self._preprocess(rgb) if pre is None else pre
                    self._cache[slot] = pre
                clip = self.window.push(slot)
                if clip is not None:
                    ready.append(clip)
        if self.newest_only and len(ready) > 1:
            self.counters.clips_skipped += len(ready) - 1
            ready = ready[-1:]
        decisions += [self._decide_clip(c, arrival) for c in ready]
        self._evict()
        return decisions

    def _restart_after_gap(self, pts: float, index: int) -> int:
        """A gap of a whole clip span or more (a stream that reconnected, a camera that stalled).

        Holding the last frame would fill every slot of the next clips with
        copies of this one frame: no motion, not a clip the model was trained
        on. The window, the aggregation and any stream state start again from
        this frame instead (counted in ``gap_restarts``); frame indices and
        decision numbers keep counting. Returns the slots this frame fills (1).
        """
        decisions = self._decisions
        self.reset()
        self._next_index, self._decisions = index + 1, decisions
        self.counters.gap_restarts += 1
        return self.resampler.push(pts)  # type: ignore[union-attr]

    def flush(self) -> list[Decision]:
        """End of stream: a stream shorter than one clip gets the one clamped clip offline reading takes."""
        clip = self.window.flush()
        if clip is None:
            return []
        arrival = self.clock()
        if self.stateful:
            return [self._decide_stateful(clip, arrival)]
        for slot in np.unique(clip.indices):
            if int(slot) not in self._cache:  # the clamped last frame no clip had needed
                self._cache[int(slot)] = self._preprocess(self._last_rgb)
        return [self._decide_clip(clip, arrival)]

    # -- internals -------------------------------------------------------------------------------
    def _needed(self, slot: int) -> bool:
        """Does any clip use this slot? Clips start at k*hop and take ``start + offsets``."""
        d = slot - self.offsets
        return bool(np.any((d >= 0) & (d % self.hop == 0)))

    def _preprocess(self, rgb: np.ndarray | None) -> np.ndarray:
        t = self.clock()
        out = preprocess_frame(rgb, self.meta.preproc)
        self.counters.preprocess_s += self.clock() - t
        self.counters.frames_preprocessed += 1
        return out

    def _evict(self) -> None:
        oldest = self.window.count - self.span
        for table in (self._source, self._cache):
            while table and next(iter(table)) < oldest:
                del table[next(iter(table))]

    def _step(self, frame: np.ndarray) -> None:
        t = self.clock()
        x = assemble(frame[None], self.meta.preproc)
        t1 = self.clock()
        logits, self._state = self.model.step(x, self._state)
        t2 = self.clock()
        self._logits = np.asarray(logits)
        self.counters.assemble_s += t1 - t
        self.counters.infer_s += t2 - t1
        self.counters.inferences += 1

    def _decide_clip(self, clip: WindowClip, arrival: float) -> Decision:
        t0 = self.clock()
        x = assemble(np.stack([self._cache[int(s)] for s in clip.indices]), self.meta.preproc)
        t1 = self.clock()
        logits = np.asarray(self.model.infer(x))
        t2 = self.clock()
        self.counters.assemble_s += t1 - t0
        self.counters.infer_s += t2 - t1
        self.counters.inferences += 1
        return self._decision(clip, logits, arrival)

    def _decide_stateful(self, clip: WindowClip, arrival: float) -> Decision:
        if self._logits is None:  # cannot happen: slot 0 is always fed
            raise EdgevcError("no frame reached the stream model before its first decision")
        return self._decision(clip, self._logits, arrival)

    def _decision(self, clip: WindowClip, logits: np.ndarray, arrival: float) -> Decision:
        t = self.clock()
        scores = self.aggregator.update(logits)
        best = tuple(topk(scores, self.meta.labels, self.k))
        done = self.clock()
        self.counters.aggregate_s += done - t
        src = [self._source[int(s)] for s in clip.indices]
        first, last = min(src), max(src)
        latency = 1000.0 * (done - arrival)
        self.counters.decisions += 1
        self.counters.latencies_ms.append(latency)
        self._decisions += 1
        return Decision(self._decisions - 1, (first[0], last[0]), (first[1], last[1]), best, latency,
                        tuple(i for i, _ in src), scores, logits.reshape(-1).copy())
