"""Live mode: keep the newest frame, account for every frame, and the stats that summarize a run."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from runtime_toys import frames, toy_meta, toy_model

from edgevc.runtime.live import LatestSlot, run_all, run_live
from edgevc.runtime.stats import LatencyStats, StreamCounters, percentile, summarize
from edgevc.runtime.stream import StreamingClassifier
from edgevc.spec import ClipSpec
from edgevc.video import Frame


def fast_source(n: int, fps: float = 30.0, seed: int = 0):
    video = frames(n, seed=seed)
    return [Frame(i, i / fps, video[i]) for i in range(n)]


def test_latest_slot_replaces_an_untaken_item_and_counts_it_dropped():
    slot = LatestSlot()
    assert slot.put("a") is False and slot.put("b") is True and slot.put("c") is True
    assert slot.get() == "c" and slot.put("d") is False and slot.get() == "d"
    slot.close()
    assert slot.get() is None and (slot.puts, slot.taken, slot.dropped) == (4, 2, 2)
    with pytest.raises(RuntimeError):
        slot.put("e")


def test_latest_slot_get_waits_for_a_producer_thread():
    slot = LatestSlot()
    threading.Timer(0.05, lambda: (slot.put(1), slot.close())).start()
    assert slot.get(timeout=5) == 1 and slot.get(timeout=5) is None
    with pytest.raises(TimeoutError):
        LatestSlot().get(timeout=0.01)


def test_live_with_a_slow_model_drops_frames_keeps_the_newest_and_accounts_for_every_frame():
    model = toy_model(ClipSpec(2, stride=1, hop=1), delay=0.02)  # 20 ms per clip vs a source with no pace
    clf = StreamingClassifier(model, newest_only=True)
    got = run_live(fast_source(200), clf)
    c = clf.counters
    assert c.frames_read == 200 == c.frames_processed + c.frames_dropped
    assert c.frames_dropped > 20 and len(got) == c.decisions == c.inferences
    ends = [d.frames[1] for d in got]
    assert ends == sorted(ends) and ends[-1] == 199  # the newest frame is never the one dropped


def test_live_paced_source_with_a_fast_model_drops_nothing_and_equals_run_all():
    clip = ClipSpec(3, stride=2, fps=15.0, hop=4)  # 67 ms between frames: a toy model needs < 1 ms
    live_clf = StreamingClassifier(toy_model(clip), newest_only=True)
    got = run_live(fast_source(30, fps=15.0), live_clf, pace=True)
    want = run_all(fast_source(30, fps=15.0), StreamingClassifier(toy_model(clip)))
    assert live_clf.counters.frames_dropped == 0 and live_clf.counters.frames_processed == 30
    assert [d.indices for d in got] == [d.indices for d in want]
    assert all(np.array_equal(a.scores, b.scores) for a, b in zip(got, want, strict=True))


def test_live_latency_runs_from_capture_and_includes_the_wait():
    model = toy_model(ClipSpec(1, hop=1), delay=0.03)
    clf = StreamingClassifier(model, newest_only=True)
    got = run_live(fast_source(30), clf)
    assert min(d.latency_ms for d in got) >= 30.0  # at least the inference itself


def test_a_failing_source_raises_in_the_caller_after_accounting():
    def broken():
        yield from fast_source(5)
        raise OSError("camera unplugged")

    clf = StreamingClassifier(toy_model(ClipSpec(2, hop=1)), newest_only=True)
    with pytest.raises(OSError, match="unplugged"):
        run_live(broken(), clf)
    assert clf.counters.frames_read == 5 == clf.counters.frames_processed + clf.counters.frames_dropped


def test_percentiles_and_latency_stats_match_numpy():
    v = [5.0, 1.0, 3.0, 100.0, 2.0, 4.0]
    assert percentile(v, 50) == 3.5 and percentile([], 50) is None
    lat = LatencyStats.of(v)
    assert (lat.count, lat.p50_ms, lat.max_ms) == (6, 3.5, 100.0)
    assert lat.p90_ms == pytest.approx(np.percentile(v, 90)) and lat.p99_ms == pytest.approx(np.percentile(v, 99))


def test_summary_computes_rates_amortized_compute_and_gflops_from_macs():
    meta = toy_meta(ClipSpec(4), macs=5_000_000_000)
    c = StreamCounters(frames_read=100, frames_processed=90, frames_dropped=10, slots=90, frames_preprocessed=30,
                       inferences=8, decisions=8, decode_s=0.5, preprocess_s=0.3, assemble_s=0.1, infer_s=0.8,
                       aggregate_s=0.0, latencies_ms=[10.0, 20.0, 30.0, 40.0])
    s = summarize(c, meta, wall_s=2.0, source="x.mp4", mode="live", threads=2)
    assert s.frames_per_s == 45.0 and s.decisions_per_s == 4.0
    assert s.compute_ms_per_frame == pytest.approx(1000 * 1.2 / 90, abs=1e-3)
    assert s.infer_ms_per_call == 100.0 and s.gflops_per_s == 100.0  # 8 * 2 * 5 GMAC / 0.8 s
    assert s.latency.p50_ms == 25.0 and s.to_dict()["latency"]["p99_ms"] == pytest.approx(39.7)
    table, md = s.to_table(), s.to_markdown()
    assert "100 read, 90 processed, 10 dropped" in table and "p50 / p90 / p99" in table
    assert md.startswith("| metric | value |") and md.count("\n") == len(s.rows()) + 1
    assert '"gflops_per_s": 100.0' in s.to_json()


def test_file_run_counts_decode_time_and_every_frame():
    clf = StreamingClassifier(toy_model(ClipSpec(2, hop=2)))

    def slow_decoder():
        for f in fast_source(10):
            time.sleep(0.005)
            yield f

    run_all(slow_decoder(), clf)
    assert clf.counters.frames_read == clf.counters.frames_processed == 10 and clf.counters.frames_dropped == 0
    assert clf.counters.decode_s >= 0.045


def test_latency_memory_is_bounded_and_its_figures_stay_right():
    """A long run keeps a fixed-size uniform sample of latencies: exact count, mean and max, close percentiles."""
    from edgevc.runtime.stats import LatencyReservoir, LatencyStats

    rng = np.random.default_rng(1)
    values = rng.gamma(4.0, 10.0, size=200_000)
    r = LatencyReservoir(capacity=4096)
    for v in values:
        r.append(v)
    assert len(r.sample()) == 4096 and r.count == len(values)
    stats = LatencyStats.of(r)
    assert stats.count == len(values)
    assert stats.mean_ms == pytest.approx(values.mean(), abs=1e-3)
    assert stats.max_ms == pytest.approx(values.max(), abs=1e-3)
    for q, got in ((50, stats.p50_ms), (90, stats.p90_ms), (99, stats.p99_ms)):
        assert got == pytest.approx(np.percentile(values, q), rel=0.05), q
    small = LatencyStats.of([10.0, 20.0, 30.0, 40.0])  # under the capacity: exact
    assert (small.count, small.p50_ms, small.max_ms) == (4, 25.0, 40.0)
