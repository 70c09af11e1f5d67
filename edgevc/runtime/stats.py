"""What a stream run cost and delivered: counters while it runs, a :class:`RunStats` summary at the end.

:class:`StreamCounters` is filled by the classifier (preprocess, infer and
aggregate time, frames, slots, inferences) and by the loop around it
(decode time, frames read and dropped, reconnects). :func:`summarize` turns
it into :class:`RunStats`: latency percentiles, decisions per second,
amortized compute per frame and the GFLOP/s achieved (2 FLOPs per MAC, from
the artifact's ``macs_per_clip``). It renders to a table, JSON and Markdown.

Every frame is accounted for: ``frames_read == frames_processed + frames_dropped``
(drops happen only in live mode, see :mod:`edgevc.runtime.live`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgevc.spec import ArtifactMeta


class LatencyReservoir:
    """Decision latencies in bounded memory: exact count, mean and max; percentiles from a uniform sample.

    Up to ``capacity`` values every latency is kept (percentiles are exact); after that each new value
    replaces a random kept one with probability ``capacity / count`` (reservoir sampling, Algorithm R), so
    the kept values stay a uniform sample of the whole run. A camera left running for days keeps 512 KB,
    not one float per decision.
    """

    def __init__(self, values: list[float] | None = None, capacity: int = 65536, seed: int = 0) -> None:
        self.capacity = capacity
        self._kept = np.empty(capacity, dtype=np.float64)
        self._rng = np.random.default_rng(seed)
        self.count, self.total, self.max = 0, 0.0, float("-inf")
        for v in values or []:
            self.append(v)

    def append(self, value: float) -> None:
        value = float(value)
        if self.count < self.capacity:
            self._kept[self.count] = value
        else:
            j = int(self._rng.integers(0, self.count + 1))
            if j < self.capacity:
                self._kept[j] = value
        self.count += 1
        self.total += value
        self.max = max(self.max, value)

    def sample(self) -> np.ndarray:
        return self._kept[:min(self.count, self.capacity)]

    def __len__(self) -> int:
        return self.count


@dataclass
class StreamCounters:
    """Running totals of one stream (seconds and counts); mutable, cheap to update per frame."""

    frames_read: int = 0          # frames the source delivered
    frames_processed: int = 0     # frames pushed into the classifier
    frames_dropped: int = 0       # frames replaced unprocessed (live "keep the newest")
    slots: int = 0                # frames on the model's fps grid (a frame may fill 0, 1 or more)
    frames_preprocessed: int = 0  # frames actually resized (only those some clip uses, each once)
    inferences: int = 0           # model calls (clips, or frames of a stream model)
    clips_skipped: int = 0        # clips not run because a newer one was due in the same push (live)
    decisions: int = 0
    reconnects: int = 0
    gap_restarts: int = 0         # windows restarted after a gap of a whole clip span (a reconnect, a stall)
    decode_s: float = 0.0
    preprocess_s: float = 0.0
    assemble_s: float = 0.0
    infer_s: float = 0.0
    aggregate_s: float = 0.0
    latencies_ms: LatencyReservoir = field(default_factory=LatencyReservoir)

    def __post_init__(self) -> None:
        if not isinstance(self.latencies_ms, LatencyReservoir):
            self.latencies_ms = LatencyReservoir(list(self.latencies_ms))

    @property
    def compute_s(self) -> float:
        """Time the classifier spent (decode excluded): preprocess + assemble + infer + aggregate."""
        return self.preprocess_s + self.assemble_s + self.infer_s + self.aggregate_s


def percentile(values: list[float] | np.ndarray, q: float) -> float | None:
    """The q-th percentile (linear interpolation, numpy's default); None for no values."""
    if len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass(frozen=True)
class LatencyStats:
    """Decision latency in ms: from the arrival of the frame that completed a clip to its decision."""

    count: int
    mean_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, latencies_ms: LatencyReservoir | list[float]) -> LatencyStats:
        r = latencies_ms if isinstance(latencies_ms, LatencyReservoir) else LatencyReservoir(list(latencies_ms))
        if not r.count:
            return cls(0, None, None, None, None, None)
        v = r.sample()
        return cls(r.count, _r(r.total / r.count), _r(percentile(v, 50)), _r(percentile(v, 90)),
                   _r(percentile(v, 99)), _r(r.max))


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(float(x), nd)


def _sig(x: float, digits: int = 3) -> float:
    """``x`` to ``digits`` significant figures: a rate never rounds to 0 because its unit is large."""
    return float(f"{float(x):.{digits}g}")


