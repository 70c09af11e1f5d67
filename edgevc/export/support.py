"""What export targets share: dependency checks, NNCF PTQ on real clips, and "this op cannot go there" errors."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from edgevc.errors import EdgevcError, MissingDependencyError


def require(requires: Iterable[tuple[str, str]], purpose: str) -> None:
    """Import each (module, extra) pair or raise :class:`MissingDependencyError` with the pip command."""
    for module, extra in requires:
        try:
            with quiet("torch.utils._pytree", stderr=True):  # coremltools, torchao: import-time warnings
                importlib.import_module(module)
        except ImportError:
            raise MissingDependencyError(module, extra, purpose) from None


def missing(requires: Iterable[tuple[str, str]]) -> list[str]:
    """Modules of ``requires`` that are not installed (checked without importing them)."""
    import importlib.util

    return [m for m, _ in requires if importlib.util.find_spec(m) is None]


@contextlib.contextmanager
def quiet(*loggers: str, stderr: bool = False) -> Iterator[io.StringIO]:
    """Silence stdout, warnings and the named loggers (exporters print progress); yields what was printed.

    ``stderr=True`` also captures Python-level writes to stderr (coremltools' progress bars and import
    warnings): an export prints edgevc's own lines, not a converter's.
    """
    buf = io.StringIO()
    saved = [(lg, lg.level) for lg in (logging.getLogger(n) for n in loggers)]
    for lg, _ in saved:
        lg.setLevel(logging.ERROR)
    try:
        with (contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf) if stderr else contextlib.nullcontext(),
              warnings.catch_warnings()):
            warnings.simplefilter("ignore")
            yield buf
    finally:
        for lg, level in saved:
            lg.setLevel(level)


class _Reiterable:
    """A re-iterable view of ``calib()`` (NNCF may walk the dataset more than once)."""

    def __init__(self, calib: Callable[[], Iterable[Any]]) -> None:
        self.calib = calib

    def __iter__(self) -> Iterator[Any]:
        return iter(self.calib())


def as_inputs(item: Any) -> list[np.ndarray]:
    """A calibration item (a clip, or a tuple (frame, *state)) -> the list of model inputs."""
    return list(item) if isinstance(item, (tuple, list)) else [item]


def nncf_quantize(model: Any, calib: Callable[[], Iterable[Any]] | None, names: list[str],
                  options: dict[str, Any], info: dict[str, Any] | None = None) -> Any:
    """NNCF post-training quantization of an ``ov.Model`` or ONNX ``ModelProto`` on real-video clips.

    ``names`` are the model's input names; each calibration item is fed as
    ``{name: array}``. Export options: ``subset_size`` (default: all clips),
    ``preset`` (``performance`` | ``mixed``), ``fast_bias_correction``,
    ``range_estimator``, and ``accuracy_control_rel_l2``: a limit on the mean
    relative L2 error of the logits against the float model, on the
    calibration clips (never the verification clips). Over it, NNCF's
    accuracy-aware quantization returns the most sensitive operations to
    float, one ranked group at a time, until the limit holds. What it did
    goes into ``info["accuracy_control"]``.
    """
    if calib is None:
        raise EdgevcError("int8 export needs calibration clips from real video",
                          hint="the driver passes them; calling a target directly, set ExportJob.calib")
    require([("nncf", "export")], "int8 quantization")
    import nncf

    data = _Reiterable(calib)
    count = options.get("subset_size") or sum(1 for _ in data)
    kwargs: dict[str, Any] = {"subset_size": int(count)}
    if "preset" in options:
        kwargs["preset"] = nncf.QuantizationPreset(options["preset"])
    if "fast_bias_correction" in options:
        kwargs["fast_bias_correction"] = bool(options["fast_bias_correction"])
    if "range_estimator" in options:
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        preset = getattr(RangeEstimatorParametersSet, str(options["range_estimator"]).upper(), None)
        if preset is None:
            raise EdgevcError(f"unknown range_estimator '{options['range_estimator']}' in the profile",
                              hint="minmax, mean_minmax, median_minmax, mean_quantile, mean_no_outliers_minmax, "
                                   "histogram")
        kwargs["advanced_parameters"] = AdvancedQuantizationParameters(activations_range_estimator_params=preset)
    floats = list(options.get("float_inputs") or [])
    if floats:
        kwargs["ignored_scope"] = nncf.IgnoredScope(names=float_path_nodes(model, floats), validate=False)
    dataset = nncf.Dataset(data, lambda item: dict(zip(names, as_inputs(item), strict=True)))
    limit = options.get("accuracy_control_rel_l2")
    nncf.set_log_level(logging.ERROR)
    if limit is None:
        with quiet("nncf"):
            return nncf.quantize(model, dataset, **kwargs)
    return _accuracy_controlled(model, dataset, data, names, float(limit), kwargs, options.get("threads"), info)


class _RelL2Metric:
    """NNCF validation function: per clip, 1 - ||y - y_float|| / ||y_float|| (1.0 = the float model's logits).

    The float model's logits on the same clips are computed once, up front,
    with OpenVINO's f32 hint, so the metric measures quantization and nothing else.
    """

    def __init__(self, model: Any, clips: list[dict[str, np.ndarray]], threads: int | None) -> None:
        self.threads = threads
        self.reference = [self._infer(self._runner(model), x) for x in clips]

    def _runner(self, model: Any) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        if hasattr(model, "get_parameters"):  # an ov.Model not compiled yet (ONNX is refused before this)
            import openvino as ov

            config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
            if self.threads:
                config["INFERENCE_NUM_THREADS"] = self.threads
            model = ov.Core().compile_model(model, "CPU", config)
        return lambda x: model(x)[0]  # an ov.CompiledModel

    @staticmethod
    def _infer(run: Callable[[dict[str, np.ndarray]], np.ndarray], x: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(run(x), dtype=np.float64).reshape(-1)

    def per_clip(self, model: Any, items: Iterable[tuple[int, dict[str, np.ndarray]]]) -> list[float]:
        """Relative L2 error per ``(index, inputs)`` item: NNCF validates on subsets, so each item carries the
        index of its reference."""
        run = self._runner(model)
        out = []
        for i, x in items:
            ref = self.reference[i]
            out.append(float(np.linalg.norm(self._infer(run, x) - ref) / max(np.linalg.norm(ref), 1e-12)))
        return out

    def __call__(self, model: Any, items: Iterable[tuple[int, dict[str, np.ndarray]]]) -> tuple[float, list[float]]:
        per = [1.0 - e for e in self.per_clip(model, items)]
        return float(np.mean(per)), per


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _accuracy_controlled(model: Any, dataset: Any, data: Iterable[Any], names: list[str], limit: float,
                         kwargs: dict[str, Any], threads: int | None, info: dict[str, Any] | None) -> Any:
    """``nncf.quantize_with_accuracy_control`` on the calibration clips, with :class:`_RelL2Metric`."""
    import time

    import nncf
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    if hasattr(model, "SerializeToString"):
        raise EdgevcError("accuracy_control_rel_l2 is not available for ONNX: NNCF 3.4's accuracy control ranks "
                          "ONNX quantizers with a function it does not implement (UnsupportedBackendError)",
                          hint="drop accuracy_control_rel_l2 from the ONNX profile's export_options, or export to "
                               "OpenVINO, where it works")
    if len(names) != 1:
        raise EdgevcError("accuracy_control_rel_l2 works on clip models (one input); this model has "
                          f"{len(names)} inputs (a stream model's state)",
                          hint="drop accuracy_control_rel_l2 from the profile's export_options for stream models")
    clips = [dict(zip(names, as_inputs(item), strict=True)) for item in data]
    t0 = time.monotonic()
    metric = _RelL2Metric(model, clips, threads)
    items = list(enumerate(clips))
    validation = nncf.Dataset(items)
    collect = _Collect()
    logger = logging.getLogger("nncf")
    logger.addHandler(collect)
    try:
        nncf.set_log_level(logging.INFO)
        with quiet():
            out = nncf.quantize_with_accuracy_control(
                model, dataset, validation, metric, max_drop=limit, drop_type=nncf.DropType.ABSOLUTE,
                subset_size=kwargs["subset_size"], preset=kwargs.get("preset"),
                fast_bias_correction=kwargs.get("fast_bias_correction", True),
                ignored_scope=kwargs.get("ignored_scope"),
                advanced_quantization_parameters=kwargs.get("advanced_parameters"),
                advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                    ranking_subset_size=len(clips)))
    finally:
        logger.removeHandler(collect)
        nncf.set_log_level(logging.ERROR)
    reverted = sorted({line.strip() for msg in collect.lines if msg.startswith("Reverted")
                       for line in msg.splitlines()[1:] if line.strip()})
    quantized_ops = next((int(m.group(1)) for msg in collect.lines
                          if (m := re.search(r"Total number of quantized operations in the model: (\d+)", msg))),
                         None)
    drops = [float(m.group(1)) for msg in collect.lines if (m := re.match(r"Accuracy drop: ([-\d.e]+)", msg))]
    after = metric.per_clip(out, items)
    if info is not None:
        info["accuracy_control"] = {
            "metric": "mean relative L2 error of the logits vs the float model, on the calibration clips",
            "limit": limit, "clips": len(clips),
            "ptq_rel_l2": round(drops[0], 5) if drops else None,
            "rel_l2": round(float(np.mean(after)), 5),
            "quantized_ops": quantized_ops, "reverted_to_float": len(reverted), "reverted": reverted,
            "seconds": round(time.monotonic() - t0, 1)}
        ac = info["accuracy_control"]
        ac["answer"] = (f"PTQ's logits were {ac['ptq_rel_l2']} relative L2 from float on {len(clips)} calibration "
                        f"clips (limit {limit}): {len(reverted)} of {quantized_ops} quantized ops returned to "
                        f"float -> {ac['rel_l2']} ({ac['seconds']:.0f} s)" if reverted else
                        f"PTQ's logits were {ac['ptq_rel_l2']} relative L2 from float on {len(clips)} "
                        f"calibration clips, within the limit {limit}: nothing returned to float")
    return out


def float_path_nodes(model: Any, inputs: list[str], stop: tuple[str, ...] = ("Divide", "Div")) -> list[str]:
    """Names of the nodes fed by ``inputs`` (an ``ov.Model`` or ONNX model), up to and including a division.

    These are an accumulator's bookkeeping (``sum + x``, ``count + 1``, and
    ``sum / count``): left unquantized, the running mean after the
    division is bounded again and is quantized as usual.
    """
    if hasattr(model, "get_parameters"):  # openvino
        frontier = [p for p in model.get_parameters() if set(p.output(0).get_names()) & set(inputs)]
        seen: dict[str, None] = {}
        while frontier:
            node = frontier.pop()
            for out in node.outputs():
                for target in out.get_target_inputs():
                    nxt = target.get_node()
                    name = nxt.get_friendly_name()
                    if nxt.get_type_name() in ("Result",) or name in seen:
                        continue
                    seen[name] = None
                    if nxt.get_type_name() not in stop:
                        frontier.append(nxt)
        return list(seen)
    graph = model.graph  # onnx
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    names: dict[str, None] = {}
    tensors = list(inputs)
    while tensors:
        for node in consumers.get(tensors.pop(), []):
            if node.name in names:
                continue
            names[node.name] = None
            if node.op_type not in stop:
                tensors.extend(node.output)
    return list(names)


# ---- ops a target cannot take ----------------------------------------------------------------

_ATEN = re.compile(r"aten(?:::|\.)([A-Za-z_][A-Za-z0-9_]*)")

# op -> what to do about it (per target where it differs); shown after the module path
WORKAROUNDS: dict[str, str] = {
    "max_pool3d": "ExecuTorch has no 3D pooling kernel: export with --target executorch, whose rewrite "
                  "turns it into a 2D pool plus a temporal reduce; OpenVINO and ONNX take it as is",
    "adaptive_avg_pool3d": "CoreML has no converter: edgevc's coreml target registers one (a mean over T,H,W); "
                           "elsewhere replace it with x.mean((2, 3, 4), keepdim=True)",
    "conv3d": "ExecuTorch/XNNPACK cannot run Conv3d: the executorch target rewrites it into Conv2d taps",
    "convolution": "ExecuTorch/XNNPACK cannot run Conv3d: the executorch target rewrites it into Conv2d taps",
}


class UnsupportedOpError(EdgevcError):
    """An op of the model that the target cannot convert: the op, where it is in the model, what to do."""


def unsupported_ops(message: str) -> list[str]:
    """The aten op names an exporter's error message names (``aten::foo`` or ``aten.foo.default``)."""
    ops = [m for m in _ATEN.findall(message) if m not in ("default", "Tensor")]
    return list(dict.fromkeys(ops))


