"""``run_bench``: export what is missing, time every artifact against PyTorch eager fp32, build the report.

Steps, for ``BenchRequest(model="x3d_s", targets=("openvino", "onnx"), precisions=("fp32", "int8"))``:

1. the machine (CPU model, cores, ISA flags, load) is recorded and logged first;
2. each target x precision is exported or reused (:mod:`edgevc.bench.cells`); a failure
   becomes a failed row, never an exception;
3. every runtime configuration its ``verify.json`` lists is opened with the same
   thread count (OpenVINO's f32 hint and its default precision are two rows);
   PyTorch eager fp32 is the same model the export was verified against
   (:func:`edgevc.export.prepare.build_model`), under ``torch.inference_mode``
   with ``torch.set_num_threads(threads)``;
4. the GEMM peak is measured (:mod:`edgevc.bench.peak`), then all rows are timed
   interleaved on the same real clips (:mod:`edgevc.bench.measure`);
5. with ``data``, every row's video-level accuracy (:mod:`edgevc.bench.accuracy`);
6. rows, notes (the int8 speed-up against the 5x target and why) -> :class:`BenchReport`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgevc.bench.cells import Cell, Config, configs, peak_kind, prepare_cell
from edgevc.bench.measure import Latency, Subject, first_line, interleave, paired_speedup
from edgevc.bench.table import FAIL, OK, BenchReport, BenchRow, machine_line, speedup_note
from edgevc.errors import EdgevcError
from edgevc.spec import META_FILENAME, ArtifactMeta

PRECISIONS = ("fp32", "fp16", "int8")
# a PyTorch p90 over this many times its p50 means its threads were fighting other jobs (see _notes)
SPREAD_WARNING = 1.5


@dataclass
class BenchRequest:
    """What to bench; ``model`` is a zoo name or an artifact folder (then only that artifact is timed)."""

    model: str
    targets: tuple[str, ...] = ("all",)
    precisions: tuple[str, ...] = ("fp32", "int8")
    frames: int | None = None
    size: int | None = None
    threads: int = 2
    clips: tuple[str, ...] | None = None      # videos for timing (and verification of new exports)
    data: str | None = None                   # a labelled split for accuracy
    data_clips: int = 3
    max_videos: int | None = None
    repeats: int = 30
    warmup: int = 3
    budget_s: float | None = 600.0
    timing_clips: int = 4
    verify_clips: int = 32
    random_clips: int = 4
    calib_clips: int | None = None
    weights: str | None = None
    cache: str | None = None
    variants: bool = True
    peak: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bench_cache() -> Path:
    """Where bench exports live: ``$EDGEVC_CACHE/bench/artifacts`` (or ``~/.cache/edgevc/bench/artifacts``)."""
    from edgevc.assets import cache_dir

    return cache_dir() / "bench" / "artifacts"


def resolve_targets(targets: Sequence[str]) -> list[str]:
    """``all`` -> every registered export target; else the names, checked against the registry."""
    from edgevc.errors import UnknownNameError
    from edgevc.export import available_targets

    known = available_targets()
    if not targets or list(targets) == ["all"]:
        return known
    for t in targets:
        if t not in known:
            raise UnknownNameError("target", t, [*known, "all"])
    return list(dict.fromkeys(targets))


def resolve_precisions(precisions: Sequence[str]) -> list[str]:
    for p in precisions:
        if p not in PRECISIONS:
            raise EdgevcError(f"unknown precision '{p}'", hint=f"choose among {', '.join(PRECISIONS)}")
    return list(dict.fromkeys(precisions))


@dataclass
class _Plan:
    """The resolved model, input and cells of a request."""

    model: str
    frames: int
    size: int
    cells: list[Cell]
    clip: Any = None
    preproc: Any = None
    torch_model: Any = None
    trained: bool = False
    prep: dict[str, Any] = field(default_factory=dict)


def run_bench(req: BenchRequest, log: Callable[[str], None] | None = None) -> BenchReport:
    """Run one bench; see the module docstring."""
    from edgevc.report.machine import machine_info

    say = log or (lambda _m: None)
    if req.threads < 1:
        raise EdgevcError(f"--threads must be at least 1, got {req.threads}")
    os.environ.setdefault("OMP_NUM_THREADS", str(req.threads))
    machine = machine_info()
    say(f"edgevc bench: machine: {machine_line(machine, req.threads)}")
    plan = _plan(req, say)
    _torch_reference(plan, req)
    clips = _timing_clips(plan, req)
    subjects, rows_of = _subjects(plan, req, say)
    peak = None
    if req.peak:
        from edgevc.bench.peak import measure_peak

        peak = measure_peak(req.threads)
        say(f"edgevc bench: GEMM peak: {peak.describe()}")
    say(f"edgevc bench: timing {len(subjects)} rows, interleaved, up to {req.repeats} rounds")
    timing = interleave(subjects, clips, req.repeats, req.warmup, req.budget_s)
    accuracy, about = ({}, None)
    if req.data:
        from edgevc.bench.accuracy import evaluate_rows

        ok = {s.name: s.call for s in subjects if s.error is None}
        accuracy, about = evaluate_rows(ok, req.data, plan.clip, plan.preproc, _agg(plan), _labels(plan),
                                        req.data_clips, req.max_videos, say)
    rows = _rows(plan, subjects, rows_of, peak.to_dict() if peak else None, accuracy)
    report = BenchReport(
        model=plan.model, clip={"num_frames": plan.frames, "size": plan.size, "hop": plan.clip.stream_hop,
                                "spec": plan.clip.to_dict() if hasattr(plan.clip, "to_dict") else str(plan.clip)},
        threads=req.threads, machine=machine, peak=peak.to_dict() if peak else None, rows=rows,
        settings={**req.to_dict(), "cache": str(req.cache or bench_cache()), "accuracy_split": about},
        timing={"rounds": timing.rounds, "warmup": req.warmup, "clips": len(clips), "stopped": timing.stopped,
                "seconds": timing.seconds, "order": timing.order,
                "loadavg_1m_end": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None})
    report.notes = _notes(report, plan)
    return report


def _plan(req: BenchRequest, say: Callable[[str], None]) -> _Plan:
    folder = Path(req.model).expanduser()
    if folder.is_dir() and (folder / META_FILENAME).is_file():
        return _artifact_plan(folder)
    from edgevc.models import model_info

    info = model_info(req.model)
    clip, crop = info.clip, info.preproc.crop
    if req.weights is not None:
        from edgevc.export.from_run import run_clip, run_folder

        run = run_folder(req.weights)
        if run is not None:  # a training run: its own clip and crop, as its exports get
            clip, crop = run_clip(req.model, run)
    frames = int(req.frames or clip.num_frames)
    size = int(req.size or crop[0])
    cache = Path(req.cache).expanduser() if req.cache else bench_cache()
    cells = []
    for target in resolve_targets(req.targets):
        for precision in resolve_precisions(req.precisions):
            say(f"edgevc bench: {req.model} -> {target} {precision} ({frames}x{size}²)")
            cells.append(prepare_cell(req.model, target, precision, frames, size, cache, req.threads, req.weights,
                                      req.verify_clips, req.random_clips, req.calib_clips, req.clips, say))
    return _Plan(req.model, frames, size, cells)


def _artifact_plan(folder: Path) -> _Plan:
    """``edgevc bench ARTIFACT``: that artifact alone (its verify.json for parity) against PyTorch."""
    import json

    from edgevc.bench.cells import _fill
    from edgevc.export import get_target

    meta = ArtifactMeta.load(folder)
    verify_path = folder / "verify.json"
    cell = Cell(meta.target, meta.precision)
    _fill(cell, folder, meta, json.loads(verify_path.read_text()) if verify_path.is_file() else None, reused=True)
    tgt = get_target(meta.target)
    cell.cannot_run = tgt.cannot_run() if hasattr(tgt, "cannot_run") else None
    return _Plan(meta.model, meta.clip.num_frames, int(meta.preproc.crop[0]), [cell])


def _torch_reference(plan: _Plan, req: BenchRequest) -> None:
    """The PyTorch fp32 model the exports were verified against, with the bench's input specs."""
    import torch

    from edgevc.export.prepare import adapt_specs, build_model
    from edgevc.models import model_info

    torch.set_num_threads(req.threads)
    meta = next((c.meta for c in plan.cells if c.meta is not None), None)
    if meta is not None:
        plan.clip, plan.preproc = meta.clip, meta.preproc
    else:
        info = model_info(plan.model)
        plan.clip, plan.preproc = adapt_specs(info.clip, info.preproc, plan.frames, plan.size)
    plan.torch_model, plan.trained, plan.prep = build_model(plan.model, req.weights, plan.clip, plan.preproc)


