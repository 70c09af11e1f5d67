"""Video lists (folder per class, CSV, Kinetics CSV) and clip datasets whose eval path is the device path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgevc.data.datasets import (
    AugmentSpec,
    ClipDataset,
    augment_frames,
    eval_collate,
    hflip_permutation,
    train_indices,
)
from edgevc.data.lists import csv_list, folder_list
from edgevc.data.synth import LABELS, BenchConfig, make_bench
from edgevc.errors import EdgevcError, SpecError
from edgevc.sampling import eval_clips, preprocess
from edgevc.spec import ClipSpec, PreprocSpec
from edgevc.video import read_video

TINY = BenchConfig(name="tiny", size=32, frames=8, train_per_class=2, test_per_class=1,
                   train_sources=("bbb_720p", "carphone"), test_sources=("bikes",), textures_per_source=8,
                   texture_short=64, pan=(6.0, 12.0))
CLIP = ClipSpec(num_frames=4, mode="strided", stride=1)
PRE = PreprocSpec(crop=(24, 24), resize_short=28, mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225))
SWAP = (("pan_left", "pan_right"), ("rotate_cw", "rotate_ccw"))


@pytest.fixture(scope="module")
def bench():
    return make_bench(TINY)


def test_folder_list_takes_classes_from_subfolders_in_the_given_order(bench, tmp_path):
    videos = folder_list(bench.split_dir("train"), LABELS)
    assert videos.labels == LABELS and len(videos) == 16
    assert all(videos.labels[r.label] == r.path.parent.name for r in videos.records)
    assert folder_list(bench.split_dir("train")).labels == tuple(sorted(LABELS))  # default: sorted names
    with pytest.raises(EdgevcError, match="unknown label 'pan_left'; did you mean 'pan_lft'"):
        folder_list(bench.split_dir("train"), tuple(x.replace("pan_left", "pan_lft") for x in LABELS))
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(EdgevcError, match="no videos found"):
        folder_list(tmp_path)


def test_csv_list_reads_path_label_rows_relative_to_its_folder(bench):
    videos = csv_list(bench.csv("test"), labels=LABELS)
    assert len(videos) == 8 and videos.counts() == dict.fromkeys(LABELS, 1)
    assert videos.records[0].path == bench.root / "test" / "pan_right" / "00000.mp4"


def test_kinetics_csv_finds_files_by_youtube_id_and_times_and_can_skip_missing(bench, tmp_path):
    src = bench.split_dir("train") / "zoom_in" / "00000.mp4"
    (tmp_path / "k400" / "train" / "zoom in").mkdir(parents=True)
    (tmp_path / "k400" / "train").joinpath("abc_000010_000020.mp4").write_bytes(src.read_bytes())
    shutil.copy(src, tmp_path / "k400" / "train" / "zoom in" / "def_000001_000011.mp4")
    rows = ["label,youtube_id,time_start,time_end,split",
            "zoom in,abc,10,20,train", "zoom in,def,1,11,train", "zoom out,gone,0,10,train"]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(EdgevcError, match="1 of 3 listed videos not found"):
        csv_list(tmp_path / "train.csv", root=tmp_path / "k400")
    videos = csv_list(tmp_path / "train.csv", root=tmp_path / "k400", missing="skip")
    assert videos.labels == ("zoom in", "zoom out") and videos.missing == ("gone",)
    assert [r.path.name for r in videos.records] == ["abc_000010_000020.mp4", "def_000001_000011.mp4"]
    (tmp_path / "bad.csv").write_text("file,class\nx.mp4,a\n")
    with pytest.raises(EdgevcError, match="unrecognised CSV header"):
        csv_list(tmp_path / "bad.csv")


def test_eval_items_are_the_device_path_clip_for_clip(bench):
    videos = folder_list(bench.split_dir("test"), LABELS)
    ds = ClipDataset(videos, CLIP, PRE, train=False, num_clips=3)
    clips, label = ds[5]
    frames = read_video(videos.records[5].path).frames
    expected = np.concatenate([preprocess(frames[idx], PRE) for idx in eval_clips(CLIP, len(frames), 3)])
    assert label == videos.records[5].label and clips.shape == (3, 3, 4, 24, 24)
    np.testing.assert_array_equal(clips.numpy(), expected)  # bit for bit
    batch, labels, counts = eval_collate([ds[0], ds[1]])
    assert batch.shape == (6, 3, 4, 24, 24) and counts.tolist() == [3, 3]
    assert labels.tolist() == [videos.records[0].label, videos.records[1].label]


def test_train_path_without_augmentation_equals_the_eval_preprocessing(bench):
    frames = read_video(bench.split_dir("train") / "rotate_cw" / "00001.mp4").frames
    idx = train_indices(CLIP, len(frames), np.random.default_rng(0), 0.2)
    x, flipped = augment_frames(frames[idx], PRE, AugmentSpec(), np.random.default_rng(1))
    assert not flipped
    np.testing.assert_array_equal(x, preprocess(frames[idx], PRE))


def test_train_offsets_cover_every_window_that_fits_and_stay_inside_the_video():
    rng = np.random.default_rng(0)
    spec = ClipSpec(num_frames=8, mode="strided", stride=2)  # span 15
    starts = {int(train_indices(spec, 24, rng, 0.2)[0]) for _ in range(400)}
    assert starts == set(range(10))
    short = train_indices(spec, 9, rng, 0.2)  # shorter than a window: clamped, like the device
    assert short.max() == 8 and len(short) == 8
    for mode in ("uniform", "segment"):
        s = ClipSpec(num_frames=4, mode=mode)
        for _ in range(100):
            idx = train_indices(s, 20, rng, 0.25)
            assert len(idx) == 4 and 0 <= idx.min() and idx.max() <= 19 and np.all(np.diff(idx) >= 0)
            assert idx[-1] - idx[0] >= 12  # a window of >= 15 of the 20 frames (segment: 13 - 1)


def test_hflip_mirrors_the_frames_and_swaps_only_the_named_pairs(bench):
    perm = hflip_permutation(AugmentSpec(hflip=1.0, hflip_swap=SWAP), LABELS)
    assert [LABELS[i] for i in perm] == ["pan_right", "pan_left", "pan_up", "pan_down", "zoom_in", "zoom_out",
                                         "rotate_ccw", "rotate_cw"]
    frames = read_video(bench.split_dir("train") / "pan_left" / "00000.mp4").frames[:4]
    x, flipped = augment_frames(frames, PRE, AugmentSpec(hflip=1.0, hflip_swap=SWAP), np.random.default_rng(0))
    assert flipped
    np.testing.assert_allclose(x, preprocess(np.ascontiguousarray(frames[:, :, ::-1]), PRE), atol=1e-5)
    videos = folder_list(bench.split_dir("train"), LABELS)
    ds = ClipDataset(videos, CLIP, PRE, train=True, augment=AugmentSpec(hflip=1.0, hflip_swap=SWAP))
    i = next(k for k, r in enumerate(videos.records) if LABELS[r.label] == "pan_left")
    assert LABELS[ds[i][1]] == "pan_right"
    with pytest.raises(EdgevcError, match="hflip_swap.*did you mean 'rotate_cw'"):
        hflip_permutation(AugmentSpec(hflip=0.5, hflip_swap=(("rotate_cv", "rotate_ccw"),)), LABELS)


def test_train_items_are_reproducible_per_epoch_and_change_between_epochs(bench):
    videos = folder_list(bench.split_dir("train"), LABELS)
    aug = AugmentSpec(scale=(0.7, 1.0), brightness=0.2, contrast=0.2, saturation=0.2)
    a = ClipDataset(videos, CLIP, PRE, train=True, augment=aug, seed=3)
    b = ClipDataset(videos, CLIP, PRE, train=True, augment=aug, seed=3)
    x0, y0 = a[2]
    assert x0.shape == (3, 4, 24, 24) and y0 == videos.records[2].label
    np.testing.assert_array_equal(x0.numpy(), b[2][0].numpy())
    a.set_epoch(1)
    assert not np.array_equal(x0.numpy(), a[2][0].numpy())


def test_augment_spec_is_strict():
    with pytest.raises(SpecError, match="scale"):
        AugmentSpec(scale=(0.5, 1.2))
    with pytest.raises(SpecError, match="unknown key; did you mean 'hflip'"):
        AugmentSpec.from_dict({"hflp": 0.5})
    assert not AugmentSpec().active and AugmentSpec(brightness=0.1).active


def test_datasets_decode_through_edgevc_video_at_the_clip_fps(bench, monkeypatch):
    import edgevc.video

    seen = []
    real = edgevc.video.read_video

    def spy(path, **kw):
        seen.append(kw.get("fps"))
        return real(path, **kw)

    monkeypatch.setattr(edgevc.video, "read_video", spy)
    videos = folder_list(bench.split_dir("test"), LABELS)
    ClipDataset(videos, ClipSpec(num_frames=4, fps=12.5), PRE, train=False)[0]
    assert seen == [12.5]
    assert Path(videos.records[0].path).suffix == ".mp4"
