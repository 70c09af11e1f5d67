"""The built-in default artifact (i3d_k400, OpenVINO int8), exported into the cache on first use.

``edgevc demo`` and the benchmarks call this; the torch-free runtime only reads the folder
(:mod:`edgevc.runtime.defaults`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def ensure_default_artifact(log: Callable[[str], None] | None = print, threads: int | None = None) -> Path:
    """The default artifact's folder, exported first if missing; a parity miss is logged, not fatal."""
    from edgevc.export.driver import export_model
    from edgevc.runtime.defaults import (
        DEFAULT_MODEL,
        DEFAULT_PRECISION,
        DEFAULT_TARGET,
        default_artifact_dir,
        default_artifact_ready,
    )

    out = default_artifact_dir()
    if default_artifact_ready(out):
        return out
    say = log or (lambda _msg: None)
    say(f"first use: exporting {DEFAULT_MODEL} to {DEFAULT_TARGET} {DEFAULT_PRECISION} into {out}")
    result = export_model(DEFAULT_MODEL, DEFAULT_TARGET, DEFAULT_PRECISION, out=out, if_missing=True,
                          threads=threads, log=log)
    if not result.ok and result.verify is not None:
        say(f"warning: the default artifact is over a parity tolerance ({'; '.join(result.verify.failures())}); "
            f"running it anyway")
    return out