def _timing_clips(plan: _Plan, req: BenchRequest) -> list[np.ndarray]:
    from edgevc.export.calib import DEFAULT_SOURCES, RealClips

    sources = list(req.clips) if req.clips else list(DEFAULT_SOURCES)
    return list(RealClips(plan.clip, plan.preproc, req.timing_clips, sources, phase=0.5))


def _torch_call(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    def call(clip: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(clip)).numpy()

    return call


def _artifact_call(rt: Any) -> Callable[[np.ndarray], np.ndarray]:
    if not rt.meta.stateful:
        return rt.infer

    from edgevc.export.calib import split_frames

    def steps(clip: np.ndarray) -> np.ndarray:
        state, logits = rt.init_state(), None
        for frame in split_frames(clip):
            logits, state = rt.step(frame, state)
        return logits

    return steps


def _subjects(plan: _Plan, req: BenchRequest, say: Callable[[str], None]
              ) -> tuple[list[Subject], list[tuple[Cell | None, Config | None, Subject | None]]]:
    """The timed subjects (PyTorch first) and, per output row, its cell, config and subject."""
    from edgevc import runtime

    torch_subject = Subject("pytorch eager fp32", _torch_call(plan.torch_model))
    subjects = [torch_subject]
    rows: list[tuple[Cell | None, Config | None, Subject | None]] = [(None, None, torch_subject)]
    for cell in plan.cells:
        if cell.folder is None or cell.cannot_run:
            rows.append((cell, None, None))
            continue
        for cfg in configs(cell, req.variants):
            name = f"{cell.target} {cell.precision} {cfg.name}"
            try:
                rt = runtime.load(cell.folder, threads=req.threads, options=cfg.options or None)
            except Exception as err:  # noqa: BLE001 -- a row that cannot load is reported, the rest go on
                subject = Subject(name, lambda clip: None, error=f"cannot load: {first_line(err)}")
                say(f"edgevc bench: {name}: {subject.error}")
                rows.append((cell, cfg, subject))
                continue
            subject = Subject(name, _artifact_call(rt))
            subjects.append(subject)
            rows.append((cell, cfg, subject))
    return subjects, rows


def _agg(plan: _Plan) -> Any:
    meta = next((c.meta for c in plan.cells if c.meta is not None), None)
    if meta is not None:
        return meta.agg
    from edgevc.models import model_info

    return model_info(plan.model).agg


def _labels(plan: _Plan) -> tuple[str, ...]:
    meta = next((c.meta for c in plan.cells if c.meta is not None), None)
    if meta is not None:
        return tuple(meta.labels)
    from edgevc.models import model_info
    from edgevc.models.labels import get_labels, numbered

    info = model_info(plan.model)
    return tuple(get_labels(info.labels) if info.labels else numbered(int(info.num_classes)))


def _macs(plan: _Plan) -> int:
    """Multiply-adds per clip (per clip of steps for a stream model)."""
    meta = next((c.meta for c in plan.cells if c.meta is not None), None)
    if meta is not None:
        return int(meta.macs_per_clip) * (plan.frames if meta.stateful else 1)
    from edgevc.export.prepare import count_macs
    from edgevc.models import model_info

    info = model_info(plan.model)
    h, w = plan.preproc.crop
    t = 1 if info.stream else plan.frames
    shape = {"NCTHW": (1, 3, t, h, w), "NTCHW": (1, t, 3, h, w), "NTHWC": (1, t, h, w, 3)}[plan.preproc.layout]
    return count_macs(plan.model, shape, info.stream) * (plan.frames if info.stream else 1)


def _rows(plan: _Plan, subjects: list[Subject], rows_of: list, peak: dict[str, Any] | None,
          accuracy: dict[str, Any]) -> list[BenchRow]:
    from edgevc.bench.accuracy import Accuracy

    macs = _macs(plan)
    hop = plan.clip.stream_hop
    stateful = any(c.meta is not None and c.meta.stateful for c in plan.cells)
    per_frame = plan.clip.span if stateful else hop
    ref = subjects[0]
    ref_lat = Latency.of(ref.samples_ms)
    out = []
    for cell, cfg, subject in rows_of:
        row = _row_head(plan, cell, cfg, subject)
        lat = Latency.of(subject.samples_ms) if subject is not None and subject.error is None else None
        if lat is not None:
            row.p50_ms, row.p90_ms, row.p99_ms, row.mean_ms = lat.p50_ms, lat.p90_ms, lat.p99_ms, lat.mean_ms
            row.clips_per_s = round(1000.0 / lat.p50_ms, 3)
            row.ms_per_frame = round(lat.p50_ms / per_frame, 4)
            row.gflops = round(2.0 * macs / (lat.p50_ms / 1000.0) / 1e9, 2)
            top = (peak or {}).get(row.peak_kind)
            row.peak_share = round(row.gflops / top, 4) if top else None
            if ref_lat is not None:
                row.speedup_vs_torch = round(ref_lat.p50_ms / lat.p50_ms, 3)
                row.speedup_paired = paired_speedup(ref.samples_ms, subject.samples_ms)
            row.samples_ms = [round(x, 4) for x in subject.samples_ms]
        row.gmacs, row.hop = round(macs / 1e9, 4), hop
        acc = accuracy.get(subject.name) if subject is not None else None
        if isinstance(acc, Accuracy):
            row.accuracy = round(acc.video_top1, 4)
        elif isinstance(acc, str):
            row.accuracy_note = acc
        out.append(row)
    return out


def _row_head(plan: _Plan, cell: Cell | None, cfg: Config | None, subject: Subject | None) -> BenchRow:
    """Identity, status and parity of one row (latency is filled by the caller)."""
    if cell is None:  # the PyTorch reference
        params = sum(p.numel() * p.element_size() for p in plan.torch_model.state_dict().values())
        ok = subject is not None and subject.error is None
        return BenchRow("pytorch", "fp32", OK if ok else FAIL, "reference" if ok else subject.error,
                        variant="eager", runs_as="f32", peak_kind="fp32", size_mb=round(params / 1e6, 2),
                        max_abs_diff=0.0, rel_l2=0.0, top1_agreement=1.0,
                        export={"weights": plan.prep.get("weights"), "trained": plan.trained})
    export = {"folder": str(cell.folder) if cell.folder else None, "reused": cell.reused,
              "export_seconds": cell.export_seconds, "verified": cell.verified, "info": cell.info,
              "numeric_parity": (cell.verify or {}).get("numeric")}
    row = BenchRow(cell.target, cell.precision, FAIL, artifact=str(cell.folder) if cell.folder else None,
                   size_mb=None if cell.size_bytes is None else round(cell.size_bytes / 1e6, 2), export=export)
    if cell.error:
        row.reason = cell.error
        return row
    if cell.cannot_run:
        structural = (cell.verify or {}).get("structural", [])
        passed = sum(1 for c in structural if c.get("passed"))
        row.reason = (f"prediction needs macOS; {sys_name()}: structural checks {passed}/{len(structural)} "
                      f"passed, no latency or numeric parity")
        row.runs_as = "–"
        return row
    assert cfg is not None
    row.variant, row.runs_as, row.runtime_options = cfg.name, cfg.runs_as, cfg.options
    row.peak_kind = peak_kind(cfg.runs_as)
    fig = cfg.real or {}
    row.max_abs_diff, row.rel_l2 = fig.get("max_abs"), fig.get("rel_l2")
    row.top1_agreement, row.top1_agreement_decisive = fig.get("top1_agreement"), fig.get("top1_agreement_decisive")
    row.parity_clips, row.rel_l2_limit = fig.get("samples"), cfg.rel_l2_limit
    reasons = []
    if cell.verify is None:
        reasons.append("no verify.json: parity unknown")
    elif not cfg.passed:
        reasons.append(f"verification: {cfg.failures[0] if cfg.failures else 'failed'}")
    if subject is not None and subject.error:
        reasons.append(subject.error)
    row.status, row.reason = (FAIL, "; ".join(reasons)) if reasons else (OK, "")
    return row


def sys_name() -> str:
    import sys

    return {"linux": "Linux", "win32": "Windows"}.get(sys.platform, sys.platform)


def _notes(report: BenchReport, plan: _Plan) -> list[str]:
    notes = [speedup_note(report.rows, report.peak)]
    int8 = [r for r in report.rows if r.precision == "int8" and r.ok and r.speedup_vs_torch is not None]
    if plan.trained and int8:
        best = max(int8, key=lambda r: r.speedup_vs_torch or 0.0)
        if best.top1_agreement is not None:
            notes.append(f"{best.label}: top-1 agreement with PyTorch fp32 {best.top1_agreement:.1%} on "
                         f"{best.parity_clips} real clips (target ≥ 99%: "
                         f"{'reached' if best.top1_agreement >= 0.99 else 'NOT reached'}"
                         + (f"; {best.top1_agreement_decisive:.1%} on the decisive clips)"
                            if best.top1_agreement_decisive is not None else ")"))
    if plan.trained:
        notes.append(f"{plan.model}: trained weights ({plan.prep.get('weights', '?')})")
    else:
        notes.append(f"{plan.model}: {plan.prep.get('weights', 'no trained weights')}, BatchNorm statistics from "
                     "real clips; top-1 agreement of an untrained head means little, so parity is judged by the "
                     "logits' relative L2 error against the profile's limit (the 'rel L2 (limit)' column)")
    split = report.settings.get("accuracy_split")
    if split:
        why = next((r.accuracy_note for r in report.rows if r.accuracy_note), "")
        notes.append(f"accuracy: video top-1 on {split['split']} ({split['videos']} videos, {split['classes']} "
                     f"classes, {split['clips_per_video']} clips per video, aggregated with the artifact's AggSpec)"
                     + (f"; n/a: {why}" if why else ""))
    if any(r.runs_as.endswith("bf16") for r in report.rows):
        notes.append("OpenVINO runs an fp32 model in bf16 by default on a CPU with AVX-512 BF16 / AMX: the "
                     "'default-precision' rows are what a device gets without the f32 hint, with their own parity")
    ref = next((r for r in report.rows if r.variant == "eager" and r.p50_ms), None)
    if ref is not None and ref.p90_ms and ref.p90_ms > SPREAD_WARNING * ref.p50_ms:
        notes.append(f"PyTorch eager's p90 is {ref.p90_ms / ref.p50_ms:.1f}x its p50: its OpenMP threads were "
                     "competing with other jobs for the cores (a stalled thread holds up every parallel region), "
                     "so the speed-ups over it are inflated; re-run on a quiet machine")
    load0, load1 = report.machine.get("loadavg_1m"), report.timing.get("loadavg_1m_end")
    if load0 is not None and load1 is not None and max(load0, load1) > 0.5 * report.threads:
        notes.append(f"the machine was not quiet (load {load0} -> {load1} over {report.machine.get('cores')} "
                     "cores): absolute times are indicative, the interleaved ratios hold better")
    notes.append("latency per clip; ms/frame = p50 / hop; GFLOP/s = 2 x MACs / p50; % peak against the GEMM peak "
                 "of the row's arithmetic; parity from each artifact's verify.json on real clips")
    return notes
