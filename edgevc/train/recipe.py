"""Training recipes: YAML files read into strict dataclasses (the machinery of :mod:`edgevc.spec`).

An unknown key, a wrong type or an out-of-range value is an error naming the
dotted path and, for a misspelt key, the closest valid one::

    recipes/x.yaml: invalid field 'optim.lrr': unknown key; did you mean 'lr'?

``clip``, ``preproc`` and ``agg`` start from the model's registry entry and
the recipe's keys override them, so ``preproc: {crop: [112, 112]}`` keeps
the model's mean and std. A minimal recipe::

    model: {name: x3d_xs}
    data: {kind: bench}
    train: {epochs: 10, batch_size: 8}

``load_recipe(path, overrides=["optim.lr=0.01"])`` applies ``--set`` style
overrides (values parsed as YAML) before validation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgevc.data.datasets import AugmentSpec
from edgevc.data.synth import BenchConfig
from edgevc.errors import EdgevcError, SpecError
from edgevc.spec import AggSpec, ClipSpec, PreprocSpec, _check, _Spec


@dataclass(frozen=True)
class ModelSection(_Spec):
    """A zoo model; ``pretrained``: false, true (the entry's offline weights) or a state-dict path.

    ``kwargs`` go to the model's entry point (e.g. ``{dropout: 0.2}``); whoever
    rebuilds the model from the weights (export, compress) passes them too.
    ``zero_init_residual`` (training from scratch only) starts every residual
    block as the identity by zeroing its last BatchNorm scale.
    """

    name: str
    pretrained: bool | str = False
    kwargs: dict[str, int | float | bool | str] = field(default_factory=dict)
    zero_init_residual: bool = False

    def validate(self) -> None:
        _check(not (self.zero_init_residual and self.pretrained is not False), self, "zero_init_residual",
               "would erase the pretrained weights", "false when 'pretrained' is set")


@dataclass(frozen=True)
class DataSection(_Spec):
    """Where the videos come from.

    ``kind: bench``: the temporal benchmark of :mod:`edgevc.data.synth`, generated
    from ``bench`` into ``root`` (default: the edgevc cache) on first use.
    ``kind: folder``: ``train`` and ``test`` are folders with one sub-folder per
    class. ``kind: csv``: they are CSV lists, paths relative to ``root`` (default:
    the CSV's folder). ``labels``: a file with the class order (default: sorted names).
    """

    kind: Literal["bench", "folder", "csv"] = "bench"
    bench: BenchConfig = field(default_factory=BenchConfig)
    root: str | None = None
    train: str | None = None
    test: str | None = None
    labels: str | None = None
    missing: Literal["error", "skip"] = "error"
    workers: int = 0

    def validate(self) -> None:
        if self.kind != "bench":
            _check(bool(self.train) and bool(self.test), self, "train",
                   f"kind '{self.kind}' needs both 'train' and 'test'", "paths to the two splits")
        _check(0 <= self.workers <= 64, self, "workers", f"got {self.workers}", "0..64")


@dataclass(frozen=True)
class OptimSection(_Spec):
    """AdamW with a linear warmup then a cosine decay to ``lr * min_lr_ratio`` (per step)."""

    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, ...] = (0.9, 0.999)
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    label_smoothing: float = 0.0
    grad_clip: float | None = None

    def validate(self) -> None:
        _check(0 < self.lr < 10, self, "lr", f"got {self.lr}", "0 < lr < 10")
        _check(self.weight_decay >= 0, self, "weight_decay", f"got {self.weight_decay}", ">= 0")
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), self, "betas",
               f"got {list(self.betas)}", "[beta1, beta2] in [0, 1)")
        _check(self.warmup_epochs >= 0, self, "warmup_epochs", f"got {self.warmup_epochs}", ">= 0")
        _check(0 <= self.min_lr_ratio <= 1, self, "min_lr_ratio", f"got {self.min_lr_ratio}", "0..1")
        _check(0 <= self.label_smoothing < 1, self, "label_smoothing", f"got {self.label_smoothing}", "0 <= x < 1")
        _check(self.grad_clip is None or self.grad_clip > 0, self, "grad_clip", f"got {self.grad_clip}",
               "null or > 0")


@dataclass(frozen=True)
class TrainSection(_Spec):
    """The loop. ``batch_size`` is per process (the global batch is times the process count).

    ``bn``: ``batch`` (BatchNorm as usual), ``frozen`` (running statistics fixed,
    for fine-tuning with tiny batches), ``sync`` (SyncBatchNorm across processes:
    GPUs only). ``threads``: torch threads per process (default: torch's choice).
    ``eval_every``: also evaluate on the test split every N epochs (0: only at the end).
    ``budget_minutes``: stop training after this much training time (the
    final evaluation follows); the cosine schedule then runs on time, so it
    still ends. ``epochs`` stays the upper bound. ``channels_last``: keep the
    model and its 5-D clips in ``torch.channels_last_3d``. Measured on 2 CPU
    cores with x3d_xs (4 clips of 8x112²): one process with 2 threads, a
    step takes 0.75 s instead of 1.10 s (depthwise 3x3x3 convolutions are
    2.5-4x faster that way); under 2-process DDP with 1 thread each it was
    slower (DDP's gradient buckets keep the default layout and copy).
    ``sizes``: progressive crop sizes, the long cycle of multigrid training
    (Wu et al., "A Multigrid Method for Efficiently Training Video Models",
    CVPR 2020, used for X3D in PySlowFast): ``[[side, share], ...]`` trains at
    ``side``² crops for ``share`` of the schedule (its time budget, or its
    steps), switching at epoch starts; the field of view stays the same
    (``resize_short`` scales with the side). The last side must be the
    recipe's crop, so the network ends on what it is evaluated and exported
    at. Smaller clips make cheaper steps: more of them in the same budget.
    """

    epochs: int = 10
    batch_size: int = 8
    seed: int = 0
    threads: int | None = None
    bn: Literal["batch", "frozen", "sync"] = "batch"
    eval_clips: int = 3
    eval_every: int = 0
    checkpoint_every: int = 1
    log_every: int = 10
    budget_minutes: float | None = None
    channels_last: bool = False
    sizes: tuple[tuple[float, ...], ...] = ()

    def validate(self) -> None:
        _check(all(len(p) == 2 and p[0] == int(p[0]) and 16 <= p[0] <= 4096 and p[1] > 0 for p in self.sizes),
               self, "sizes", f"got {[list(p) for p in self.sizes]}",
               "[[side, share], ...]: sides 16..4096, shares > 0")
        _check(not self.sizes or abs(sum(p[1] for p in self.sizes) - 1.0) < 1e-6, self, "sizes",
               f"shares sum to {sum(p[1] for p in self.sizes):g}", "shares that sum to 1")
        _check(self.budget_minutes is None or self.budget_minutes > 0, self, "budget_minutes",
               f"got {self.budget_minutes}", "null or > 0")
        _check(1 <= self.epochs <= 10_000, self, "epochs", f"got {self.epochs}", "1..10000")
        _check(1 <= self.batch_size <= 4096, self, "batch_size", f"got {self.batch_size}", "1..4096")
        _check(self.threads is None or 1 <= self.threads <= 256, self, "threads", f"got {self.threads}",
               "null or 1..256")
        _check(1 <= self.eval_clips <= 100, self, "eval_clips", f"got {self.eval_clips}", "1..100")
        _check(self.eval_every >= 0, self, "eval_every", f"got {self.eval_every}", ">= 0")
        _check(self.checkpoint_every >= 1, self, "checkpoint_every", f"got {self.checkpoint_every}", ">= 1")
        _check(self.log_every >= 1, self, "log_every", f"got {self.log_every}", ">= 1")


@dataclass(frozen=True)
class Recipe(_Spec):
    """A whole training recipe (see the module docstring)."""

    model: ModelSection
    clip: ClipSpec
    preproc: PreprocSpec
    agg: AggSpec = field(default_factory=AggSpec)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    out: str | None = None

    def validate(self) -> None:
        sizes = self.train.sizes
        if sizes and (int(sizes[-1][0]), int(sizes[-1][0])) != tuple(self.preproc.crop):
            raise SpecError("train.sizes", f"the last side is {int(sizes[-1][0])}, the crop is "
                            f"{list(self.preproc.crop)}", f"end on the crop: [..., [{self.preproc.crop[0]}, share]] "
                            "(square crops only)")

    def crop_at(self, progress: float) -> PreprocSpec:
        """The preprocessing of training clips at this point of the schedule (``train.sizes``; 0..1)."""
        acc, side = 0.0, None
        for s, share in self.train.sizes:
            acc += share
            if progress < acc - 1e-9:
                side = int(s)
                break
        if side is None:
            return self.preproc
        crop = self.preproc.crop[0]
        short = self.preproc.resize_short
        return self.preproc.replace(crop=(side, side),
                                    resize_short=None if short is None else max(side, round(short * side / crop)))


_FROM_MODEL = ("clip", "preproc", "agg")


def recipe_from_dict(raw: Any, source: str = "<recipe>") -> Recipe:
    """Validate a parsed recipe; ``clip``/``preproc``/``agg`` are merged onto the model's defaults."""
    if not isinstance(raw, dict):
        raise EdgevcError(f"{source}: a recipe is a mapping of sections, got {type(raw).__name__}",
                          hint="start from recipes/tiny_ci.yaml")
    raw = copy.deepcopy(raw)
    try:
        return Recipe.from_dict(with_model_specs(raw, "a mapping with 'name' (see 'edgevc models')"))
    except EdgevcError as err:
        raise EdgevcError(f"{source}: {err.message}", hint=err.hint) from None


def with_model_specs(raw: dict, model_hint: str) -> dict:
    """``raw`` (modified) with ``clip``/``preproc``/``agg`` merged onto the defaults of the model it names.

    Shared by training and compress recipes; raises :class:`SpecError` for a
    missing ``model`` (``model_hint`` says what to write) or a section that is
    not a mapping.
    """
    if "model" not in raw:
        raise SpecError("model", "required key is missing", model_hint)
    model = ModelSection.from_dict(raw["model"], path="model.")
    from edgevc.models import model_info

    info = model_info(model.name)
    for key in _FROM_MODEL:
        mine = raw.get(key) or {}
        if not isinstance(mine, dict):
            raise SpecError(key, f"expected a mapping, got {type(mine).__name__}")
        raw[key] = {**getattr(info, key).to_dict(), **mine}
    return raw


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """``["optim.lr=0.01", "train.epochs=2"]`` -> set into ``raw`` (values parsed as YAML)."""
    import yaml

    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise EdgevcError(f"--set '{item}': expected KEY=VALUE", hint="e.g. --set train.epochs=2")
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise EdgevcError(f"--set '{item}': '{part}' is not a section")
        node[parts[-1]] = yaml.safe_load(text)
    return raw


def read_yaml(path: str | Path, overrides: list[str] | None = None, examples: str = "recipes/") -> Any:
    """A recipe file's parsed YAML with ``--set`` overrides applied; a missing or invalid file is an EdgevcError."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise EdgevcError(f"recipe not found: '{path}'", hint=f"see {examples} for examples")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise EdgevcError(f"{path}: not valid YAML: {err}") from None
    return apply_overrides(raw or {}, overrides) if overrides else raw


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read and validate a YAML recipe file."""
    return recipe_from_dict(read_yaml(path, overrides), source=str(path))