def locate_op(model: Any, example: tuple, op: str) -> list[str]:
    """Module paths (and source lines) in ``model`` where aten ``op`` is called, via ``torch.export``."""
    import torch

    try:
        with quiet("torch"):
            ep = torch.export.export(model, example, strict=False)
    except Exception:  # noqa: BLE001 -- the export failing here too just means no location
        return []
    places = []
    for node in ep.graph.nodes:
        if node.op != "call_function" or str(node.target).split(".")[1:2] != [op]:
            continue
        stack = node.meta.get("nn_module_stack") or {}
        path, cls = list(stack.values())[-1] if stack else ("", type(model))
        name = getattr(cls, "__name__", str(cls).rsplit(".", 1)[-1].strip("'>"))
        where = f"{path or '<root>'} ({name})"
        places.append(f"{where}{_source_line(node.meta.get('stack_trace') or '')}")
    return list(dict.fromkeys(places))


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def _source_line(trace: str) -> str:
    """`` at path:line: `code``` for the innermost frame of a node's stack trace ('' if none)."""
    lines = trace.strip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        m = _FRAME.search(lines[i])
        if m:
            code = lines[i + 1].strip() if i + 1 < len(lines) else ""
            return f" at {m.group(1)}:{m.group(2)}" + (f": `{code}`" if code else "")
    return ""


def explain_failure(err: Exception, target: str, model: Any, example: tuple) -> EdgevcError | None:
    """Turn an exporter's "no conversion for aten::op" into an :class:`UnsupportedOpError`, else None."""
    ops = unsupported_ops(str(err))
    if not ops:
        return None
    lines = []
    for op in ops[:5]:
        places = locate_op(model, example, op)
        lines.append(f"aten::{op} at {'; '.join(places[:3]) if places else 'an unknown place in the model'}")
    fixes = [WORKAROUNDS[o] for o in ops if o in WORKAROUNDS]
    hint = "; ".join(fixes) if fixes else (
        "replace the op in that module's forward with ops the target converts, or pick another target "
        "(edgevc targets)")
    return UnsupportedOpError(f"{target} cannot convert {'; '.join(lines)}", hint=hint)
