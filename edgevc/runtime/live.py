"""The loops around a :class:`~edgevc.runtime.stream.StreamingClassifier`: every frame, or live.

:func:`run_all` processes every frame in order (files, benchmarks): nothing
is dropped and the decisions equal offline classification.

:func:`run_live` is a producer/consumer loop for a source that does not
wait (a camera, a stream, or a file played at its own pace). The producer
thread decodes and hands frames over through a :class:`LatestSlot`, a queue
of size 1 with the drop policy **keep the newest**: a new frame replaces
one the consumer has not taken yet, and the replaced frame is counted as
dropped. The consumer (the calling thread) classifies whatever is newest,
so when inference is slower than the source the decisions stay current
instead of falling behind. Every frame read is either processed or
dropped: ``frames_read == frames_processed + frames_dropped`` at the end.

Decision latency in live mode runs from the frame's capture (when the
producer received it), so it includes the time the frame waited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from edgevc.runtime.stats import StreamCounters
from edgevc.runtime.stream import Decision, StreamingClassifier
from edgevc.video import Frame

OnDecision = Callable[[Decision], None]


class LatestSlot:
    """A queue of size 1 where :meth:`put` replaces an item not yet taken ("keep the newest").

    ``put`` returns True when it replaced (dropped) an item; :meth:`get`
    blocks until an item arrives and returns None once the slot is closed
    and empty. ``puts == taken + dropped`` once drained.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._full = False
        self._closed = False
        self.puts = 0
        self.taken = 0
        self.dropped = 0

    def put(self, item: Any) -> bool:
        with self._cond:
            if self._closed:
                raise RuntimeError("put on a closed LatestSlot")
            replaced = self._full
            self._item, self._full = item, True
            self.puts += 1
            self.dropped += replaced
            self._cond.notify()
            return replaced

    def get(self, timeout: float | None = None) -> Any:
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                raise TimeoutError("no frame arrived")
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            self.taken += 1
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _timed(frames: Iterable[Frame], counters: StreamCounters,
           clock: Callable[[], float]) -> Iterable[Frame]:
    """The frames, with the time spent getting each (decoding) added to ``counters.decode_s``."""
    it = iter(frames)
    while True:
        t = clock()
        frame = next(it, None)
        counters.decode_s += clock() - t
        if frame is None:
            return
        counters.frames_read += 1
        yield frame


def run_all(frames: Iterable[Frame], clf: StreamingClassifier, on_decision: OnDecision | None = None,
            max_frames: int | None = None, keep: bool = True) -> list[Decision]:
    """Every frame through the classifier in order, then the flush; returns all decisions.

    ``keep=False`` returns none: a stream that runs for days hands each decision to ``on_decision``
    and forgets it (each holds its scores and logits: ~5 kB at 400 classes).
    """
    out: list[Decision] = []
    for frame in _timed(frames, clf.counters, clf.clock):
        for d in clf.push(frame.rgb, frame.pts, frame.index):
            _deliver(d, out, on_decision, keep)
        if max_frames is not None and clf.counters.frames_read >= max_frames:
            break
    for d in clf.flush():
        _deliver(d, out, on_decision, keep)
    return out


def _deliver(d: Decision, out: list[Decision], on_decision: OnDecision | None, keep: bool) -> None:
    if keep:
        out.append(d)
    if on_decision:
        on_decision(d)


def run_live(frames: Iterable[Frame], clf: StreamingClassifier, on_decision: OnDecision | None = None,
             pace: bool = False, max_frames: int | None = None, sleep: Callable[[float], None] = time.sleep,
             keep: bool = True) -> list[Decision]:
    """Producer/consumer: decode in a thread, classify the newest frame here; returns all decisions.

    ``pace``: release frames at their timestamps (a file played as a camera
    would deliver it); leave it off for sources that pace themselves.
    ``keep=False``: return none, as in :func:`run_all`.
    """
    counters, clock = clf.counters, clf.clock
    slot = LatestSlot()
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            start = None
            for frame in _timed(frames, counters, clock):
                if stop.is_set():
                    counters.frames_read -= 1  # read but never offered: not part of the run
                    break
                if pace:
                    start = clock() - frame.pts if start is None else start
                    wait = start + frame.pts - clock()
                    if wait > 0:
                        sleep(wait)
                slot.put((frame, clock()))
                if max_frames is not None and slot.puts >= max_frames:
                    break
        except BaseException as err:  # handed to the consumer, raised there
            failure.append(err)
        finally:
            slot.close()

    producer = threading.Thread(target=produce, name="edgevc-producer", daemon=True)
    out: list[Decision] = []
    producer.start()
    try:
        while (item := slot.get()) is not None:
            frame, arrival = item
            for d in clf.push(frame.rgb, frame.pts, frame.index, arrival=arrival):
                _deliver(d, out, on_decision, keep)
    finally:
        stop.set()
        unprocessed = 0
        while slot.get(timeout=30) is not None:  # only after an error here: count them as dropped
            unprocessed += 1
        producer.join(timeout=30)
        counters.frames_dropped += slot.dropped + unprocessed
    if failure:
        raise failure[0]
    for d in clf.flush():
        _deliver(d, out, on_decision, keep)
    return out
