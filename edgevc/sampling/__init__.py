"""Numpy-only sampling core, shared by training and the device: which frames, which pixels, which decision.

Nothing here imports torch (a test checks ``sys.modules``).
"""

from edgevc.sampling.aggregate import Aggregator, Prediction, activate, aggregate, topk
from edgevc.sampling.indices import (
    FpsResampler,
    clip_indices,
    eval_clips,
    resample_indices,
    stream_clips,
    window_offsets,
    window_starts,
)
from edgevc.sampling.preprocess import assemble, preprocess, preprocess_frame, resize_crop
from edgevc.sampling.window import StreamingWindow, WindowClip

__all__ = [
    "Aggregator", "FpsResampler", "Prediction", "StreamingWindow", "WindowClip", "activate", "aggregate",
    "assemble", "clip_indices", "eval_clips", "preprocess", "preprocess_frame", "resample_indices",
    "resize_crop", "stream_clips", "topk", "window_offsets", "window_starts",
]
