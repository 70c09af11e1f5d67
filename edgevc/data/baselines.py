"""Order-blind baselines: what a benchmark gives away without temporal modelling.

- ``single_frame``: a linear classifier (ridge regression onto one-hot
  targets) fit on single frames of the train split, scored on ONE random
  frame per test video. On a benchmark that measures temporal modelling
  and nothing else this is at chance (1 / classes).
- ``mean``: the mean of the features of ALL frames of a video (order
  thrown away). The motion kind (pan, zoom, rotation) may leak through the
  set of frames, the direction cannot: at most 2 / classes beyond chance
  when pairs are told apart perfectly.

Features: ``pixels`` (numpy: an 8x8 antialiased thumbnail per channel,
channel mean and std, a 12-bin gradient-orientation histogram, edge
density and log gradient energy: cheap, and sensitive to the scale, tilt
and blur a generator could leak) or ``mobilenet_v2`` (the frozen ImageNet
MobileNetV2's pooled 1280 features; needs torch and the offline weights).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from edgevc.data.lists import VideoList


@dataclass(frozen=True)
class BaselineResult:
    name: str
    features: str
    train_top1: float
    test_top1: float
    chance: float
    n_train: int
    n_test: int

    def to_dict(self) -> dict:
        return asdict(self)


def pixel_features(frame: np.ndarray) -> np.ndarray:
    """A 211-dim description of one uint8 RGB frame (see the module docstring)."""
    from edgevc.sampling import resize_crop

    x = frame.astype(np.float32)
    thumb = resize_crop(x, 8, (8, 8)).reshape(-1) / 255.0 if min(x.shape[:2]) > 8 else np.zeros(192)
    stats = np.concatenate([x.mean(axis=(0, 1)), x.std(axis=(0, 1))]) / 255.0
    y = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    gx, gy = np.diff(y, axis=1)[:-1], np.diff(y, axis=0)[:, :-1]
    mag = np.hypot(gx, gy)
    ang = np.mod(np.arctan2(gy, gx), np.pi)
    hist = np.bincount(np.minimum((ang / np.pi * 12).astype(int), 11).ravel(), mag.ravel(), minlength=12)
    hist = hist / max(hist.sum(), 1e-6)
    extra = [np.mean(mag > 8.0), np.log1p(np.mean(mag))]
    return np.concatenate([thumb, stats, hist, extra]).astype(np.float32)


def mobilenet_extractor(batch: int = 32) -> Callable[[np.ndarray], np.ndarray]:
    """Frames (N, H, W, 3) uint8 -> (N, 1280) pooled features of the frozen ImageNet MobileNetV2."""
    import torch

    from edgevc.assets import fetch
    from edgevc.models.layers.mobilenet_v2 import MobileNetV2
    from edgevc.models.weights import load_into, load_torch_state_dict

    net = MobileNetV2()
    load_into(net, load_torch_state_dict(fetch("mobilenet_v2_imagenet")), source="mobilenet_v2_imagenet")
    net.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def run(frames: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(frames), batch):
                x = torch.from_numpy(frames[i:i + batch]).permute(0, 3, 1, 2).float() / 255.0
                out.append(net.features((x - mean) / std).mean(dim=(2, 3)).numpy())
        return np.concatenate(out)

    return run


def _video_features(videos: VideoList, kind: str, rng: np.random.Generator,
                    frames_per_video: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per video: features of ``frames_per_video`` evenly spaced frames (V, F, D), one random pick (V,), labels."""
    from edgevc.video import read_video

    extract = mobilenet_extractor() if kind == "mobilenet_v2" else (
        lambda fr: np.stack([pixel_features(f) for f in fr]))
    feats, picks, y = [], [], []
    for rec in videos.records:
        frames = read_video(rec.path).frames
        spread = np.linspace(0, len(frames) - 1, frames_per_video).round().astype(int)
        feats.append(extract(frames[spread]))
        picks.append(int(rng.integers(frames_per_video)))
        y.append(rec.label)
    return np.stack(feats), np.asarray(picks), np.asarray(y)


def fit_linear(x: np.ndarray, y: np.ndarray, num_classes: int, ridge: float = 1.0) -> tuple[np.ndarray, ...]:
    """A linear classifier: ridge regression onto one-hot targets, on standardised features (closed form).

    Returns (weights, bias, feature mean, feature std); predict with :func:`predict_linear`.
    """
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mu) / sd
    target = np.eye(num_classes)[y] - 1.0 / num_classes
    w = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ target)
    return w, np.zeros(num_classes), mu, sd


def predict_linear(model: tuple[np.ndarray, ...], x: np.ndarray) -> np.ndarray:
    w, b, mu, sd = model
    return np.argmax(((x - mu) / sd) @ w + b, axis=1)


def run_baselines(train: VideoList, test: VideoList, features: str = "pixels", seed: int = 0,
                  frames_per_video: int = 8) -> list[BaselineResult]:
    """The single-frame and order-blind mean baselines (fit on ``train``, scored on ``test``).

    Single frame: fit on every sampled frame of every training video (each
    labelled with its video's class: the strongest use of the data), then
    classify each test video from one random frame. Mean: one mean feature
    vector per video on both sides.
    """
    if features not in ("pixels", "mobilenet_v2"):
        raise ValueError(f"features must be 'pixels' or 'mobilenet_v2', got {features!r}")
    if train.labels != test.labels:
        raise ValueError("train and test lists have different label sets")
    k = len(train.labels)
    rng = np.random.default_rng(seed)
    ftr, _, ytr = _video_features(train, features, rng, frames_per_video)
    fte, pick, yte = _video_features(test, features, rng, frames_per_video)
    single = fit_linear(ftr.reshape(-1, ftr.shape[-1]), np.repeat(ytr, ftr.shape[1]), k)
    one = fte[np.arange(len(fte)), pick]
    mean = fit_linear(ftr.mean(axis=1), ytr, k)
    tr_one = ftr[:, 0]
    return [
        BaselineResult("single_frame", features, float(np.mean(predict_linear(single, tr_one) == ytr)),
                       float(np.mean(predict_linear(single, one) == yte)), 1.0 / k, len(ytr), len(yte)),
        BaselineResult("mean", features, float(np.mean(predict_linear(mean, ftr.mean(axis=1)) == ytr)),
                       float(np.mean(predict_linear(mean, fte.mean(axis=1)) == yte)), 1.0 / k, len(ytr), len(yte)),
    ]
