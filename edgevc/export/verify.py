"""Parity of an exported artifact against PyTorch fp32, run through the artifact's own runtime.

The artifact is opened with :func:`edgevc.runtime.load` (sha256 checks, the
backend a device would use) and fed real clips (:class:`~edgevc.export.calib.RealClips`)
and random clips; its logits are compared with the PyTorch fp32 model's:

- ``max_abs``: the largest ``|artifact - torch|`` over all logits (and where: sample, class);
- ``rel_l2``: ``||artifact - torch|| / ||torch||`` over the whole set (``rel_l2_worst``: the worst sample);
- ``top1_agreement``: the share of samples whose top-1 class is the same;
- ``top5_agreement``: the share of samples whose torch top-1 is in the artifact's top-5;
- ``top1_agreement_decisive``: the same over the ``decisive_samples`` only, those where
  torch's top-1 probability beats its top-2 by at least ``DECISIVE_MARGIN`` (0.1). On a
  near-tie torch itself has no answer to agree with: I3D on 32 clips of the four real
  videos has 9 clips with a margin under 0.1 (cartoon, low-resolution, non-Kinetics
  content), and those flip under ANY perturbation -- OpenVINO's bf16 default flipped 1-2
  of them, int8 with 38 of 60 layers put back to fp32 (rel L2 0.018) still flipped 2;
- ``disagreements``: the samples whose top-1 differs, with torch's margin (top-1 minus
  top-2 probability).

A stream model is fed its clips frame by frame from a zero state, each
side carrying its own state (errors accumulate as on a device); every step's
logits is a sample. An fp32 profile's random rows may carry ``rel_l2_floor_multiple``: a row
over its ``rel_l2`` limit then passes within that multiple of PyTorch fp32's own rounding floor on
the same clips (:func:`fp32_floor`: its distance from float64, and the change a one-ulp nudge of
every input value makes), measured only then, and the verdict says so. Limits come from the
device profile; each figure is a :class:`Check` that says whether it was enforced and why not (top-k limits
bind only trained classifiers on real clips). ``verify.json`` records
everything; it is written beside ``edgevc.json`` and is not in ``files``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgevc.export.calib import split_frames
from edgevc.export.profiles import Profile, Tolerances
from edgevc.spec import ArtifactMeta

VERIFY_FILENAME = "verify.json"
# a sample is decisive when torch's top-1 probability beats its top-2 by this much
DECISIVE_MARGIN = 0.1


@dataclass
class Figures:
    """Parity of ``samples`` logit rows (K classes each) against the torch reference."""

    samples: int
    classes: int
    max_abs: float
    max_abs_at: tuple[int, int]
    rel_l2: float
    rel_l2_worst: float
    top1_agreement: float
    top5_agreement: float
    ref_abs_max: float
    decisive_samples: int = 0
    top1_agreement_decisive: float | None = None
    disagreements: list[dict[str, Any]] = field(default_factory=list)


def compare(ref: np.ndarray, got: np.ndarray) -> Figures:
    """Figures for two (samples, K) logit arrays."""
    if ref.shape != got.shape:
        raise ValueError(f"artifact logits {got.shape} vs torch {ref.shape}")
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    diff = np.abs(got64 - ref64)
    at = np.unravel_index(int(np.argmax(diff)), diff.shape)
    norm = np.linalg.norm(ref64)
    per = np.linalg.norm(got64 - ref64, axis=1) / np.maximum(np.linalg.norm(ref64, axis=1), 1e-30)
    k = min(5, ref.shape[1])
    top1_ref = ref64.argmax(1)
    top5_got = np.argsort(-got64, axis=1)[:, :k]
    top2 = np.sort(_softmax(ref64), axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    decisive = margin >= DECISIVE_MARGIN
    same = top1_ref == got64.argmax(1)
    disagreements = [{"sample": int(i), "torch": int(top1_ref[i]), "artifact": int(got64[i].argmax()),
                      "torch_margin": round(float(top2[i, 1] - top2[i, 0]), 4)}
                     for i in np.nonzero(top1_ref != got64.argmax(1))[0][:20]]
    return Figures(
        samples=int(ref.shape[0]), classes=int(ref.shape[1]), max_abs=float(diff.max()),
        max_abs_at=(int(at[0]), int(at[1])), rel_l2=float(np.linalg.norm(got64 - ref64) / max(norm, 1e-30)),
        rel_l2_worst=float(per.max()), top1_agreement=float(np.mean(top1_ref == got64.argmax(1))),
        top5_agreement=float(np.mean([t in row for t, row in zip(top1_ref, top5_got, strict=True)])),
        ref_abs_max=float(np.abs(ref64).max()), decisive_samples=int(decisive.sum()),
        top1_agreement_decisive=float(same[decisive].mean()) if decisive.any() else None,
        disagreements=disagreements,
    )


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class Check:
    """One figure against its limit; ``passed`` is None when the limit was not enforced (see ``note``)."""

    figure: str
    value: float | None
    limit: float | None
    bound: str  # "max": value <= limit; "min": value >= limit
    enforced: bool
    passed: bool | None
    note: str = ""


def checks(fig: Figures, tol: Tolerances, trained: bool, inputs: str) -> list[Check]:
    out = []
    figures = (("max_abs", "max"), ("rel_l2", "max"), ("top1_agreement", "min"), ("top5_agreement", "min"),
               ("top1_agreement_decisive", "min"))
    for name, bound in figures:
        value, limit = getattr(fig, name), getattr(tol, name)
        note = "" if limit is not None else "no limit in the profile"
        enforced = limit is not None
        if value is None:
            enforced, note = False, "no decisive sample"
        if enforced and name.startswith("top") and not trained:
            enforced, note = False, "random-init head: top-k means little, rel_l2 decides"
        elif enforced and name.startswith("top") and inputs != "real":
            enforced, note = False, "noise input: top-k means little, rel_l2 decides"
        passed = None if not enforced else (value <= limit if bound == "max" else value >= limit)
        out.append(Check(name, value, limit, bound, enforced, passed, note))
    return out


@dataclass
class Row:
    """One runtime configuration on one input set."""

    name: str
    inputs: str
    runtime_options: dict[str, Any]
    runtime_info: dict[str, Any]
    figures: Figures
    checks: list[Check]
    seconds: float
    fp32_floor: dict[str, float] | None = None  # measured only when a floor-limited rel_l2 was over its limit

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks if c.enforced)


@dataclass
class VerifyReport:
    """Every row of one artifact's verification, and what it was run on."""

    model: str
    target: str
    precision: str
    profile: str | None
    trained: bool
    stream: bool
    rows: list[Row]
    inputs: dict[str, Any]
    preparation: dict[str, Any] = field(default_factory=dict)
    target_info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    numeric: str = "run"  # or "NOT RUN: <why>" (e.g. CoreML prediction on Linux)
    export_seconds: float | None = None
    structural: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every enforced figure and structural check passed; with numeric parity not run, at least one
        structural check must have run (nothing unrun counts as passed)."""
        if self.numeric != "run" and not self.structural:
            return False
        return all(r.passed for r in self.rows) and all(c.get("passed") for c in self.structural)

    def failures(self) -> list[str]:
        out = [f"{r.name}/{r.inputs}: {c.figure} {c.value:.4g} {'>' if c.bound == 'max' else '<'} {c.limit:.4g}"
               for r in self.rows for c in r.checks if c.enforced and not c.passed]
        return out + [f"{c.get('check')}: {c.get('detail', '')}" for c in self.structural if not c.get("passed")]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        for row, r in zip(d["rows"], self.rows, strict=True):
            row["passed"] = r.passed
        return d

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / VERIFY_FILENAME
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        return path

    def table(self) -> str:
        head = (f"{'row':<20} {'inputs':<7} {'n':>4} {'max_abs':>9} {'rel_l2':>9} {'top1':>6} {'top5':>6} "
                f"{'top1 decisive':>14}  {'runs as':<10} result")
        lines = [head]
        for r in self.rows:
            f = r.figures
            prec = r.runtime_info.get("inference_precision", "")
            verdict = "pass" if r.passed else "FAIL"
            if not any(c.enforced for c in r.checks):
                verdict = "report only"
            elif r.passed and r.fp32_floor is not None:
                verdict = "pass (fp32 floor)"
            dec = "-" if f.top1_agreement_decisive is None else \
                f"{f.top1_agreement_decisive:.1%} of {f.decisive_samples}"
            lines.append(f"{r.name:<20} {r.inputs:<7} {f.samples:>4} {f.max_abs:>9.2e} {f.rel_l2:>9.2e} "
                         f"{f.top1_agreement:>6.1%} {f.top5_agreement:>6.1%} {dec:>14}  {prec:<10} {verdict}")
            lines += [f"{'':<20} rel_l2 {c.note}" for c in r.checks
                      if c.figure == "rel_l2" and r.fp32_floor is not None]
        if self.numeric != "run":
            lines = [f"numeric parity {self.numeric}"]
        lines += [f"structural: {c.get('check')}: {'pass' if c.get('passed') else 'FAIL'} {c.get('detail', '')}"
                  for c in self.structural]
        return "\n".join(lines)


def torch_outputs(model: Any, clips: Iterable[np.ndarray], stream: bool, dtype: Any = None) -> np.ndarray:
    """The PyTorch logits, one row per clip (or per frame for a stream model); ``dtype`` (e.g.
    ``torch.float64``) casts the clips and the stream state to the model's dtype."""
    import torch

    def cast(x: Any) -> Any:
        if dtype is None:
            return x
        if isinstance(x, torch.Tensor):
            return x.to(dtype) if x.is_floating_point() else x
        if isinstance(x, (list, tuple)):
            return type(x)(cast(v) for v in x)
        if isinstance(x, dict):
            return {k: cast(v) for k, v in x.items()}
        return x

    rows = []
    model.eval()
    with torch.no_grad():
        for clip in clips:
            if not stream:
                rows.append(model(cast(torch.from_numpy(clip))).numpy())
                continue
            state = cast(model.init_state(1, input_size=tuple(clip.shape[-2:])))
            for frame in split_frames(clip):
                logits, state = model.forward_step(cast(torch.from_numpy(frame)), state)
                rows.append(logits.numpy())
    return np.concatenate(rows)


