"""StreamingClassifier: the clips, frames, timestamps and scores of a stream equal offline classification."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from runtime_toys import frames, toy_model

import edgevc.runtime.stream as stream_mod
from edgevc.errors import EdgevcError
from edgevc.runtime.live import run_all
from edgevc.runtime.sources import open_frames
from edgevc.runtime.stream import StreamingClassifier
from edgevc.sampling import activate, aggregate, preprocess, resample_indices, stream_clips, topk
from edgevc.spec import AggSpec, ClipSpec
from edgevc.video import read_video


def offline(model, video: np.ndarray, pts: np.ndarray | None, hop: int | None = None):
    """Offline classification: resample by timestamps, the clips stream_clips gives, preprocess, infer."""
    meta = model.meta
    slots = np.arange(len(video)) if meta.clip.fps is None else resample_indices(pts, meta.clip.fps)
    out = []
    for idx in stream_clips(meta.clip, len(slots), hop):
        src = slots[idx]
        logits = model.infer(preprocess(video[src], meta.preproc))
        out.append((src, logits.reshape(-1)))
    return out


def push_all(clf, video, pts=None):
    decisions = []
    for i, f in enumerate(video):
        decisions += clf.push(f, None if pts is None else pts[i], i)
    return decisions + clf.flush()


@pytest.mark.parametrize("clip", [ClipSpec(4, stride=2, hop=3), ClipSpec(3, mode="uniform", stride=3, hop=4),
                                  ClipSpec(4, mode="segment", stride=2), ClipSpec(1, hop=2)])
def test_stream_decisions_equal_offline_clips_bit_for_bit(clip):
    model = toy_model(clip)
    video = frames(41)
    got = push_all(StreamingClassifier(model), video)
    want = offline(model, video, None)
    assert len(got) == len(want) >= 3
    for d, (src, logits) in zip(got, want, strict=True):
        assert list(d.indices) == src.tolist() and d.frames == (src.min(), src.max())
        assert np.array_equal(d.logits, logits)
    scores = aggregate(np.stack([lg for _, lg in want]), model.meta.agg)
    assert np.array_equal(got[-1].scores, scores)
    assert [p.label for p in got[-1].topk] == [p.label for p in topk(scores, model.meta.labels, 3)]


@pytest.mark.parametrize("src_fps,model_fps", [(30.0, 15.0), (10.0, 25.0), (28.0, 25.0)])
def test_a_source_at_another_fps_is_resampled_by_timestamps_and_reported_in_source_frames(src_fps, model_fps):
    model = toy_model(ClipSpec(4, stride=2, fps=model_fps, hop=3))
    video = frames(45)
    pts = np.arange(45) / src_fps
    got = push_all(StreamingClassifier(model), video, pts)
    want = offline(model, video, pts)
    assert len(got) == len(want) >= 3
    for d, (src, logits) in zip(got, want, strict=True):
        assert list(d.indices) == src.tolist()
        assert d.t == pytest.approx((pts[src.min()], pts[src.max()]))
        assert np.array_equal(d.logits, logits)


def test_variable_frame_rate_source_uses_the_timestamps_not_the_frame_count():
    model = toy_model(ClipSpec(3, stride=1, fps=10.0, hop=2))
    pts = np.array([0, 0.1, 0.12, 0.3, 0.31, 0.32, 0.5, 0.6, 0.7, 0.9, 1.0])  # gaps and bursts
    video = frames(len(pts))
    got = push_all(StreamingClassifier(model), video, pts)
    slots = resample_indices(pts, 10.0)
    assert slots.tolist() == [0, 1, 3, 3, 6, 6, 7, 8, 9, 9, 10]
    assert [list(d.indices) for d in got] == [slots[c].tolist() for c in stream_clips(model.meta.clip, 11)]


def test_each_frame_is_preprocessed_once_on_arrival_and_only_if_a_clip_uses_it(monkeypatch):
    calls = []
    real = stream_mod.preprocess_frame
    monkeypatch.setattr(stream_mod, "preprocess_frame", lambda f, spec: calls.append(f) or real(f, spec))
    clip = ClipSpec(4, stride=12, hop=18)  # x3d_xs' pattern: starts 0, 18, ...; slots 0, 12, 18, 24, 30, 36, ...
    clf = StreamingClassifier(toy_model(clip))
    video = frames(110, h=16, w=16)
    got = push_all(clf, video)
    used = {i for c in stream_clips(clip, 110) for i in c.tolist()}
    # decided on arrival: a slot of a window that the stream's end leaves incomplete (102 = 90 + 12) is done too
    on_arrival = {s for s in range(110) for off in (0, 12, 24, 36) if s >= off and (s - off) % 18 == 0}
    assert len(got) == 5 and sorted(used)[:6] == [0, 12, 18, 24, 30, 36] and on_arrival - used == {102}
    assert len(calls) == len(on_arrival) == 18 == clf.counters.frames_preprocessed  # once each, 18 of 110
    assert clf.counters.frames_processed == clf.counters.slots == 110


def test_a_stream_shorter_than_one_clip_gets_the_clamped_clip_at_flush():
    model = toy_model(ClipSpec(8, stride=2, hop=4))  # span 15
    video = frames(6)
    got = push_all(StreamingClassifier(model), video)
    assert len(got) == 1 and list(got[0].indices) == [0, 2, 4, 5, 5, 5, 5, 5]
    assert np.array_equal(got[0].logits, offline(model, video, None)[0][1])


def test_newest_only_runs_one_clip_when_a_late_frame_completes_several():
    model = toy_model(ClipSpec(2, stride=1, fps=10.0, hop=1))
    clf = StreamingClassifier(model, newest_only=True)
    video = frames(4)
    assert clf.push(video[0], 0.0) == [] and len(clf.push(video[1], 0.1)) == 1
    late = clf.push(video[2], 0.6)  # fills 5 slots: 5 clips due, one run
    assert len(late) == 1 and late[0].frames == (2, 2) and clf.counters.clips_skipped == 4
    assert clf.counters.inferences == 2


def test_a_gap_of_a_whole_clip_restarts_the_window_instead_of_filling_it_with_one_frame():
    """A stream that comes back after 3 s (a reconnect): the next clips are real clips of the new frames."""
    model = toy_model(ClipSpec(4, stride=2, fps=10.0, hop=3))  # span 7 slots = 0.7 s
    before, after = np.arange(20) / 10.0, 5.0 + np.arange(20) / 10.0
    pts = np.concatenate([before, after])
    video = frames(40)

    held = push_all(StreamingClassifier(model, restart_gap_s=None), video, pts)
    assert any(len(set(d.indices)) == 1 for d in held)  # the old way: clips made of copies of frame 20

    clf = StreamingClassifier(model)
    got = push_all(clf, video, pts)
    assert clf.counters.gap_restarts == 1 and all(len(set(d.indices)) > 1 for d in got)
    assert [d.index for d in got] == list(range(len(got)))  # decision numbers keep counting
    first_part = offline(model, video[:20], before)
    second_part = offline(model, video[20:], after)
    assert len(got) == len(first_part) + len(second_part)
    for d, (src, logits) in zip(got, first_part + [(src + 20, lg) for src, lg in second_part], strict=True):
        assert list(d.indices) == src.tolist() and np.array_equal(d.logits, logits)
    # the aggregation started again too: the last scores are those of the second part alone
    assert np.array_equal(got[-1].scores, aggregate(np.stack([lg for _, lg in second_part]), model.meta.agg))


def test_short_gaps_hold_the_last_frame_as_offline_reading_does():
    model = toy_model(ClipSpec(2, stride=1, fps=10.0, hop=1))  # span 2: a 0.5 s gap covers it, but is under 1 s
    clf = StreamingClassifier(model)
    video = frames(3)
    push_all(clf, video, np.array([0.0, 0.1, 0.6]))
    assert clf.counters.gap_restarts == 0 and clf.counters.slots == 7


def test_stateful_model_steps_each_frame_at_the_stride_once_and_decides_on_the_window_schedule():
    clip = ClipSpec(4, stride=2, hop=4)  # span 7: decisions at slots 6, 10, 14, ...
    model = toy_model(clip, stateful=True)
    video = frames(23)
    clf = StreamingClassifier(model)
    got = push_all(clf, video)
    fed = list(range(0, 23, 2))
    assert len(model.backend.frames) == len(fed) == clf.counters.inferences
    for x, i in zip(model.backend.frames, fed, strict=True):
        assert np.array_equal(x, preprocess(video[i:i + 1], model.meta.preproc))
    # offline: step through the same frames and read the logits at each window's last fed frame
    state, logits_at = model.init_state(), {}
    for i in fed:
        lg, state = model.step(preprocess(video[i:i + 1], model.meta.preproc), state)
        logits_at[i] = lg.reshape(-1)
    windows = stream_clips(clip, 23)
    assert [list(d.indices) for d in got] == [w.tolist() for w in windows]
    for d, w in zip(got, windows, strict=True):
        assert np.array_equal(d.logits, logits_at[max(i for i in fed if i <= w.max())])
    assert np.allclose(got[-1].scores, aggregate(np.stack([d.logits for d in got]), model.meta.agg))


def test_stateful_hop_only_changes_how_often_it_reports_not_the_compute():
    clip = ClipSpec(3, stride=2, hop=2)
    a, b = toy_model(clip, stateful=True), toy_model(clip, stateful=True)
    video = frames(30)
    da, db = push_all(StreamingClassifier(a, hop=2), video), push_all(StreamingClassifier(b, hop=8), video)
    assert len(da) > len(db) >= 3 and len(a.backend.frames) == len(b.backend.frames) == 15
    same = {d.frames[1]: d.logits for d in da}
    assert all(np.array_equal(same[d.frames[1]], d.logits) for d in db)


@pytest.mark.parametrize("method", ["mean", "max", "ema", "window"])
def test_aggregation_follows_the_artifact_spec(method):
    agg = AggSpec(method=method, activation="softmax", alpha=0.3, window=2, topk=2)
    model = toy_model(ClipSpec(2, stride=1, hop=2), agg=agg)
    got = push_all(StreamingClassifier(model), frames(12))
    logits = np.stack([d.logits for d in got])
    p = activate(logits, "softmax")
    want = {"mean": p.mean(0), "max": p.max(0), "window": p[-2:].mean(0)}.get(method)
    if want is None:
        want = p[0]
        for row in p[1:]:
            want = 0.3 * row + 0.7 * want
    assert np.allclose(got[-1].scores, want) and len(got[-1].topk) == 2


def test_decision_to_dict_has_the_json_schema_and_latency_from_arrival():
    ticks = iter(np.arange(0, 100, 0.25))
    model = toy_model(ClipSpec(2, stride=1, hop=2))
    clf = StreamingClassifier(model, k=2, clock=lambda: float(next(ticks)))
    d = push_all(clf, frames(3), pts=[0.0, 0.04, 0.08])[0]
    out = d.to_dict()
    assert set(out) == {"frames", "t", "topk", "latency_ms"} and out["frames"] == [0, 1]
    assert out["t"] == [0.0, 0.04] and len(out["topk"]) == 2 and set(out["topk"][0]) == {"label", "score"}
    assert out["latency_ms"] > 0 and out["latency_ms"] % 250 == 0  # whole ticks of the fake clock


def test_bad_hop_topk_and_missing_timestamps_are_clear_errors():
    model = toy_model(ClipSpec(2, fps=10.0))
    with pytest.raises(EdgevcError, match="hop must be at least 1"):
        StreamingClassifier(model, hop=0)
    with pytest.raises(EdgevcError, match="top-k of 7 for a model with 6 classes"):
        StreamingClassifier(model, k=7)
    with pytest.raises(EdgevcError, match="need timestamps"):
        StreamingClassifier(model).push(frames(1)[0])


def test_real_clip_streamed_from_the_decoder_equals_offline_reading(arm_wrestling):
    """28 fps Kinetics clip, a 25 fps model spec: decoder -> stream vs read_video -> offline."""
    model = toy_model(ClipSpec(4, stride=3, fps=25.0, hop=10))
    clf = StreamingClassifier(model)
    src = open_frames(arm_wrestling)
    try:
        got = run_all(src, clf, max_frames=120)
    finally:
        src.close()
    video = read_video(arm_wrestling, max_frames=120)
    want = offline(model, video.frames, video.pts)
    assert len(got) == len(want) == 10 and clf.counters.frames_read == 120
    for d, (src_idx, logits) in zip(got, want, strict=True):
        assert list(d.indices) == src_idx.tolist() and np.array_equal(d.logits, logits)


def test_runtime_modules_do_not_import_torch():
    mods = "edgevc.runtime.stream, edgevc.runtime.live, edgevc.runtime.stats, edgevc.runtime.sources, " \
           "edgevc.cli.commands.run"
    code = f"import sys, {mods}; print([m for m in ('torch', 'torchvision', 'nncf') if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr[-500:]
