"""The numpy sampling core: worked examples, and the streaming window equals offline sampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevc.sampling import (
    FpsResampler,
    StreamingWindow,
    clip_indices,
    eval_clips,
    resample_indices,
    stream_clips,
    window_offsets,
    window_starts,
)
from edgevc.spec import ClipSpec


def test_worked_examples_of_the_rounding_rule():
    # the docstring's examples: floor everywhere, integer arithmetic
    assert window_offsets(ClipSpec(4, mode="uniform"), 10).tolist() == [0, 3, 6, 9]
    assert window_offsets(ClipSpec(4, mode="segment"), 10).tolist() == [1, 3, 6, 8]
    assert window_offsets(ClipSpec(3, mode="uniform"), 8).tolist() == [0, 3, 7]
    assert window_offsets(ClipSpec(3, mode="segment"), 8).tolist() == [1, 4, 6]
    assert window_offsets(ClipSpec(1, mode="uniform"), 9).tolist() == [4]
    assert window_offsets(ClipSpec(4, stride=3)).tolist() == [0, 3, 6, 9]


def test_short_video_repeats_its_last_frame():
    assert clip_indices(ClipSpec(4, stride=2), 5).tolist() == [0, 2, 4, 4]
    assert window_starts(5, span=7, hop=2).tolist() == [0]
    assert window_starts(0, span=7, hop=2).tolist() == []


def test_stream_windows_start_every_hop_while_they_fit():
    assert window_starts(20, span=7, hop=5).tolist() == [0, 5, 10]
    clips = stream_clips(ClipSpec(4, stride=2, hop=5), 20)
    assert [c.tolist() for c in clips] == [[0, 2, 4, 6], [5, 7, 9, 11], [10, 12, 14, 16]]


def test_eval_clips_are_evenly_spaced_and_cover_the_video():
    clips = eval_clips(ClipSpec(4, stride=2), 27, num_clips=3)
    assert [c[0] for c in clips] == [0, 10, 20] and clips[-1][-1] == 26
    assert eval_clips(ClipSpec(4, mode="segment"), 10)[0].tolist() == [1, 3, 6, 8]


specs = st.builds(
    ClipSpec,
    num_frames=st.integers(1, 12),
    mode=st.sampled_from(["strided", "uniform", "segment"]),
    stride=st.integers(1, 6),
    hop=st.one_of(st.none(), st.integers(1, 20)),
)


@settings(max_examples=300, deadline=None)
@given(spec=specs, length=st.integers(0, 120))
def test_streaming_window_yields_exactly_the_offline_clips(spec, length):
    """Frames pushed one at a time emit the clips offline sampling takes, at the same positions."""
    window = StreamingWindow(spec)
    emitted = []
    for i in range(length):
        out = window.push(np.array([i, 1000 + i]))  # the item carries its own index
        if out is not None:
            assert out.items[:, 0].tolist() == out.indices.tolist()
            emitted.append(out.indices.tolist())
    tail = window.flush()
    if tail is not None:
        assert tail.items[:, 0].tolist() == tail.indices.tolist()
        emitted.append(tail.indices.tolist())
    offline = [c.tolist() for c in stream_clips(spec, length)] if length else []
    assert emitted == offline


def test_hop_change_takes_effect_from_the_last_clip():
    w = StreamingWindow(ClipSpec(2, hop=3))
    starts = []
    for i in range(12):
        if i == 5:
            w.set_hop(1)
        out = w.push(i)
        if out is not None:
            starts.append(out.first)
    assert starts == [0, 3, 4, 5, 6, 7, 8, 9, 10]


@settings(max_examples=200, deadline=None)
@given(
    fps=st.sampled_from([5.0, 12.5, 15.0, 24.0, 25.0, 29.97, 30.0, 60.0]),
    gaps=st.lists(st.floats(0.001, 0.2), min_size=1, max_size=80),
)
def test_fps_resampler_streams_what_resample_indices_computes(fps, gaps):
    pts = np.concatenate([[0.37], 0.37 + np.cumsum(gaps)])
    offline = resample_indices(pts, fps)
    rs = FpsResampler(fps)
    streamed = [i for i, p in enumerate(pts) for _ in range(rs.push(float(p)))]
    assert streamed == offline.tolist()
    # every slot takes a frame at or just after its time
    t = pts[0] + np.arange(len(offline)) / fps
    assert np.all(pts[offline] >= t - 1e-3 / fps - 1e-12)


def test_resampling_halves_a_30fps_source_at_15fps_and_repeats_a_10fps_one_at_25fps():
    assert resample_indices(np.arange(10) / 30, 15).tolist() == [0, 2, 4, 6, 8]
    assert resample_indices(np.arange(4) / 10, 25).tolist() == [0, 1, 1, 2, 2, 2, 3, 3]


def test_timestamps_going_back_are_refused():
    with pytest.raises(ValueError, match="non-decreasing"):
        resample_indices(np.array([0.0, 0.1, 0.05]), 10)
    rs = FpsResampler(10)
    rs.push(0.2)
    with pytest.raises(ValueError, match="back in time"):
        rs.push(0.1)
