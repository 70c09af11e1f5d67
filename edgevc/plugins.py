"""Plug-in discovery by file: a new export target or runtime backend is one new module in its folder.

Names are listed from the folder without importing anything, so
``edgevc targets`` and the CLI choices never pull in OpenVINO or ExecuTorch;
a plug-in's module is imported only when it is used.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from edgevc.errors import UnknownNameError


def plugin_names(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def load_plugin(package: str, name: str, kind: str) -> ModuleType:
    names = plugin_names(package)
    if name not in names:
        raise UnknownNameError(kind, name, names)
    return importlib.import_module(f"{package}.{name}")
