"""Compression recipes: YAML read into strict dataclasses, the machinery of :mod:`edgevc.train.recipe`.

A compress recipe names a trained network (an ``edgevc train`` run folder),
the targets, and how to quantize and measure it. An unknown key, a wrong
type or an out-of-range value is an error naming the dotted path and, for a
misspelt key, the closest valid one::

    recipes/x.yaml: invalid field 'qat.stpes': unknown key; did you mean 'steps'?

The run's ``train.json`` supplies ``model``, ``clip``, ``preproc``, ``agg``,
``data`` and ``augment`` (what the network was trained with); keys given in
the compress recipe are merged over them, key by key (``data: {workers: 2}``
keeps the run's benchmark). Without a run, ``source.weights`` names a state
dict and ``model`` is required, with ``clip``/``preproc``/``agg`` merged onto
the zoo entry's as in a training recipe. A minimal recipe::

    source: {run: runs/bench_x3d_xs}
    targets: [openvino, executorch]
    qat: {steps: 300}
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgevc.data.datasets import AugmentSpec
from edgevc.errors import EdgevcError, SpecError, did_you_mean
from edgevc.spec import AggSpec, ClipSpec, PreprocSpec, _check, _Spec
from edgevc.train.recipe import DataSection, ModelSection, Recipe, read_yaml, with_model_specs

# the targets compress knows how to quantize by training (NNCF for the first two, PT2E/XNNPACK for the last)
TARGETS: tuple[str, ...] = ("openvino", "onnx", "executorch")
RUN_RECIPE = "train.json"
RUN_WEIGHTS = "model.pt"
_FROM_RUN = ("model", "clip", "preproc", "agg", "data", "augment")


@dataclass(frozen=True)
class SourceSection(_Spec):
    """The trained network: ``run`` (an ``edgevc train`` output folder) and/or ``weights`` (default RUN/model.pt)."""

    run: str | None = None
    weights: str | None = None

    def validate(self) -> None:
        _check(bool(self.run) or bool(self.weights), self, "run", "neither 'run' nor 'weights' is set",
               "an 'edgevc train' output folder, or a state dict in 'weights' (with a 'model' section)")

    def weights_path(self) -> Path:
        return Path(self.weights) if self.weights else Path(self.run or ".") / RUN_WEIGHTS


@dataclass(frozen=True)
class PTQSection(_Spec):
    """Post-training int8: ``calib_clips`` clips, one from each of as many TRAINING videos (classes in turn).

    The same clips initialise the quantization ranges of QAT, so PTQ and QAT start from one calibration.
    """

    calib_clips: int = 32

    def validate(self) -> None:
        _check(1 <= self.calib_clips <= 10_000, self, "calib_clips", f"got {self.calib_clips}", "1..10000")


@dataclass(frozen=True)
class QATSection(_Spec):
    """Quantization-aware fine-tuning: AdamW, cosine from ``lr`` to ``lr * min_lr_ratio`` over ``steps``.

    ``budget_minutes`` stops each QAT run after that much training time (the cosine then runs on time,
    as in ``edgevc train``). ``freeze_bn``: BatchNorm keeps its running statistics (a short fine-tune
    on small batches would wreck them); ExecuTorch's QAT graph is captured in eval mode, so it is
    always frozen there. ``threads``: torch threads (default: the recipe's ``threads``).
    ``observer_steps`` (ExecuTorch's PT2E QAT): the fake-quantizers' moving-average observers follow
    the data for this many steps, then their ranges are frozen and only the weights train (PyTorch's
    QAT recipe: "freeze quantizer parameters"); ``null`` keeps them observing throughout. NNCF's
    quantizers learn their ranges by gradient instead, so it does not apply there.
    """

    steps: int = 300
    batch_size: int = 8
    lr: float = 1e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    min_lr_ratio: float = 0.01
    budget_minutes: float | None = None
    threads: int | None = None
    freeze_bn: bool = True
    seed: int = 0
    log_every: int = 10
    observer_steps: int | None = 20

    def validate(self) -> None:
        _check(self.observer_steps is None or 1 <= self.observer_steps, self, "observer_steps",
               f"got {self.observer_steps} (the observers must see data before their ranges freeze)", "null or >= 1")
        _check(1 <= self.steps <= 1_000_000, self, "steps", f"got {self.steps}", "1..1000000")
        _check(1 <= self.batch_size <= 4096, self, "batch_size", f"got {self.batch_size}", "1..4096")
        _check(0 < self.lr < 10, self, "lr", f"got {self.lr}", "0 < lr < 10")
        _check(self.weight_decay >= 0, self, "weight_decay", f"got {self.weight_decay}", ">= 0")
        _check(0 <= self.warmup_steps < self.steps, self, "warmup_steps", f"got {self.warmup_steps}",
               "0 <= warmup_steps < steps")
        _check(0 <= self.min_lr_ratio <= 1, self, "min_lr_ratio", f"got {self.min_lr_ratio}", "0..1")
        _check(self.budget_minutes is None or self.budget_minutes > 0, self, "budget_minutes",
               f"got {self.budget_minutes}", "null or > 0")
        _check(self.threads is None or 1 <= self.threads <= 256, self, "threads", f"got {self.threads}",
               "null or 1..256")
        _check(self.log_every >= 1, self, "log_every", f"got {self.log_every}", ">= 1")


@dataclass(frozen=True)
class EvalSection(_Spec):
    """Top-1 of every artifact through ``edgevc.runtime`` on the held-out split.

    Each video gives ``clips_per_video`` clips (:func:`edgevc.sampling.eval_clips`) aggregated with the
    artifact's ``agg``. ``runtime_options``: ``profile`` runs each artifact with its device profile's
    runtime options (OpenVINO: ``INFERENCE_PRECISION_HINT f32``), ``default`` with none (OpenVINO then
    runs the fp32 parts in bf16 on a bf16 CPU).
    """

    clips_per_video: int = 3
    runtime_options: str = "profile"

    def validate(self) -> None:
        _check(1 <= self.clips_per_video <= 100, self, "clips_per_video", f"got {self.clips_per_video}", "1..100")
        _check(self.runtime_options in ("profile", "default"), self, "runtime_options",
               f"got {self.runtime_options!r}", "'profile' or 'default'")


@dataclass(frozen=True)
class VerifySection(_Spec):
    """The export's parity check of each artifact against the fp32 torch model, on ``clips`` TRAINING clips."""

    enabled: bool = True
    clips: int = 16
    random_clips: int = 2

    def validate(self) -> None:
        _check(1 <= self.clips <= 10_000, self, "clips", f"got {self.clips}", "1..10000")
        _check(0 <= self.random_clips <= 100, self, "random_clips", f"got {self.random_clips}", "0..100")


@dataclass(frozen=True)
class CompressRecipe(_Spec):
    """A whole compress recipe (see the module docstring)."""

    source: SourceSection
    model: ModelSection
    clip: ClipSpec
    preproc: PreprocSpec
    agg: AggSpec = field(default_factory=AggSpec)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    targets: tuple[str, ...] = ("openvino", "executorch", "onnx")
    ptq: PTQSection = field(default_factory=PTQSection)
    qat: QATSection = field(default_factory=QATSection)
    eval: EvalSection = field(default_factory=EvalSection)
    verify: VerifySection = field(default_factory=VerifySection)
    threads: int = 2
    out: str | None = None

    def validate(self) -> None:
        for i, name in enumerate(self.targets):
            if name not in TARGETS:
                close = did_you_mean(name, TARGETS)
                raise SpecError(f"{getattr(self, '_path', '')}targets[{i}]",
                                f"unknown target '{name}'" + (f"; did you mean '{close}'?" if close else ""),
                                ", ".join(TARGETS))
        _check(len(set(self.targets)) == len(self.targets) and len(self.targets) > 0, self, "targets",
               f"got {list(self.targets)}", "one or more distinct targets")
        _check("executorch" not in self.targets or self.qat.freeze_bn, self, "qat",
               "freeze_bn: false with target executorch", "freeze_bn: true (ExecuTorch's QAT graph is captured "
               "in eval mode, BatchNorm frozen)")
        _check(1 <= self.threads <= 256, self, "threads", f"got {self.threads}", "1..256")

    def as_train_recipe(self) -> Recipe:
        """The training view (model, specs, data, augmentation) that :mod:`edgevc.train` functions take."""
        return Recipe(model=self.model, clip=self.clip, preproc=self.preproc, agg=self.agg, data=self.data,
                      augment=self.augment)


def deep_merge(base: Any, over: Any) -> Any:
    """``over`` merged into ``base`` key by key (mappings recursively; anything else replaces)."""
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return copy.deepcopy(over)
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if key in out else copy.deepcopy(value)
    return out


def read_run(run: str | Path) -> dict[str, Any]:
    """The ``train.json`` of an ``edgevc train`` output folder."""
    path = Path(run) / RUN_RECIPE
    if not path.is_file():
        raise EdgevcError(f"source.run: no {RUN_RECIPE} in '{run}'",
                          hint="point source.run at a folder written by 'edgevc train' (model.pt + train.json)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise EdgevcError(f"'{path}' is not valid JSON: {err}") from None


def compress_recipe_from_dict(raw: Any, source: str = "<recipe>") -> CompressRecipe:
    """Validate a parsed recipe, filling model/specs/data from the run (see the module docstring)."""
    if not isinstance(raw, dict):
        raise EdgevcError(f"{source}: a compress recipe is a mapping of sections, got {type(raw).__name__}",
                          hint="start from recipes/tiny_compress.yaml")
    raw = copy.deepcopy(raw)
    try:
        src = SourceSection.from_dict(raw.get("source", {}), path="source.")
        if src.run:
            base = read_run(src.run).get("recipe") or {}
            for key in _FROM_RUN:
                if key in base:
                    raw[key] = deep_merge(base[key], raw.get(key) or {})
        raw = with_model_specs(raw, "a mapping with 'name' (or source.run, whose train.json names the model)")
        return CompressRecipe.from_dict(raw)
    except EdgevcError as err:
        raise EdgevcError(f"{source}: {err.message}", hint=err.hint) from None


def load_compress_recipe(path: str | Path, overrides: list[str] | None = None) -> CompressRecipe:
    """Read and validate a YAML compress recipe (``overrides``: ``["qat.steps=20"]``, values as YAML)."""
    return compress_recipe_from_dict(read_yaml(path, overrides, "recipes/compress_*.yaml"), source=str(path))