def fp32_floor(model: Any, clips: Iterable[np.ndarray], stream: bool, ref32: np.ndarray) -> dict[str, float]:
    """How far PyTorch fp32 itself is from the exact answer on ``clips`` (``ref32``: its fp32 logits): its
    relative L2 from float64, and from its own logits with every input value moved by one ulp (the model's
    conditioning: a chaotic network turns one rounding of its input into that much). ``floor`` is the larger,
    the rounding error no fp32 runtime can be expected to beat by much."""
    import copy

    import torch

    clips = list(clips)
    ref64 = torch_outputs(copy.deepcopy(model).double(), clips, stream, dtype=torch.float64)
    rng = np.random.default_rng(0)
    nudged = [np.nextafter(c, np.where(rng.random(c.shape) < 0.5, -np.inf, np.inf).astype(c.dtype)) for c in clips]
    out = {"float64": compare(ref64, ref32).rel_l2,
           "one_ulp_input": compare(ref32, torch_outputs(model, nudged, stream)).rel_l2}
    return {**out, "floor": max(out.values())}


def apply_floor(checks_: list[Check], tol: Tolerances, floor: dict[str, float]) -> None:
    """Let a failed ``rel_l2`` check pass within ``tol.rel_l2_floor_multiple`` x the fp32 floor, saying so."""
    k = tol.rel_l2_floor_multiple
    for c in checks_:
        if c.figure != "rel_l2" or not c.enforced or c.passed or k is None:
            continue
        limit = max(c.limit or 0.0, k * floor["floor"])
        c.passed = c.value <= limit
        c.note = (f"over the profile's {c.limit:.1e}; limit {limit:.2e} = {k:g} x PyTorch fp32's own rounding floor "
                  f"on these clips ({floor['float64']:.2e} from float64, {floor['one_ulp_input']:.2e} for a "
                  f"one-ulp input change)")
        c.limit = limit


