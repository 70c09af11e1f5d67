"""Label sets, fetched like weights (no label file is copied into the project).

``kinetics400``: the 400 class names in alphabetical order (the output order
of DeepMind's I3D and torchvision's video models), read from torchvision's
``_meta.py`` with ``ast.literal_eval`` (never ``eval``).
"""

from __future__ import annotations

import ast
import functools

from edgevc import assets
from edgevc.errors import AssetError, UnknownNameError

LABEL_SETS = {"kinetics400": ("kinetics400_labels_src", "_KINETICS400_CATEGORIES", 400)}


@functools.cache
def get_labels(name: str) -> tuple[str, ...]:
    if name not in LABEL_SETS:
        raise UnknownNameError("label set", name, LABEL_SETS)
    asset, variable, count = LABEL_SETS[name]
    tree = ast.parse(assets.fetch(asset).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == variable for t in node.targets):
            labels = tuple(ast.literal_eval(node.value))
            if len(labels) != count or not all(isinstance(x, str) for x in labels):
                break
            return labels
    raise AssetError(f"label set '{name}': {variable} with {count} names not found in asset '{asset}'")


def numbered(num_classes: int) -> tuple[str, ...]:
    """Placeholder names for a model without a label set: ``class_0``, ``class_1``, ..."""
    return tuple(f"class_{i}" for i in range(num_classes))
