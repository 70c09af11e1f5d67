"""The uniform export step: one function for every target, timed, checked, verified, with next steps.

``export_model("i3d_k400", "openvino", "int8")``:

1. resolve the target or device profile (tolerances, threads, input size);
2. refuse an existing, non-empty ``out`` unless ``force`` (or reuse a
   matching artifact with ``if_missing``); never overwrite silently;
3. build the model: the entry's offline weights when it has them, a state
   dict with ``weights``, else random init whose BatchNorm statistics are
   set from real clips (:func:`~edgevc.export.calib.calibrate_bn`);
4. fill :class:`~edgevc.spec.ArtifactMeta` (specs adapted to ``frames`` and
   ``size``; a stream model exports ``forward_step`` with explicit state);
5. run the target (int8 calibrates on real-video clips), check every file
   is non-empty, record the sha256 of every file in ``edgevc.json``;
6. verify through the artifact's own runtime (:mod:`edgevc.export.verify`),
   write ``verify.json``; a figure over the profile's limit makes the result
   fail, but the artifact stays for inspection;
7. log one line and print the next commands (run, bench).
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgevc.errors import EdgevcError
from edgevc.export import calib as calib_mod
from edgevc.export.base import ExportJob
from edgevc.export.prepare import REFERENCE_CACHE, adapt_specs, build_meta, build_model, weights_sha256
from edgevc.export.profiles import Resolved, resolve
from edgevc.export.verify import VERIFY_FILENAME, VerifyReport
from edgevc.spec import META_FILENAME, AggSpec, ArtifactMeta, ClipSpec, PreprocSpec

DEFAULT_MODEL = "i3d_k400"


@dataclass
class ExportResult:
    """What one export produced; ``ok`` is False when verification found a figure over its limit."""

    model: str
    target: str
    precision: str
    profile: str | None
    out: Path
    model_file: str
    size_bytes: int
    export_seconds: float
    reused: bool = False
    verify: VerifyReport | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verify is None or self.verify.passed

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "target": self.target, "precision": self.precision, "profile": self.profile,
                "out": str(self.out), "model_file": self.model_file, "size_bytes": self.size_bytes,
                "export_seconds": round(self.export_seconds, 2), "reused": self.reused, "ok": self.ok,
                "info": self.info, "verify": self.verify.to_dict() if self.verify else None,
                "next": next_commands(self.out)}


@dataclass
class PreparedModel:
    """A network the caller built, exported instead of building ``model_name`` from the zoo.

    For a fine-tuned classifier (``edgevc train``: its own classes, clip and
    preprocessing) and for a network quantized by training (``edgevc compress``).
    ``model`` is what the target converts; ``reference`` the fp32 torch model
    verification compares the artifact with (default: ``model``). ``quantized``:
    ``model`` already holds its int8 quantization (fake-quantize ops with
    trained ranges), so an int8 target converts it as it is instead of
    calibrating and quantizing again. ``clip``, ``preproc``, ``labels`` and
    ``agg`` are what the model was trained with and go into ``edgevc.json``
    (``agg`` default: the zoo entry's); ``macs_per_clip`` replaces the zoo
    count (another head size). Stream models are not supported here.
    """

    model: Any
    clip: ClipSpec
    preproc: PreprocSpec
    labels: tuple[str, ...]
    agg: AggSpec | None = None
    reference: Any = None
    quantized: bool = False
    macs_per_clip: int | None = None
    note: str = ""


def next_commands(out: Path) -> list[str]:
    return [f"edgevc run {out} --source CLIP", f"edgevc bench {out}"]


def export_model(model_name: str | None = DEFAULT_MODEL, target_or_profile: str = "openvino",
                 precision: str | None = None,
                 weights: str | Path | None = None, frames: int | None = None, size: int | None = None,
                 calib: str | Sequence[str] | None = None, out: str | Path | None = None, force: bool = False,
                 verify: bool = True, threads: int | None = None, *, if_missing: bool = False,
                 verify_clips: int = 32, random_clips: int = 4, calib_clips: int | None = None,
                 verify_sources: Sequence[str] | None = None, prepared: PreparedModel | None = None,
                 export_options: dict[str, Any] | None = None,
                 log: Callable[[str], None] | None = print) -> ExportResult:
    """Export ``model_name`` to a target or device profile; see the module docstring for the steps.

    ``calib`` names the videos int8 calibration cuts its ``calib_clips`` from, ``verify_sources`` those
    the ``verify_clips`` real verification clips come from (both default to the four real videos of
    :data:`edgevc.export.calib.DEFAULT_SOURCES`). ``prepared``: export that network (a
    :class:`PreparedModel`, with its own specs) instead of building ``model_name``; ``weights``
    then only names the file whose sha256 goes into ``edgevc.json``. ``export_options`` are merged over
    the profile's (``None`` removes one: ``{"accuracy_control_rel_l2": None}`` is plain PTQ).
    """
    import dataclasses

    from edgevc.export import get_target
    from edgevc.export.support import require
    from edgevc.models import model_info

    say = log or (lambda _msg: None)
    if prepared is None and weights is not None:
        from edgevc.export.from_run import check_head, prepared_from_run, run_folder

        run = run_folder(weights)
        if run is not None:
            model_name, prepared, weights = prepared_from_run(model_name, run)
        else:
            model_name = model_name or DEFAULT_MODEL
            check_head(model_name, weights, model_info(model_name).num_classes)
    model_name = model_name or DEFAULT_MODEL
    info = model_info(model_name)
    res = resolve(target_or_profile, precision)
    if export_options:
        merged = {**(res.profile.export_options or {}), **export_options}
        res = dataclasses.replace(res, profile=dataclasses.replace(
            res.profile, export_options={k: v for k, v in merged.items() if v is not None}))
    profile = res.profile
    frames, size = frames or profile.frames, size or profile.size
    threads = threads or profile.threads
    clip, preproc = ((prepared.clip, prepared.preproc) if prepared is not None
                     else adapt_specs(info.clip, info.preproc, frames, size))
    out = Path(out) if out is not None else default_out(model_name, res, frames, size)
    weights_sha = weights_sha256(info, weights)
    if _prepare_out(out, force, if_missing, model_name, res, clip, preproc, weights_sha):
        return _reused(out, say)
    target = get_target(res.target)
    require(target.requires, f"export to {res.target}")
    gap = profile.gap(model_name, res.precision)
    if gap:
        say(f"known gap ({res.profile_name}): {model_name} {res.precision}: {gap.reason}")
    sources = _sources(calib)
    with _torch_threads(threads):
        t0 = time.perf_counter()
        if prepared is None:
            model, trained, prep = build_model(model_name, weights, clip, preproc)
            meta = build_meta(model_name, model, clip, preproc, res, weights_sha)
        else:
            model, trained, prep, meta = _from_prepared(prepared, model_name, res, weights, weights_sha)
        job = _job(model, meta, out, res, sources, calib_clips or profile.calib_clips, threads,
                   job_model=prepared.model if prepared is not None else None,
                   prequantized=prepared is not None and prepared.quantized, trained=trained)
        model_file = _run_target(target, job, out, model)
        meta = _finish(out, meta, model_file)
        seconds = time.perf_counter() - t0
        result = ExportResult(model_name, res.target, res.precision, res.profile_name, out, model_file,
                              _size(out), seconds, info=job.info)
        say(f"edgevc export: {model_name} -> {res.target} {res.precision}"
            f"{f' (profile {res.profile_name})' if res.profile_name else ''} in {seconds:.1f} s: "
            f"{out} ({result.size_bytes / 1e6:.1f} MB)")
        for key, value in job.info.items():
            say(f"  {key}: {value.get('answer', value) if isinstance(value, dict) else value}")
        if verify:
            result.verify = run_verification(out, model, meta, res, trained, verify_clips, random_clips,
                                             threads, prep, job.info, target, _sources(verify_sources), seconds)
            say(result.verify.table())
            say(f"verification {'passed' if result.verify.passed else 'FAILED: ' + '; '.join(result.verify.failures())}"
                f" ({result.verify.seconds:.1f} s, {out / VERIFY_FILENAME})")
    say("next:\n" + "\n".join(f"  {c}" for c in next_commands(out)))
    return result


# ---- the export job ----------------------------------------------------------------------------

def _from_prepared(prepared: PreparedModel, name: str, res: Resolved, weights: str | Path | None,
                   weights_sha: str | None) -> tuple[Any, bool, dict[str, Any], ArtifactMeta]:
    """(reference model, trained, preparation record, metadata) for a :class:`PreparedModel`."""
    reference = prepared.reference if prepared.reference is not None else prepared.model
    if hasattr(reference, "init_state"):
        raise EdgevcError(f"'{name}' is a stream model: exporting a prepared network supports clip models only")
    meta = build_meta(name, reference, prepared.clip, prepared.preproc, res, weights_sha)
    changes: dict[str, Any] = {"labels": tuple(prepared.labels)}
    if prepared.agg is not None:
        changes["agg"] = prepared.agg
    if prepared.macs_per_clip is not None:
        changes["macs_per_clip"] = int(prepared.macs_per_clip)
    prep = {"weights": str(weights) if weights is not None else "a network built by the caller",
            "prepared": prepared.note or "a network built by the caller",
            "prequantized": prepared.quantized}
    return reference.eval(), True, prep, meta.replace(**changes)


def _job(model: Any, meta: ArtifactMeta, out: Path, res: Resolved, sources: Sequence[str], calib_clips: int,
         threads: int | None, job_model: Any = None, prequantized: bool = False, trained: bool = True) -> ExportJob:
    """The target's job; ``job_model`` (default: ``model``) is converted, ``prequantized`` skips calibration.

    A profile's ``accuracy_control_rel_l2`` applies to trained clip models only: a random-init network's
    logits carry no decision to protect (its int8 check is a loose relative L2 bound), and a stream model's
    error compounds through its state, so neither pays for the search; the job's info says it was skipped.
    """
    import torch

    from edgevc.export.stream import StepModule

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(meta.input_shape, generator=gen)
    if meta.stateful:
        job_model, example = StepModule(copy.deepcopy(model)).eval(), (x, *model.init_state(1, meta.input_shape[-2:]))
    else:
        job_model, example = copy.deepcopy(model if job_model is None else job_model).eval(), (x,)
    calib = None
    if res.precision == "int8":
        count = max(2, calib_clips // 4) if meta.stateful else calib_clips
        clips = calib_mod.RealClips(meta.clip, meta.preproc, count, sources, phase=0.0)
        calib = _StreamItems(model, clips) if meta.stateful else (lambda: iter(clips))
    options = {**(res.profile.export_options or {}), "threads": threads}
    if prequantized:
        options["prequantized"] = True
    info: dict[str, Any] = {"export_options": dict(res.profile.export_options or {})}
    if options.get("accuracy_control_rel_l2") is not None and (not trained or meta.stateful or calib is None):
        why = ("no calibration (a pre-quantized model)" if calib is None else
               "a stream model" if meta.stateful else "random-init weights")
        info["accuracy_control"] = {"skipped": why, "answer": f"not run: {why}"}
        options.pop("accuracy_control_rel_l2")
    if calib is not None and meta.stateful:
        from edgevc.export.stream import accumulating_states

        grow = accumulating_states(model, next(iter(clips)))
        options["float_inputs"] = [meta.state[i].name for i in grow]
    return ExportJob(job_model, example, meta, out, res.precision, calib=calib, options=options, info=info)


class _StreamItems:
    """``calib()`` for a stream model: (frame, *state) for every frame of the clips, the state carried by
    the fp32 model; computed once (eager PyTorch steps are slow) and replayed on later passes."""

    def __init__(self, model: Any, clips: calib_mod.RealClips) -> None:
        self.model, self.clips = model, clips
        self.items: list[tuple[np.ndarray, ...]] | None = None

    def __call__(self) -> Iterator[tuple[np.ndarray, ...]]:
        import torch

        if self.items is None:
            items = []
            with torch.no_grad():
                for clip in self.clips:
                    state = self.model.init_state(1, input_size=tuple(clip.shape[-2:]))
                    for frame in calib_mod.split_frames(clip):
                        items.append((frame, *(s.numpy().copy() for s in state)))
                        _, state = self.model.forward_step(torch.from_numpy(frame), state)
            self.items = items
        return iter(self.items)


def _run_target(target: Any, job: ExportJob, out: Path, model: Any) -> str:
    from edgevc.export.support import explain_failure

    out.mkdir(parents=True, exist_ok=True)
    try:
        model_file = target.export(job)
    except EdgevcError:
        shutil.rmtree(out, ignore_errors=True)
        raise
    except Exception as err:
        shutil.rmtree(out, ignore_errors=True)
        explained = explain_failure(err, target.name, job.model, job.example)
        if explained is not None:
            raise explained from err
        raise
    path = out / model_file
    if not path.exists() or _size(path) == 0:
        raise EdgevcError(f"export to {target.name} wrote no model: '{path}' is missing or empty",
                          hint="this is a bug in the target; the folder is left for inspection")
    return model_file


def _finish(out: Path, meta: ArtifactMeta, model_file: str) -> ArtifactMeta:
    from edgevc.assets import sha256_file

    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if rel in (META_FILENAME, VERIFY_FILENAME):
            continue
        if path.stat().st_size == 0:
            raise EdgevcError(f"export wrote an empty file: '{path}'", hint="the folder is left for inspection")
        files[rel] = sha256_file(path)
    meta = meta.replace(model_file=model_file, files=files)
    meta.save(out)
    return meta


def run_verification(out: Path, model: Any, meta: ArtifactMeta, res: Resolved, trained: bool, verify_clips: int,
                     random_count: int, threads: int | None, prep: dict[str, Any],
                     target_info: dict[str, Any], target: Any = None,
                     sources: Sequence[str] = calib_mod.DEFAULT_SOURCES,
                     export_seconds: float | None = None) -> VerifyReport:
    from edgevc.export.verify import verify_artifact

    real = calib_mod.RealClips(meta.clip, meta.preproc, verify_clips, sources, phase=0.5)
    noise = calib_mod.random_clips(meta.clip, meta.preproc, random_count, seed=1)
    cache = REFERENCE_CACHE.setdefault(model, {})
    keys = {"real": ("real", tuple(real.refs)), "random": ("random", random_count, 1)}
    report = verify_artifact(out, model, meta, res.profile, real, noise, trained, threads, res.profile_name,
                             target=target, ref_cache=cache, ref_keys=keys)
    report.preparation, report.target_info, report.export_seconds = prep, target_info, export_seconds
    report.save(out)
    return report


# ---- the output folder -------------------------------------------------------------------------

def default_out(name: str, res: Resolved, frames: int | None, size: int | None) -> Path:
    tag = res.profile_name or f"{res.target}-{res.precision}"
    suffix = f"-{frames or ''}x{size or ''}" if (frames or size) else ""
    return Path("artifacts") / f"{name}-{tag}{suffix}"


FAILED_VERIFICATION = "its verification failed"


def _prepare_out(out: Path, force: bool, if_missing: bool, name: str, res: Resolved, clip: ClipSpec,
                 preproc: PreprocSpec, weights_sha: str | None) -> bool:
    """True: reuse the artifact in ``out``; False: ``out`` is free (emptied with ``force``). Else raise."""
    if out.exists() and not out.is_dir():
        raise EdgevcError(f"--out '{out}' is a file", hint="pass a folder path")
    if not out.exists() or not any(out.iterdir()):
        return False
    is_artifact = (out / META_FILENAME).is_file()
    if if_missing and is_artifact and not force:
        mismatch = _mismatch(out, name, res, clip, preproc, weights_sha)
        if mismatch is None:
            return True
        if mismatch == FAILED_VERIFICATION:
            raise EdgevcError(f"'{out}' holds this export, but its verification failed: it is kept for inspection, "
                              "not reused", hint=f"see {out / VERIFY_FILENAME}; pass --force to export it again "
                              "(replacing it), or another --out")
        raise EdgevcError(f"'{out}' holds another export ({mismatch})",
                          hint="pass --force to replace it, or another --out")
    if not force:
        raise EdgevcError(f"output folder '{out}' exists and is not empty",
                          hint="pass --force to replace it, --if-missing to reuse it, or another --out")
    if not is_artifact:
        raise EdgevcError(f"'{out}' is not empty and holds no {META_FILENAME}: edgevc will not delete it",
                          hint="choose another --out")
    shutil.rmtree(out)
    return False


def _mismatch(out: Path, name: str, res: Resolved, clip: ClipSpec, preproc: PreprocSpec,
              weights_sha: str | None) -> str | None:
    from edgevc.runtime import verify_files

    try:
        meta = ArtifactMeta.load(out)
        verify_files(out, meta)
    except EdgevcError as err:
        return f"unreadable: {err.message}"
    wanted = {"model": name, "target": res.target, "precision": res.precision, "profile": res.profile_name,
              "clip": clip, "preproc": preproc, "weights_sha256": weights_sha}
    for key, value in wanted.items():
        if getattr(meta, key) != value:
            return f"{key} is {getattr(meta, key)!r}, requested {value!r}"
    report = out / VERIFY_FILENAME
    saved = json.loads(report.read_text()) if report.is_file() else {}
    if report.is_file() and not saved.get("passed", False):
        return FAILED_VERIFICATION
    made_with = (saved.get("target_info") or {}).get("export_options")
    wanted_options = json.loads(json.dumps(dict(res.profile.export_options or {})))
    if made_with is not None and made_with != wanted_options:  # older artifacts did not record them
        return f"it was made with export options {made_with}, the profile now says {wanted_options}"
    return None


def _reused(out: Path, say: Callable[[str], None]) -> ExportResult:
    meta = ArtifactMeta.load(out)
    say(f"edgevc export: reusing {out} ({meta.model} {meta.target} {meta.precision}, files checked)")
    say("next:\n" + "\n".join(f"  {c}" for c in next_commands(out)))
    return ExportResult(meta.model, meta.target, meta.precision, meta.profile, out, meta.model_file, _size(out),
                        0.0, reused=True)


def _sources(calib: str | Sequence[str] | None) -> list[str]:
    if calib is None:
        return list(calib_mod.DEFAULT_SOURCES)
    items = calib.split(",") if isinstance(calib, str) else list(calib)
    return [s.strip() for s in items if s.strip()]


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    import torch

    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(saved)
