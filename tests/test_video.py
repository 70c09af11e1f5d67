"""Video input: probe, rotation with both decoders, corrupted and bad files, variable frame rate."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from edgevc.errors import VideoError
from edgevc.video import classify_source, open_source, probe, read_video, resample


def test_probe_reports_the_kinetics_clip(arm_wrestling):
    info = probe(arm_wrestling)
    assert (info.codec, info.width, info.height, info.fps, info.frames) == ("h264", 340, 256, 28.0, 280)
    assert info.duration == pytest.approx(10.0, abs=0.05) and info.rotation == 0


def test_pyav_and_opencv_decode_the_same_frames(arm_wrestling):
    a = read_video(arm_wrestling, decoder="pyav", max_frames=30)
    b = read_video(arm_wrestling, decoder="opencv", max_frames=30)
    assert a.frames.shape == b.frames.shape == (30, 256, 340, 3)
    assert np.abs(a.frames.astype(int) - b.frames).mean() < 2.0  # same decoder, colour conversion may round
    assert np.allclose(a.pts, np.arange(30) / 28, atol=1e-3) and np.allclose(b.pts, a.pts, atol=1e-3)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotated_clips_decode_to_the_same_orientation_with_both_decoders(edge_cases, rotation):
    path = edge_cases / f"rotated_{rotation}.mov"
    a = read_video(path, decoder="pyav")
    b = read_video(path, decoder="opencv")
    upright = (568, 320) if rotation in (90, 270) else (320, 568)
    assert a.frames.shape[1:3] == b.frames.shape[1:3] == upright
    assert np.abs(a.frames.astype(int) - b.frames).mean() < 2.0
    info = probe(path)
    assert info.rotation == rotation and (info.height, info.width) == upright


@pytest.mark.parametrize("decoder", ["pyav", "opencv"])
def test_corrupted_file_names_the_file_and_the_last_good_frame(edge_cases, decoder):
    path = edge_cases / "corrupted.mp4"
    with pytest.raises(VideoError) as err:
        read_video(path, decoder=decoder)
    assert "corrupted.mp4" in str(err.value) and "frame 27" in str(err.value)
    assert "--keep-partial" in str(err.value)
    kept = read_video(path, decoder=decoder, keep_partial=True)
    assert len(kept) == 28 and "frame 27" in kept.stopped_early


def test_unordered_file_comes_out_in_presentation_order(edge_cases):
    v = read_video(edge_cases / "unordered.mov")
    assert np.all(np.diff(v.pts) > 0)


def test_missing_empty_and_non_video_files(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        read_video(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        probe(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    with pytest.raises(VideoError, match="cannot open"):
        read_video(text)
    with pytest.raises(VideoError, match="not a file"):
        read_video(tmp_path)


def _write_vfr(path, pts_s):
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=1000)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(pts_s):
            img = np.full((48, 64, 3), (i * 37) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = int(round(t * 1000))
            frame.time_base = Fraction(1, 1000)
            out.mux(s.encode(frame))
        out.mux(s.encode())


def test_variable_frame_rate_is_resampled_by_timestamps(tmp_path):
    pts = [0.0, 0.1, 0.15, 0.4, 0.45, 0.5, 0.9, 1.0]  # bursts and gaps
    path = tmp_path / "vfr.mp4"
    _write_vfr(path, pts)
    raw = read_video(path)
    assert np.allclose(raw.pts, pts, atol=1e-3)
    even = read_video(path, fps=10)
    assert np.allclose(np.diff(even.pts), 0.1)
    assert len(even) == 11  # slots 0.0 .. 1.0
    # slot k shows the first source frame at or after k/10 s: check by the frames' grey levels
    levels = even.frames[:, 0, 0, 0].astype(int)
    src = [(i * 37) % 256 for i in (0, 1, 3, 3, 3, 5, 6, 6, 6, 6, 7)]
    assert np.all(np.abs(levels - src) <= 3)


def test_resample_renumbers_frames():
    from edgevc.video import Frame

    frames = [Frame(i, i / 30, np.zeros((1, 1, 3), np.uint8)) for i in range(9)]
    out = list(resample(frames, 15))
    assert [f.index for f in out] == [0, 1, 2, 3, 4] and out[-1].pts == pytest.approx(4 / 15)


def test_source_kinds():
    assert classify_source("0") == ("camera", 0)
    assert classify_source(2) == ("camera", 2)
    assert classify_source("rtsp://127.0.0.1:8554/cam") == ("url", "rtsp://127.0.0.1:8554/cam")
    assert classify_source("file:///tmp/a.mp4") == ("file", "/tmp/a.mp4")
    assert classify_source("clips/a.mp4") == ("file", "clips/a.mp4")


def test_camera_that_cannot_open_is_a_clear_error():
    with pytest.raises(VideoError, match="camera 97 could not be opened"):
        open_source(97)
