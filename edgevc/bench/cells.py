"""The artifacts a bench times: exported on demand, cached by model, target, precision and input.

``prepare_cell("x3d_s", "openvino", "int8", frames=13, size=160, ...)`` returns
a :class:`Cell` for the artifact folder ``CACHE/x3d_s-openvino-int8-13x160``
(``CACHE`` defaults to ``$EDGEVC_CACHE/bench/artifacts``). A matching,
verified artifact there is reused (:func:`edgevc.export.driver.export_model`
with ``if_missing``, which re-checks every file's sha256); a cached artifact
whose verification failed is reported as failed without exporting it again;
anything else is exported and verified. A failed export or verification
never raises: the cell is failed with the first line of the reason.

The parity figures are those of the artifact's ``verify.json`` (one row
per runtime configuration: the profile's options, then each variant such
as OpenVINO's default precision), so :func:`configs` lists what the bench
should time: every configuration verify ran, with its options and figures.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgevc.bench.measure import first_line
from edgevc.errors import EdgevcError
from edgevc.spec import META_FILENAME, ArtifactMeta

VERIFY_FILENAME = "verify.json"


@dataclass
class Cell:
    """One target x precision: its artifact folder (or why there is none) and its verification."""

    target: str
    precision: str
    folder: Path | None = None
    meta: ArtifactMeta | None = None
    verify: dict[str, Any] | None = None
    error: str | None = None          # export failed / not possible: the row's reason
    cannot_run: str | None = None     # the artifact exists but this machine cannot execute it
    size_bytes: int | None = None
    export_seconds: float | None = None
    reused: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return bool(self.verify and self.verify.get("passed"))

    def failures(self) -> list[str]:
        return list(self.verify.get("failures", [])) if self.verify else []


@dataclass(frozen=True)
class Config:
    """One runtime configuration of a cell that verify ran: name, options, parity figures on real clips."""

    name: str
    options: dict[str, Any]
    runs_as: str
    passed: bool | None
    failures: tuple[str, ...]
    real: dict[str, Any] | None       # the figures of the (name, real) verify row
    rel_l2_limit: float | None


def cell_dir(cache: Path, model: str, target: str, precision: str, frames: int, size: int,
             weights_sha: str | None = None) -> Path:
    """``CACHE/<model>-<target>-<precision>-<T>x<S>`` (``-w<sha[:10]>`` appended for custom weights)."""
    suffix = f"-w{weights_sha[:10]}" if weights_sha else ""
    return Path(cache) / f"{model}-{target}-{precision}-{frames}x{size}{suffix}"


def prepare_cell(model: str, target: str, precision: str, frames: int, size: int, cache: Path,
                 threads: int | None = None, weights: str | Path | None = None, verify_clips: int = 32,
                 random_clips: int = 4, calib_clips: int | None = None, sources: Sequence[str] | None = None,
                 log: Callable[[str], None] | None = None) -> Cell:
    """Export (or reuse) one cell; see the module docstring. Never raises for a failed export."""
    from edgevc.export import get_target

    cell = Cell(target, precision)
    try:
        tgt = get_target(target)
    except EdgevcError as err:
        cell.error = first_line(err)
        return cell
    if precision not in tgt.precisions:
        cell.error = f"{target} writes {', '.join(tgt.precisions)}, not {precision}"
        return cell
    weights_sha = _weights_sha(weights)
    out = cell_dir(cache, model, target, precision, frames, size, weights_sha)
    try:
        if _cached_failure(cell, out, model, frames, size, weights_sha):
            pass
        else:
            _export(cell, out, model, frames, size, threads, weights, verify_clips, random_clips, calib_clips,
                    sources, log)
    except Exception as err:  # noqa: BLE001 -- one failing cell must not stop the bench
        cell.error = f"export failed: {first_line(err)}" if not isinstance(err, EdgevcError) else first_line(err)
        if log:
            log(f"edgevc bench: {model} {target} {precision}: {cell.error}")
        return cell
    if hasattr(tgt, "cannot_run"):
        cell.cannot_run = tgt.cannot_run()
    return cell


def _weights_sha(weights: str | Path | None) -> str | None:
    if weights is None:
        return None
    from edgevc.assets import sha256_file

    path = Path(weights).expanduser()
    if path.is_dir():  # an edgevc train run folder: its weights file
        from edgevc.export.from_run import WEIGHTS_FILE, run_folder

        path = run_folder(path) / WEIGHTS_FILE
    if not path.is_file():
        raise EdgevcError(f"weights file not found: '{path}'",
                          hint="pass a torch state dict or an edgevc train run folder (--weights PATH)")
    return sha256_file(path)


def _cached_failure(cell: Cell, out: Path, model: str, frames: int, size: int, weights_sha: str | None) -> bool:
    """A cached artifact of exactly this cell whose verification failed: report it, do not re-export."""
    if not (out / META_FILENAME).is_file() or not (out / VERIFY_FILENAME).is_file():
        return False
    try:
        meta = ArtifactMeta.load(out)
        verify = json.loads((out / VERIFY_FILENAME).read_text())
    except (EdgevcError, ValueError, OSError):
        return False
    same = (meta.model == model and meta.target == cell.target and meta.precision == cell.precision
            and meta.clip.num_frames == frames and tuple(meta.preproc.crop) == (size, size)
            and (weights_sha is None or meta.weights_sha256 == weights_sha))
    if not same or verify.get("passed", False):
        return False
    _fill(cell, out, meta, verify, reused=True)
    return True


def _export(cell: Cell, out: Path, model: str, frames: int, size: int, threads: int | None,
            weights: str | Path | None, verify_clips: int, random_clips: int, calib_clips: int | None,
            sources: Sequence[str] | None, log: Callable[[str], None] | None) -> None:
    from edgevc.export.driver import export_model

    kw = dict(weights=weights, frames=frames, size=size, out=out, threads=threads, verify_clips=verify_clips,
              random_clips=random_clips, calib_clips=calib_clips, calib=list(sources) if sources else None,
              verify_sources=list(sources) if sources else None, log=log)
    if out.exists() and not (out / META_FILENAME).is_file():
        shutil.rmtree(out)  # an export killed half-way in our own cache: start again
    try:
        result = export_model(model, cell.target, cell.precision, if_missing=True, **kw)
    except EdgevcError as err:
        if not (out / META_FILENAME).is_file() or "holds another export" not in err.message:
            raise
        result = export_model(model, cell.target, cell.precision, force=True, **kw)  # a stale cache entry
    verify = result.verify.to_dict() if result.verify is not None else _read_verify(out)
    _fill(cell, out, ArtifactMeta.load(out), verify, reused=result.reused)
    cell.export_seconds = None if result.reused else round(result.export_seconds, 2)
    cell.info = dict(result.info or {})


def _read_verify(out: Path) -> dict[str, Any] | None:
    path = out / VERIFY_FILENAME
    return json.loads(path.read_text()) if path.is_file() else None


def _fill(cell: Cell, out: Path, meta: ArtifactMeta, verify: dict[str, Any] | None, reused: bool) -> None:
    if verify is not None and "failures" not in verify:
        verify["failures"] = failures_of(verify)
    cell.folder, cell.meta, cell.verify, cell.reused = out, meta, verify, reused
    cell.size_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()
                          and p.name not in (META_FILENAME, VERIFY_FILENAME))


def failures_of(verify: dict[str, Any]) -> list[str]:
    """The failed checks of a ``verify.json`` dict, worded like :meth:`VerifyReport.failures`."""
    out = []
    for row in verify.get("rows", []):
        for c in row.get("checks", []):
            if c.get("enforced") and not c.get("passed"):
                op = ">" if c.get("bound") == "max" else "<"
                out.append(f"{row['name']}/{row['inputs']}: {c['figure']} {c['value']:.4g} {op} {c['limit']:.4g}")
    out += [f"{c.get('check')}: {c.get('detail', '')}" for c in verify.get("structural", []) if not c.get("passed")]
    return out


def configs(cell: Cell, variants: bool = True) -> list[Config]:
    """The runtime configurations verify ran on this cell (the profile's first, then its variants)."""
    verify = cell.verify or {}
    names: list[str] = []
    for row in verify.get("rows", []):
        if row["name"] not in names:
            names.append(row["name"])
    if not names:
        return [Config("artifact", {}, _runs_as(cell.precision, {}), None, tuple(cell.failures()), None, None)]
    out = []
    for name in names if variants else names[:1]:
        rows = [r for r in verify["rows"] if r["name"] == name]
        real = next((r for r in rows if r["inputs"] == "real"), rows[0])
        fails = tuple(f for f in cell.failures() if f.startswith(f"{name}/"))
        limit = next((c.get("limit") for c in real.get("checks", []) if c.get("figure") == "rel_l2"), None)
        out.append(Config(name, dict(real.get("runtime_options") or {}),
                          _runs_as(cell.precision, real.get("runtime_info") or {}),
                          all(r.get("passed", False) for r in rows), fails, real.get("figures"), limit))
    return out


def _runs_as(precision: str, runtime_info: dict[str, Any]) -> str:
    """The arithmetic a configuration runs in: ``f32``, ``bf16``, ``f16``, ``int8+f32``, ``int8+bf16``."""
    ran = str(runtime_info.get("inference_precision") or "")
    ran = {"fp32": "f32", "fp16": "f16", "int8": "", "": ""}.get(ran, ran)
    if precision == "int8":
        return f"int8+{ran}" if ran else "int8"
    return ran or {"fp32": "f32", "fp16": "f16"}.get(precision, precision)


def peak_kind(runs_as: str) -> str:
    """Which GEMM peak a configuration's GFLOP/s compares to (f16 on a CPU: fp32, none is measured for it)."""
    if runs_as.startswith("int8"):
        return "int8"
    return "bf16" if runs_as == "bf16" else "fp32"
