"""Export to edge runtimes: one target per module in ``edgevc.export.targets``."""

from __future__ import annotations

from edgevc.plugins import load_plugin, plugin_names

TARGETS_PACKAGE = "edgevc.export.targets"


def available_targets() -> list[str]:
    return plugin_names(TARGETS_PACKAGE)


def get_target(name: str):
    return load_plugin(TARGETS_PACKAGE, name, "export target").TARGET
