"""Device profiles: YAML files in ``targets/`` that fix a backend, precision, threads, input and tolerances.

A profile is data, validated strictly (an unknown key gets "did you mean")::

    # targets/intel-cpu-openvino-int8.yaml
    description: Intel/AMD x86 CPU, OpenVINO, int8 (NNCF PTQ on real video)
    backend: openvino
    precision: int8
    threads: 2
    runtime_options: {INFERENCE_PRECISION_HINT: f32}
    tolerances: {max_abs: null, rel_l2: 0.2, top1_agreement: 0.95, top5_agreement: 0.95}
    variants:
      - name: default-precision
        runtime_options: {}
        tolerances: {max_abs: null, rel_l2: 0.25, top1_agreement: 0.9, top5_agreement: 0.9}
    known_gaps:
      - {model: s3d, precision: int8, reason: "..."}

``tolerances`` apply to real clips, ``untrained_tolerances`` (default: the
same) to real clips through a randomly initialised model, and
``random_tolerances`` (default: ``tolerances``) to random clips. A random
network whose BatchNorm statistics come from real clips is chaotic: it
amplifies any perturbation (x3d_xs: 0.1% input noise moves the logits by
3%), so its bf16 and int8 limits are wider than a trained model's. Limits: ``max_abs`` and ``rel_l2`` are upper bounds,
``top1_agreement`` / ``top5_agreement`` / ``top1_agreement_decisive`` (over
the clips where PyTorch's top-1 beats its top-2 by 0.1 in probability, see
:mod:`edgevc.export.verify`) lower bounds; ``null`` reports the figure
without a limit. ``rel_l2_floor_multiple`` (fp32 random rows) lets a row
over its ``rel_l2`` limit pass when it is within that multiple of PyTorch
fp32's own rounding floor on the same clips (its distance from float64, or the
change a one-ulp input nudge makes, the larger), measured then and stated in
the verdict: X3D-M at 16x224² turns noise into logits near 340, where that
floor is 5.2e-5 and ONNX Runtime is 2.6e-4 away. Top-k limits bind only models with trained weights
(a random head's top-1 means little). ``variants`` are extra verification
rows with other runtime options (OpenVINO's bf16 default on a CPU with
bf16). ``known_gaps`` list model/precision cells the target cannot pass
yet, with the reason; the test matrix expects them to fail, so a gap that
closes fails the test until the profile is updated.

``edgevc export --target NAME`` takes a target (the profile ``NAME-PRECISION``
gives its tolerances, when present), a profile name, or a YAML path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgevc.errors import EdgevcError, UnknownNameError
from edgevc.spec import Precision, SpecError, _Spec

OptionValue = str | int | float | bool | tuple[str, ...]

# What the targets read from ``export_options`` (edgevc/export/support.py and targets/*): a typo must fail
# loudly, not export with a default the profile meant to change.
EXPORT_OPTIONS = {
    "subset_size": "NNCF calibration subset (default: all calibration clips)",
    "preset": "NNCF preset: performance | mixed",
    "fast_bias_correction": "NNCF fast (true) or full (false) bias correction",
    "range_estimator": "NNCF activation range estimator: minmax, mean_minmax, ...",
    "accuracy_control_rel_l2": "NNCF accuracy control: max mean relative L2 of the logits vs float",
    "speed_check": "ONNX int8: time int8 against fp32 and say which is faster",
    "speed_runs": "ONNX int8: timed runs per model for the speed check",
    "deployment_target": "CoreML minimum deployment target (e.g. iOS17)",
    "palettize": "CoreML: palettize weights instead of int8 linear quantization",
}


@dataclass(frozen=True)
class Tolerances(_Spec):
    """Limits on the parity figures; ``None`` = reported, not checked."""

    max_abs: float | None = None
    rel_l2: float | None = None
    top1_agreement: float | None = None
    top5_agreement: float | None = None
    top1_agreement_decisive: float | None = None
    # fp32 rows: when ``rel_l2`` is over its limit, the limit becomes this multiple of PyTorch fp32's own
    # rounding floor on the same inputs (edgevc.export.verify.fp32_floor: float64 distance, one-ulp nudge)
    rel_l2_floor_multiple: float | None = None

    def validate(self) -> None:
        if self.rel_l2_floor_multiple is not None and not 1 <= self.rel_l2_floor_multiple <= 100:
            raise SpecError(f"{getattr(self, '_path', '')}rel_l2_floor_multiple", f"got {self.rel_l2_floor_multiple}",
                            "1..100 or null")
        for name in ("max_abs", "rel_l2"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise SpecError(f"{getattr(self, '_path', '')}{name}", f"got {v}", ">= 0 or null")
        for name in ("top1_agreement", "top5_agreement", "top1_agreement_decisive"):
            v = getattr(self, name)
            if v is not None and not 0 <= v <= 1:
                raise SpecError(f"{getattr(self, '_path', '')}{name}", f"got {v}", "0..1 or null")


@dataclass(frozen=True)
class Variant(_Spec):
    """An extra verification row: the same artifact with other runtime options and its own limits."""

    name: str
    runtime_options: dict[str, OptionValue]
    tolerances: Tolerances
    untrained_tolerances: Tolerances | None = None
    random_tolerances: Tolerances | None = None
    description: str = ""

    def limits(self, trained: bool, inputs: str) -> Tolerances:
        return _limits(self, trained, inputs)


@dataclass(frozen=True)
class KnownGap(_Spec):
    """A model x precision cell a target does not pass yet, and why."""

    model: str
    precision: Precision
    reason: str


@dataclass(frozen=True)
class Profile(_Spec):
    """One device profile (see the module docstring for the YAML)."""

    backend: str
    precision: Precision
    tolerances: Tolerances
    description: str = ""
    threads: int | None = None
    frames: int | None = None
    size: int | None = None
    calib_clips: int = 32
    runtime_options: dict[str, OptionValue] | None = None
    export_options: dict[str, OptionValue] | None = None
    untrained_tolerances: Tolerances | None = None
    random_tolerances: Tolerances | None = None
    variants: tuple[Variant, ...] = ()
    known_gaps: tuple[KnownGap, ...] = ()

    def validate(self) -> None:
        p = getattr(self, "_path", "")
        if self.threads is not None and not 1 <= self.threads <= 256:
            raise SpecError(f"{p}threads", f"got {self.threads}", "1..256 or null")
        if self.frames is not None and not 1 <= self.frames <= 4096:
            raise SpecError(f"{p}frames", f"got {self.frames}", "1..4096 or null")
        if self.size is not None and not 8 <= self.size <= 4096:
            raise SpecError(f"{p}size", f"got {self.size}", "8..4096 or null")
        if not 1 <= self.calib_clips <= 10_000:
            raise SpecError(f"{p}calib_clips", f"got {self.calib_clips}", "1..10000")
        for key in self.export_options or {}:
            if key not in EXPORT_OPTIONS:
                import difflib

                close = difflib.get_close_matches(key, list(EXPORT_OPTIONS), n=1, cutoff=0.5)
                raise SpecError(f"{p}export_options.{key}",
                                "unknown option" + (f"; did you mean '{close[0]}'?" if close else ""),
                                ", ".join(EXPORT_OPTIONS))
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise SpecError(f"{p}variants", f"duplicate names {names}", "distinct names")

    def limits(self, trained: bool, inputs: str) -> Tolerances:
        """The limits for one row: ``inputs`` is ``real`` or ``random``; see :func:`_limits`."""
        return _limits(self, trained, inputs)

    def gap(self, model: str, precision: str) -> KnownGap | None:
        """The known gap for this cell, if the profile lists one."""
        return next((g for g in self.known_gaps if g.model == model and g.precision == precision), None)


def _limits(spec: Profile | Variant, trained: bool, inputs: str) -> Tolerances:
    """Random clips: ``random_tolerances``; real clips: ``tolerances``, or ``untrained_tolerances`` for a
    randomly initialised model (each falls back to ``tolerances``)."""
    if inputs == "random":
        return spec.random_tolerances or spec.tolerances
    return spec.tolerances if trained else (spec.untrained_tolerances or spec.tolerances)


# Used when neither a profile nor a NAME-PRECISION file exists (a new target before its profile lands).
DEFAULT_TOLERANCES = {
    "fp32": Tolerances(max_abs=1e-4, rel_l2=1e-4, top1_agreement=0.99, top5_agreement=0.99),
    "fp16": Tolerances(max_abs=None, rel_l2=5e-3, top1_agreement=0.95, top5_agreement=0.95),
    "bf16": Tolerances(max_abs=None, rel_l2=3e-2, top1_agreement=0.9, top5_agreement=0.9),
    "int8": Tolerances(max_abs=None, rel_l2=0.25, top1_agreement=0.95, top5_agreement=0.95),
}


def profiles_dir() -> Path:
    """``$EDGEVC_TARGETS``, else ``targets/`` at the project's root."""
    env = os.environ.get("EDGEVC_TARGETS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "targets"


def list_profiles() -> list[str]:
    folder = profiles_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_profile(name_or_path: str | Path) -> tuple[str, Profile]:
    """(name, profile) from a profile name in ``targets/`` or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        path = profiles_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UnknownNameError("device profile", str(name_or_path), list_profiles())
    try:
        import yaml
    except ImportError:
        from edgevc.errors import MissingDependencyError

        raise MissingDependencyError("yaml", "torch", "reading device profiles") from None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise EdgevcError(f"device profile '{path}' is not valid YAML: {err}") from None
    return path.stem, Profile.from_dict(data, path=f"{path.name}: ")


@dataclass(frozen=True)
class Resolved:
    """What ``--target`` and ``--precision`` resolve to: the target, the precision and the profile."""

    target: str
    precision: str
    profile: Profile
    profile_name: str | None


def resolve(target_or_profile: str, precision: str | None = None) -> Resolved:
    """A target name (+ precision, default: the target's first) or a device profile -> :class:`Resolved`."""
    from edgevc.export import available_targets, get_target

    targets = available_targets()
    if target_or_profile in targets:
        precs = get_target(target_or_profile).precisions
        precision = precision or precs[0]
        _check_precision(target_or_profile, precision, precs)
        name = f"{target_or_profile}-{precision}"
        if name in list_profiles():
            return _resolved(*load_profile(name), precision, source="target")
        tol = DEFAULT_TOLERANCES[precision]
        return Resolved(target_or_profile, precision, Profile(target_or_profile, precision, tol), None)
    is_file = Path(target_or_profile).suffix in (".yaml", ".yml")
    if not is_file and target_or_profile not in list_profiles():
        raise UnknownNameError("target", target_or_profile, targets + list_profiles())
    return _resolved(*load_profile(target_or_profile), precision, source="profile")


def _resolved(name: str, profile: Profile, precision: str | None, source: str) -> Resolved:
    from edgevc.export import available_targets, get_target

    if profile.backend not in available_targets():
        raise UnknownNameError(f"backend in device profile '{name}'", profile.backend, available_targets())
    if source == "profile" and precision is not None and precision != profile.precision:
        raise EdgevcError(f"device profile '{name}' fixes precision {profile.precision}, not {precision}",
                          hint=f"drop --precision, or use --target {profile.backend} --precision {precision}")
    _check_precision(profile.backend, profile.precision, get_target(profile.backend).precisions)
    return Resolved(profile.backend, profile.precision, profile, name)


def _check_precision(target: str, precision: str, allowed: tuple[str, ...]) -> None:
    if precision not in allowed:
        raise EdgevcError(f"target '{target}' does not export precision '{precision}'",
                          hint=f"{target} writes: {', '.join(allowed)}")
