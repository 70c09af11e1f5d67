"""A strict model registry: every entry carries its specs and its numbers as data.

Each family file ends with short entry points::

    @register_model(ModelInfo(name="x3d_xs", family="x3d", ...))
    def x3d_xs(num_classes: int = 400, **kw) -> nn.Module:
        return _create_x3d("x3d_xs", num_classes=num_classes, **kw)

A duplicate name raises at import; an unknown name gets "did you mean" and the
list. The numbers in :class:`ModelInfo` (params, MACs, published figures) are
recomputed by ``tests/test_model_numbers.py``, which fails on drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgevc.errors import UnknownNameError
from edgevc.spec import AggSpec, ClipSpec, PreprocSpec


@dataclass(frozen=True)
class Published:
    """A figure from a paper or model zoo, with where it comes from.

    ``macs`` is in multiply-adds per clip at ``input`` (T, H, W); when the
    source states FLOPs, ``convention`` says whether it means MACs.
    ``note`` explains any gap between it and what edgevc computes.
    """

    source: str
    params: int | None = None
    macs: float | None = None
    input: tuple[int, int, int] | None = None
    convention: str = "multiply-adds"
    note: str = ""


@dataclass(frozen=True)
class ModelInfo:
    """Everything known about one zoo entry, as data.

    ``params`` and ``macs`` are what edgevc's counter gives at the default
    input (``clip.num_frames`` x ``preproc.crop``) with ``num_classes``
    outputs; tests recompute them. ``weights`` names an asset in
    :mod:`edgevc.assets` (None: no offline weights). ``labels`` names a label
    set in :mod:`edgevc.models.labels` (None: numbered classes).
    """

    name: str
    family: str
    paper: str
    clip: ClipSpec
    preproc: PreprocSpec
    num_classes: int
    params: int
    macs: int
    agg: AggSpec = field(default_factory=AggSpec)
    weights: str | None = None
    labels: str | None = None
    published: Published | None = None
    stream: bool = False
    notes: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int, int, int]:
        """The default input (N, C, T, H, W)."""
        return (1, 3, self.clip.num_frames, *self.preproc.crop)  # type: ignore[return-value]

    @property
    def pretrained(self) -> bool:
        return self.weights is not None


@dataclass(frozen=True)
class _Entry:
    info: ModelInfo
    builder: Callable[..., Any]


_REGISTRY: dict[str, _Entry] = {}


def register_model(info: ModelInfo) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn(num_classes=..., **kw) -> nn.Module`` under ``info.name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if info.name in _REGISTRY:
            raise ValueError(f"model '{info.name}' is registered twice ({_REGISTRY[info.name].builder.__module__} "
                             f"and {fn.__module__})")
        _REGISTRY[info.name] = _Entry(info, fn)
        return fn

    return deco


def get_entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise UnknownNameError("model", name, _REGISTRY)
    return _REGISTRY[name]


def model_info(name: str) -> ModelInfo:
    return get_entry(name).info


def list_models() -> list[str]:
    return sorted(_REGISTRY)
