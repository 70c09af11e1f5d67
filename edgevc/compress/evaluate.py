"""Top-1 of an exported artifact on a labelled split, through ``edgevc.runtime`` (numpy only, no torch).

This is the device's path, call for call, and the one
:class:`~edgevc.data.datasets.ClipDataset` takes in evaluation mode: decode
with :func:`edgevc.video.read_video` at the artifact's ``clip.fps``, take
:func:`~edgevc.sampling.eval_clips`, turn each frame into input with
:func:`~edgevc.sampling.preprocess_frame` and :func:`~edgevc.sampling.assemble`,
run the artifact, and aggregate the clips' logits with the artifact's ``agg``
(:func:`~edgevc.sampling.aggregate`): the top-1 of the result is the video's
answer. Every spec comes from the artifact's ``edgevc.json``, none from the
recipe, so a wrong spec in the artifact shows up as lost accuracy.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgevc.data.lists import VideoList
from edgevc.errors import EdgevcError


@dataclass
class ArtifactAccuracy:
    """Video top-1 (after aggregation) and clip top-1 of one artifact; ``predictions``: per video, in order."""

    video_top1: float
    clip_top1: float
    videos: int
    clips_per_video: int
    confusion: list[list[int]]
    predictions: list[int]
    seconds: float
    runtime_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def video_clips(path: str | Path, meta: Any, clips_per_video: int) -> np.ndarray:
    """The ``clips_per_video`` evaluation clips of one video, preprocessed for ``meta``: (K, *input_shape[1:])."""
    from edgevc.sampling import assemble, eval_clips, preprocess_frame
    from edgevc.video import read_video

    frames = read_video(path, fps=meta.clip.fps).frames
    out = []
    for idx in eval_clips(meta.clip, len(frames), clips_per_video):
        out.append(assemble(np.stack([preprocess_frame(f, meta.preproc) for f in frames[idx]]), meta.preproc))
    return np.concatenate(out)


def evaluate_artifact(folder: str | Path, videos: VideoList, clips_per_video: int = 3, threads: int | None = None,
                      options: dict[str, Any] | None = None) -> ArtifactAccuracy:
    """Open ``folder`` with :func:`edgevc.runtime.load` and measure it on ``videos`` (see the module docstring)."""
    from edgevc.runtime import load
    from edgevc.sampling import aggregate

    t0 = time.perf_counter()
    model = load(folder, threads=threads, options=options)
    meta = model.meta
    if meta.stateful:
        raise EdgevcError(f"'{folder}' is a stream model: compress measures clip models only")
    if tuple(meta.labels) != tuple(videos.labels):
        raise EdgevcError(f"'{folder}' has labels {list(meta.labels)[:4]}..., the split {list(videos.labels)[:4]}...",
                          hint="evaluate on the split the network was trained for")
    k = len(videos.labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    clips_right = clips_seen = 0
    predictions = []
    for rec in videos.records:
        batch = video_clips(rec.path, meta, clips_per_video)
        logits = np.concatenate([model.infer(batch[i:i + 1]) for i in range(batch.shape[0])])
        pred = int(np.argmax(aggregate(logits, meta.agg)))
        predictions.append(pred)
        confusion[rec.label, pred] += 1
        clips_right += int((logits.argmax(axis=1) == rec.label).sum())
        clips_seen += logits.shape[0]
    n = len(videos.records)
    return ArtifactAccuracy(
        video_top1=float(np.trace(confusion)) / max(1, n), clip_top1=clips_right / max(1, clips_seen), videos=n,
        clips_per_video=round(clips_seen / max(1, n)), confusion=confusion.tolist(), predictions=predictions,
        seconds=round(time.perf_counter() - t0, 2), runtime_options=dict(options or {}))
