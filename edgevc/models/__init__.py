"""The model zoo: ``create(name, pretrained=..., num_classes=...)`` and ``list_models()``.

One family per file (i3d, resnet3d, s3d, x3d, movinet, tsm); each registers
its entries with :func:`~edgevc.models.registry.register_model`.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from edgevc.errors import EdgevcError
from edgevc.models.registry import ModelInfo, get_entry, list_models, model_info, register_model

_FAMILIES = ("i3d", "resnet3d", "s3d", "x3d", "movinet", "tsm")

for _fam in _FAMILIES:
    if importlib.util.find_spec(f"edgevc.models.{_fam}") is not None:
        importlib.import_module(f"edgevc.models.{_fam}")


def create(name: str, pretrained: bool | str | Path = False, num_classes: int | None = None, **kwargs: Any):
    """Build a zoo model.

    ``pretrained``: False (random init), True (the entry's offline weights,
    fetched and checked on first use), or a path to a state dict (loaded
    with ``weights_only=True`` and ``strict=True``). ``num_classes`` other
    than the entry's replaces the classifier head (re-initialised).
    """
    entry = get_entry(name)
    if pretrained is True and entry.info.weights is None:
        raise EdgevcError(
            f"model '{name}' has no pretrained weights that can be fetched offline",
            hint="pass pretrained=False, or a path to your own state dict (--weights PATH)",
        )
    return entry.builder(num_classes=num_classes or entry.info.num_classes, pretrained=pretrained, **kwargs)


__all__ = ["ModelInfo", "create", "list_models", "model_info", "register_model"]
