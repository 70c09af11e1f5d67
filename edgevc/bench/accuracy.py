"""Video-level top-1 on a labelled split, through the device's code path, for every row of a bench.

Torch-free: the same steps as :mod:`edgevc.train.evaluate` without a
DataLoader -- each video is decoded at the clip's fps
(:func:`edgevc.video.read_video`), cut into ``num_clips`` evenly spaced
clips (:func:`edgevc.sampling.eval_clips`), preprocessed with
:mod:`edgevc.sampling`, run through every row's ``call(clip) -> logits``,
and the clips' logits aggregated with the artifact's ``AggSpec``
(:func:`edgevc.sampling.aggregate`); the top-1 of the result is the video's
answer. Each video is decoded and preprocessed once for all rows.

Classes are matched by name: the split's folder names must be among the
model's labels (a Kinetics-400 model cannot be scored on the 8 motion
classes of the temporal benchmark; the row then says why instead of a
number).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgevc.errors import EdgevcError
from edgevc.spec import AggSpec, ClipSpec, PreprocSpec


@dataclass(frozen=True)
class Accuracy:
    """Video top-1 (after aggregation) and clip top-1 of one row on one split."""

    video_top1: float
    clip_top1: float
    videos: int
    clips: int


def resolve_split(data: str | Path) -> Path:
    """``bench`` (or ``bench:test`` / ``bench:train``): the temporal benchmark's split; else a folder."""
    text = str(data)
    if text.split(":")[0] == "bench":
        from edgevc.data.synth import make_bench

        split = text.partition(":")[2] or "test"
        return make_bench().split_dir(split)
    path = Path(text).expanduser()
    if not path.is_dir():
        raise EdgevcError(f"--data '{data}' is not a folder", hint="a split in the UCF101 layout "
                          "(root/<class name>/<video>), or 'bench' for the temporal benchmark's test split")
    return path


def label_map(split_labels: tuple[str, ...], model_labels: tuple[str, ...]) -> np.ndarray | str:
    """Split class index -> model output index, or why the split cannot be scored with this model."""
    index = {name: i for i, name in enumerate(model_labels)}
    missing = [n for n in split_labels if n not in index]
    if missing:
        return (f"the split's classes ({', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}) are not "
                f"among the model's {len(model_labels)} labels")
    return np.array([index[n] for n in split_labels], dtype=np.int64)


def video_clips(path: Path, clip: ClipSpec, preproc: PreprocSpec, num_clips: int) -> list[np.ndarray]:
    """The evaluation clips of one video, preprocessed (each used frame once)."""
    from edgevc.sampling import assemble, eval_clips, preprocess_frame
    from edgevc.video import read_video

    frames = read_video(path, fps=clip.fps).frames
    picks = eval_clips(clip, len(frames), num_clips)
    done: dict[int, np.ndarray] = {}
    out = []
    for idx in picks:
        for i in idx:
            if int(i) not in done:
                done[int(i)] = preprocess_frame(frames[int(i)], preproc)
        out.append(assemble(np.stack([done[int(i)] for i in idx]), preproc))
    return out


def evaluate_rows(calls: Mapping[str, Callable[[np.ndarray], Any]], data: str | Path, clip: ClipSpec,
                  preproc: PreprocSpec, agg: AggSpec, labels: tuple[str, ...], num_clips: int = 3,
                  max_videos: int | None = None, log: Callable[[str], None] | None = None
                  ) -> tuple[dict[str, Accuracy | str], dict[str, Any]]:
    """Each row's accuracy on the split (or why none), and a description of the split."""
    from edgevc.data.lists import folder_list
    from edgevc.sampling import aggregate

    root = resolve_split(data)
    videos = folder_list(root)
    mapping = label_map(videos.labels, labels)
    about = {"split": str(root), "videos": len(videos), "classes": len(videos.labels), "clips_per_video": num_clips}
    if isinstance(mapping, str):
        return dict.fromkeys(calls, mapping), about
    records = list(videos.records)[:max_videos] if max_videos else list(videos.records)
    right = dict.fromkeys(calls, 0)
    clip_right = dict.fromkeys(calls, 0)
    errors: dict[str, str] = {}
    clips_seen = 0
    for n, rec in enumerate(records):
        clips = video_clips(rec.path, clip, preproc, num_clips)
        clips_seen += len(clips)
        truth = int(mapping[rec.label])
        for name, call in calls.items():
            if name in errors:
                continue
            try:
                logits = np.concatenate([np.asarray(call(c)).reshape(1, -1) for c in clips])
            except Exception as err:  # noqa: BLE001 -- a row that fails here is reported, the rest go on
                errors[name] = f"failed on '{rec.path.name}': {str(err).splitlines()[0][:160]}"
                continue
            right[name] += int(int(np.argmax(aggregate(logits, agg))) == truth)
            clip_right[name] += int((logits.argmax(axis=1) == truth).sum())
        if log and (n + 1) % 50 == 0:
            log(f"edgevc bench: accuracy, {n + 1}/{len(records)} videos")
    about["videos"] = len(records)
    out: dict[str, Accuracy | str] = {}
    for name in calls:
        out[name] = errors.get(name) or Accuracy(right[name] / max(1, len(records)),
                                                 clip_right[name] / max(1, clips_seen), len(records), clips_seen)
    return out, about