def artifact_outputs(model: Any, clips: Iterable[np.ndarray], stream: bool) -> np.ndarray:
    """The same through an opened artifact (:class:`edgevc.runtime.Model`)."""
    rows = []
    for clip in clips:
        if not stream:
            rows.append(model.infer(clip))
            continue
        state = model.init_state()
        for frame in split_frames(clip):
            logits, state = model.step(frame, state)
            rows.append(logits)
    return np.concatenate(rows)


def verify_artifact(folder: str | Path, reference: Any, meta: ArtifactMeta, profile: Profile,
                    real: Any, random: list[np.ndarray], trained: bool, threads: int | None = None,
                    profile_name: str | None = None, target: Any = None, ref_cache: dict | None = None,
                    ref_keys: dict[str, Any] | None = None) -> VerifyReport:
    """Run ``folder``'s artifact in its runtime (the profile's options and every variant) vs ``reference``.

    A ``target`` with ``cannot_run()`` (CoreML on Linux) gets its
    ``structural_checks`` only, and the report says numeric parity was NOT RUN.
    ``ref_cache`` keeps the PyTorch logits under ``ref_keys[set]`` for the next
    export of the same model (the driver keys it by model and clip set).
    """
    from edgevc.runtime import load

    t0 = time.perf_counter()
    stream = meta.stateful
    why = target.cannot_run() if hasattr(target, "cannot_run") else None
    structural = list(target.structural_checks(Path(folder), meta)) if hasattr(target, "structural_checks") else []
    if why:
        return VerifyReport(model=meta.model, target=meta.target, precision=meta.precision, profile=profile_name,
                            trained=trained, stream=stream, rows=[], inputs={}, numeric=f"NOT RUN: {why}",
                            structural=structural, seconds=time.perf_counter() - t0)
    sets = {"real": real, "random": random}
    cache, keys = (ref_cache if ref_cache is not None else {}), (ref_keys or {})
    refs = {}
    for inputs, clips in sets.items():
        key = keys.get(inputs, object())
        if key not in cache:
            cache[key] = torch_outputs(reference, clips, stream)
        refs[inputs] = cache[key]
    configs: list[tuple[str, dict[str, Any], Any]] = [("artifact", dict(profile.runtime_options or {}), profile)]
    configs += [(v.name, dict(v.runtime_options), v) for v in profile.variants]
    rows, floors = [], {}
    for name, options, spec in configs:
        model = load(folder, threads=threads, options=options)
        info = dict(getattr(model.backend, "runtime_info", {}))
        for inputs in ("real", "random"):
            t1 = time.perf_counter()
            fig = compare(refs[inputs], artifact_outputs(model, sets[inputs], stream))
            limits = spec.limits(trained, inputs)
            row = Row(name, inputs, options, info, fig, checks(fig, limits, trained, inputs), 0.0)
            if limits.rel_l2_floor_multiple and not row.passed:
                if inputs not in floors:
                    floors[inputs] = fp32_floor(reference, sets[inputs], stream, refs[inputs])
                row.fp32_floor = floors[inputs]
                apply_floor(row.checks, limits, floors[inputs])
            row.seconds = time.perf_counter() - t1
            rows.append(row)
    describe = real.describe() if hasattr(real, "describe") else {"count": len(list(real))}
    return VerifyReport(
        model=meta.model, target=meta.target, precision=meta.precision, profile=profile_name, trained=trained,
        stream=stream, rows=rows, inputs={"real": describe, "random": {"count": len(random), "kind": "uniform "
                                          "uint8 noise through the model's preprocessing"}},
        seconds=time.perf_counter() - t0, structural=structural,
    )