@dataclass(frozen=True)
class RunStats:
    """The summary of one ``edgevc run``: what ran, what it delivered, where the time went."""

    model: str
    target: str
    precision: str
    source: str
    mode: str                      # "file" (every frame processed) or "live" (keep the newest)
    threads: int | None
    frames_read: int
    frames_processed: int
    frames_dropped: int
    slots: int
    frames_preprocessed: int
    inferences: int
    clips_skipped: int
    decisions: int
    reconnects: int
    gap_restarts: int
    wall_s: float
    decode_s: float
    preprocess_s: float
    assemble_s: float
    infer_s: float
    aggregate_s: float
    latency: LatencyStats
    frames_per_s: float | None     # frames processed per second of wall time (decode included)
    decisions_per_s: float | None
    compute_ms_per_frame: float | None  # (preprocess + assemble + infer + aggregate) / frames processed
    infer_ms_per_call: float | None
    gflops_per_s: float | None     # 2 * macs_per_clip * inferences / infer_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def rows(self) -> list[tuple[str, str]]:
        """(name, value) pairs in reading order, for the table and Markdown renderings."""
        lat = self.latency

        def ms(x: float | None) -> str:
            return "-" if x is None else f"{x:.1f} ms"

        def num(x: float | None, fmt: str = ".1f") -> str:
            return "-" if x is None else format(x, fmt)

        rate_fmt = ".0f" if (self.gflops_per_s or 0) >= 100 else ".3g"  # 1730, 12.3, 0.0123: no exponent

        return [
            ("model", f"{self.model} ({self.target}, {self.precision}, threads {self.threads or 'default'})"),
            ("source", f"{self.source} ({self.mode})"),
            ("frames", f"{self.frames_read} read, {self.frames_processed} processed, {self.frames_dropped} dropped"),
            ("model frames", f"{self.slots} on the model's fps grid, {self.frames_preprocessed} preprocessed"),
            ("decisions", f"{self.decisions} ({self.inferences} inferences, {self.clips_skipped} clips skipped)"),
            ("latency p50 / p90 / p99", f"{ms(lat.p50_ms)} / {ms(lat.p90_ms)} / {ms(lat.p99_ms)}"),
            ("latency mean / max", f"{ms(lat.mean_ms)} / {ms(lat.max_ms)}"),
            ("throughput", f"{num(self.frames_per_s)} frames/s, {num(self.decisions_per_s, '.2f')} decisions/s"),
            ("compute per frame", ms(self.compute_ms_per_frame)),
            ("inference per call", ms(self.infer_ms_per_call)),
            ("achieved", f"{num(self.gflops_per_s, rate_fmt)} GFLOP/s (2 per MAC of macs_per_clip"
                         f"{'; integer ops at int8' if self.precision == 'int8' else ''})"),
            ("time: wall", f"{self.wall_s:.2f} s"),
            ("time: decode / preprocess / assemble", f"{self.decode_s:.2f} / {self.preprocess_s:.2f} / "
                                                     f"{self.assemble_s:.2f} s"),
            ("time: infer / aggregate", f"{self.infer_s:.2f} / {self.aggregate_s:.3f} s"),
        ] + ([("reconnects", str(self.reconnects))] if self.reconnects else []) \
          + ([("gap restarts", f"{self.gap_restarts} (a gap of a whole clip: the window started again)")]
             if self.gap_restarts else [])

    def to_table(self) -> str:
        rows = self.rows()
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:>{width}}  {v}" for k, v in rows)

    def to_markdown(self) -> str:
        lines = ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v.replace('|', '/')} |" for k, v in self.rows()]
        return "\n".join(lines)


def summarize(counters: StreamCounters, meta: ArtifactMeta, wall_s: float, source: str, mode: str,
              threads: int | None = None) -> RunStats:
    """The :class:`RunStats` of a finished run from its counters and the artifact's metadata."""
    c = counters
    flops = 2.0 * meta.macs_per_clip * c.inferences
    return RunStats(
        model=meta.model, target=meta.target, precision=meta.precision, source=source, mode=mode,
        threads=threads, frames_read=c.frames_read, frames_processed=c.frames_processed,
        frames_dropped=c.frames_dropped, slots=c.slots, frames_preprocessed=c.frames_preprocessed,
        inferences=c.inferences, clips_skipped=c.clips_skipped, decisions=c.decisions, reconnects=c.reconnects,
        gap_restarts=c.gap_restarts,
        wall_s=round(wall_s, 4), decode_s=round(c.decode_s, 4), preprocess_s=round(c.preprocess_s, 4),
        assemble_s=round(c.assemble_s, 4), infer_s=round(c.infer_s, 4), aggregate_s=round(c.aggregate_s, 4),
        latency=LatencyStats.of(c.latencies_ms),
        frames_per_s=_r(c.frames_processed / wall_s, 2) if wall_s > 0 else None,
        decisions_per_s=_r(c.decisions / wall_s, 3) if wall_s > 0 else None,
        compute_ms_per_frame=_r(1000 * c.compute_s / c.frames_processed) if c.frames_processed else None,
        infer_ms_per_call=_r(1000 * c.infer_s / c.inferences) if c.inferences else None,
        gflops_per_s=_sig(flops / c.infer_s / 1e9) if c.inferences and c.infer_s > 0 else None,
    )
