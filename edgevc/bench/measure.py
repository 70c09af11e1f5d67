"""Latency measurement with the hygiene a shared CPU needs: warm-up, interleaving, raw samples, medians.

Every row of a bench (PyTorch eager and each artifact) is a :class:`Subject`:
a name and ``call(clip) -> logits``. :func:`interleave` times one call per
subject per round, round after round (A B C A B C ...), so a drift of the
machine (another job starting, a frequency change) hits every subject
equally instead of the one measured last. It warms every subject up first
(the same interleaved order, untimed), keeps every raw sample, and sleeps
``gap_s`` between two subjects so the previous framework's spinning worker
threads (OpenMP, TBB) have gone idle before the next one starts.

Example: 3 subjects, ``warmup=1``, ``repeats=2`` -> calls A B C (untimed),
then A B C A B C (timed): :func:`schedule` gives ``[0, 1, 2, 0, 1, 2]``.

A subject that raises is dropped from later rounds with the first line of
its error (the row shows it as failed); the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgevc.runtime.stats import percentile

GAP_S = 0.02


@dataclass
class Subject:
    """One timed row: ``call(clip)`` returns logits; ``error`` is set if a call raised."""

    name: str
    call: Callable[[np.ndarray], Any]
    samples_ms: list[float] = field(default_factory=list)
    error: str | None = None


def schedule(subjects: int, repeats: int) -> list[int]:
    """The order of timed calls: subject indices round-robin, ``repeats`` rounds."""
    return [i for _ in range(repeats) for i in range(subjects)]


@dataclass(frozen=True)
class Interleaved:
    """What :func:`interleave` ran: rounds completed, the call order, wall time, and why it stopped."""

    rounds: int
    order: list[str]
    seconds: float
    stopped: str


def interleave(subjects: Sequence[Subject], clips: Sequence[np.ndarray], repeats: int, warmup: int = 2,
               budget_s: float | None = None, min_rounds: int = 3, gap_s: float = GAP_S,
               clock: Callable[[], float] = time.perf_counter,
               sleep: Callable[[float], None] = time.sleep) -> Interleaved:
    """Time ``repeats`` interleaved rounds (one call per subject each, on clip ``round % len(clips)``).

    Samples go into each subject's ``samples_ms``. With ``budget_s``, stop
    after the round in which the budget ran out, once ``min_rounds`` are
    done (every subject keeps the same number of samples).
    """
    if not clips:
        raise ValueError("interleave needs at least one clip")
    t0 = clock()
    for r in range(warmup):
        for s in subjects:
            _call(s, clips[r % len(clips)], None, clock)
            sleep(gap_s)
    order: list[str] = []
    rounds, stopped = 0, f"{repeats} rounds"
    start = clock()
    for r in range(repeats):
        for s in subjects:
            if s.error is None:
                _call(s, clips[r % len(clips)], s.samples_ms, clock)
                order.append(s.name)
                sleep(gap_s)
        rounds += 1
        if budget_s is not None and rounds >= min_rounds and clock() - start > budget_s and r < repeats - 1:
            stopped = f"time budget of {budget_s:g} s after {rounds} rounds"
            break
    return Interleaved(rounds, order, round(clock() - t0, 3), stopped)


def _call(s: Subject, clip: np.ndarray, into: list[float] | None, clock: Callable[[], float]) -> None:
    if s.error is not None:
        return
    try:
        t = clock()
        s.call(clip)
        dt = clock() - t
    except Exception as err:  # noqa: BLE001 -- one failing row must not stop the bench
        s.error = f"{type(err).__name__}: {first_line(err)}"
        return
    if into is not None:
        into.append(1000.0 * dt)


def first_line(err: BaseException | str) -> str:
    """The first non-empty line of an error message (EdgevcError: its message), at most 200 characters."""
    text = getattr(err, "message", None) or str(err)
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return type(err).__name__ if isinstance(err, BaseException) else ""


@dataclass(frozen=True)
class Latency:
    """Percentiles of one subject's samples in ms (numpy's linear interpolation)."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Latency | None:
        if not samples_ms:
            return None
        v = np.asarray(samples_ms, dtype=np.float64)
        return cls(len(v), *(round(float(percentile(v, q)), 4) for q in (50, 90, 99)),
                   round(float(v.mean()), 4), round(float(v.min()), 4))


def paired_speedup(reference_ms: Sequence[float], samples_ms: Sequence[float]) -> float | None:
    """The median over rounds of ``reference / sample`` (round r of one vs round r of the other).

    Interleaving makes the two samples of a round neighbours in time, so
    their ratio cancels most of the machine's drift.
    """
    n = min(len(reference_ms), len(samples_ms))
    if n == 0:
        return None
    ratios = np.asarray(reference_ms[:n], dtype=np.float64) / np.maximum(np.asarray(samples_ms[:n]), 1e-9)
    return round(float(np.median(ratios)), 4)
