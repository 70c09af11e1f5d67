"""The built-in default artifact: where it lives and the one command that builds it.

The demo (``apps/demo_cam``, ``edgevc demo``) and the README's main command
run without ``--model`` on ``i3d_k400`` exported to OpenVINO int8, kept in
the edgevc cache (``$EDGEVC_CACHE`` or ``~/.cache/edgevc``)::

    ~/.cache/edgevc/artifacts/i3d_k400-openvino-int8

Building it needs the torch side once (``pip install 'edgevc[export]'``,
about a minute); running it needs only numpy and OpenVINO. Torch-free.
"""

from __future__ import annotations

from pathlib import Path

from edgevc.assets import cache_dir

DEFAULT_MODEL = "i3d_k400"
DEFAULT_TARGET = "openvino"
DEFAULT_PRECISION = "int8"


def default_artifact_dir() -> Path:
    """``cache_dir() / "artifacts" / "i3d_k400-openvino-int8"`` (it may not exist yet)."""
    return cache_dir() / "artifacts" / f"{DEFAULT_MODEL}-{DEFAULT_TARGET}-{DEFAULT_PRECISION}"


def default_artifact_ready(folder: Path | None = None) -> bool:
    """Has the default artifact been exported (its ``edgevc.json`` is there)?"""
    from edgevc.spec import META_FILENAME

    return ((folder or default_artifact_dir()) / META_FILENAME).is_file()


def export_argv(out: Path | None = None) -> list[str]:
    """The ``edgevc`` arguments that build the default artifact, reusing a matching one (``--if-missing``)."""
    return ["export", DEFAULT_MODEL, "--target", DEFAULT_TARGET, "--precision", DEFAULT_PRECISION,
            "--out", str(out or default_artifact_dir()), "--if-missing"]
