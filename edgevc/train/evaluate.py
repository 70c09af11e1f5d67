"""Video-level accuracy through the device's code: ``eval_clips`` picks the clips, ``aggregate`` decides.

Each video gives ``K`` clips (:func:`edgevc.sampling.eval_clips`, built by
:class:`~edgevc.data.datasets.ClipDataset` in evaluation mode); their logits
go through :func:`edgevc.sampling.aggregate` with the recipe's ``AggSpec``,
exactly as ``edgevc run`` aggregates a stream, and the top-1 of the result
is the video's answer. Under torchrun every process takes every N-th video
and the confusion matrices are summed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from edgevc.data.datasets import ClipDataset, eval_collate
from edgevc.sampling import aggregate
from edgevc.spec import AggSpec
from edgevc.train.distributed import DistInfo, all_reduce_sum
from edgevc.train.progress import Progress


@dataclass(frozen=True)
class EvalResult:
    """Video top-1 (after aggregation), clip top-1, counts and the confusion matrix (rows: truth)."""

    video_top1: float
    clip_top1: float
    videos: int
    clips: int
    clips_per_video: int
    confusion: list[list[int]]
    labels: list[str]

    def to_dict(self) -> dict:
        return asdict(self)

    def per_class(self) -> dict[str, float]:
        m = np.asarray(self.confusion)
        return {name: float(m[i, i] / max(1, m[i].sum())) for i, name in enumerate(self.labels)}


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: ClipDataset, agg: AggSpec, info: DistInfo,
             batch_clips: int = 16, workers: int = 0, show: bool = True) -> EvalResult:
    """Accuracy of ``model`` (unwrapped, not DDP) on ``dataset`` (evaluation mode), summed over processes."""
    was_training = model.training
    model.eval()
    k = len(dataset.videos.labels)
    per_video = max(1, batch_clips // max(1, dataset.num_clips))
    shard = Subset(dataset, list(range(info.rank, len(dataset), info.world)))
    loader = DataLoader(shard, batch_size=per_video, shuffle=False, num_workers=workers, collate_fn=eval_collate)
    confusion = torch.zeros(k, k, dtype=torch.int64)
    counts = torch.zeros(2, dtype=torch.int64)  # clips right, clips seen
    bar = Progress(len(loader), "eval", enabled=info.main and show)
    for clips, labels, per in loader:
        logits = model(clips.to(info.device)).float().cpu()
        start = 0
        for label, n in zip(labels.tolist(), per.tolist(), strict=True):
            clip_logits = logits[start:start + n].numpy()
            start += n
            pred = int(np.argmax(aggregate(clip_logits, agg)))
            confusion[label, pred] += 1
            counts[0] += int((clip_logits.argmax(axis=1) == label).sum())
            counts[1] += n
        bar.update(1, acc=float(confusion.trace()) / max(1, int(confusion.sum())))
    bar.close()
    all_reduce_sum(info, confusion)
    all_reduce_sum(info, counts)
    model.train(was_training)
    videos = int(confusion.sum())
    return EvalResult(
        video_top1=float(confusion.trace()) / max(1, videos), clip_top1=int(counts[0]) / max(1, int(counts[1])),
        videos=videos, clips=int(counts[1]), clips_per_video=round(int(counts[1]) / max(1, videos)),
        confusion=confusion.tolist(), labels=list(dataset.videos.labels))
