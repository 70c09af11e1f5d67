"""Clip scores -> a video or stream decision, and top-k.

:class:`Aggregator` is fed clip logits one at a time (a stream); offline
classification of a video feeds the same class with all its clips, so the
two agree by construction.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from edgevc.spec import AggSpec


def activate(logits: np.ndarray, activation: str) -> np.ndarray:
    """Scores from logits along the last axis: a stable softmax, a sigmoid, or the logits as they are."""
    x = np.asarray(logits, dtype=np.float64)
    if activation == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    return x


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    score: float

    def to_dict(self) -> dict:
        return {"label": self.label, "score": round(float(self.score), 6)}


def topk(scores: np.ndarray, labels: tuple[str, ...] | list[str], k: int = 5) -> list[Prediction]:
    """The ``k`` best classes, highest first; ties broken by the lower class index."""
    scores = np.asarray(scores).reshape(-1)
    if len(labels) != scores.size:
        raise ValueError(f"{len(labels)} labels for {scores.size} scores")
    order = np.lexsort((np.arange(scores.size), -scores))[:k]
    return [Prediction(labels[i], int(i), float(scores[i])) for i in order]


class Aggregator:
    """Running decision over clips: ``update(logits)`` returns the aggregated scores so far."""

    def __init__(self, spec: AggSpec) -> None:
        self.spec = spec
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._state: np.ndarray | None = None
        self._recent: deque[np.ndarray] = deque(maxlen=self.spec.window)

    def update(self, logits: np.ndarray) -> np.ndarray:
        p = activate(np.asarray(logits).reshape(-1), self.spec.activation)
        self.count += 1
        method = self.spec.method
        if method == "window":
            self._recent.append(p)
            return np.mean(self._recent, axis=0)
        if self._state is None:
            self._state = p.copy()
        elif method == "mean":
            self._state += (p - self._state) / self.count
        elif method == "max":
            np.maximum(self._state, p, out=self._state)
        else:  # ema
            self._state = self.spec.alpha * p + (1.0 - self.spec.alpha) * self._state
        return self._state.copy()

    @property
    def scores(self) -> np.ndarray | None:
        if self.spec.method == "window":
            return np.mean(self._recent, axis=0) if self._recent else None
        return None if self._state is None else self._state.copy()


def aggregate(clip_logits: np.ndarray, spec: AggSpec) -> np.ndarray:
    """Offline: the decision after all clips (N, K) of a video, as a stream would reach it."""
    agg = Aggregator(spec)
    out = None
    for row in np.asarray(clip_logits).reshape(len(clip_logits), -1):
        out = agg.update(row)
    if out is None:
        raise ValueError("no clips to aggregate")
    return out
