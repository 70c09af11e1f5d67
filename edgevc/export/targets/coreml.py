"""CoreML: an ML program (``model.mlpackage``), fp16 by default; int8 or palettized weights.

Flow: ``torch.export`` (``run_decompositions({})``) -> ``coremltools.convert``
to ``mlprogram`` for ``iOS17`` with named inputs and outputs (the clip, or
the frame and ``state_i``; ``logits`` and ``state_i_out``), compute precision
fp16 (``fp16``, ``int8``) or fp32 (``fp32``). ``int8`` stores the weights
as int8 (``linear_quantize_weights``, symmetric per channel: activations
stay fp16, the Neural Engine dequantizes); export option ``palettize: N``
palettizes the weights to N-bit look-up tables (k-means) instead.
Activation quantization needs predictions, so macOS.

The metadata is embedded as ``user_defined_metadata["edgevc"]`` (the JSON of
:class:`~edgevc.spec.ArtifactMeta`). coremltools has no converter for
``aten.adaptive_avg_pool3d``; :func:`register_converters` adds one (a
``reduce_mean`` over T, H, W for a 1x1x1 output, an ``avg_pool`` when the
output size divides the input).

Prediction is impossible on Linux ("Model prediction is only supported on
macOS"). There, verification is structural, by :func:`structural_check`:
the package reloads, its inputs and outputs have the artifact's names and
shapes, every convolution of the torch graph is a MIL ``conv``, the weights
are stored as the precision says (fp16, int8 ``constexpr_affine_dequantize``,
palettes ``constexpr_lut_to_dense``), and the embedded metadata matches.
Numeric parity is reported as NOT RUN, never as passed.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgevc.errors import EdgevcError
from edgevc.export.base import ExportJob
from edgevc.export.support import quiet, require
from edgevc.runtime.backend import io_names
from edgevc.spec import ArtifactMeta

MODEL_FILE = "model.mlpackage"
NOT_ON_LINUX = ("CoreML prediction needs macOS (the Core ML framework); coremltools on "
                f"{sys.platform} converts and inspects models but cannot run them")
COMPRESSION_OPS = {"int8": ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale"),
                   "palettize": ("constexpr_lut_to_dense",)}
_LOGGERS = ("coremltools", "torch", "torch.export", "root")
CONVS_KEY = "edgevc.torch_convolutions"
WEIGHTS_KEY = "edgevc.weights"


class CoremlTarget:
    name = "coreml"
    precisions = ("fp16", "fp32", "int8")
    requires = (("coremltools", "export"),)

    def export(self, job: ExportJob) -> str:
        require(self.requires, "CoreML export")
        import torch

        if job.precision not in self.precisions:
            raise EdgevcError(f"the coreml target writes {', '.join(self.precisions)}, not '{job.precision}'",
                              hint="int8 here means int8 weights; for palettes pass the export option palettize")
        with quiet(*_LOGGERS, stderr=True), torch.no_grad():
            program = torch.export.export(job.model.eval(), tuple(job.example), strict=False)
            program = program.run_decompositions({})
            mlmodel = convert(program, job)
        palette = job.options.get("palettize")
        mlmodel = compress(mlmodel, job.precision, int(palette) if palette else None)
        mlmodel.user_defined_metadata["edgevc"] = job.meta.replace(model_file=MODEL_FILE).to_json(indent=None)
        # what the structural check expects, recorded at export (the verifier has no torch graph)
        mlmodel.user_defined_metadata[CONVS_KEY] = str(count_convs(program))
        mlmodel.user_defined_metadata[WEIGHTS_KEY] = f"palette{int(palette)}" if palette else job.precision
        mlmodel.short_description = f"edgevc {job.meta.model} ({job.meta.precision}): see the edgevc metadata"
        path = job.out_dir / MODEL_FILE
        mlmodel.save(str(path))
        report = structural_check(path, job.meta.replace(model_file=MODEL_FILE))
        info = getattr(job, "info", None)
        if info is not None:
            info["coreml"] = {**report["summary"], "answer": report["answer"]}
        return MODEL_FILE

    def cannot_run(self) -> str | None:
        """Why numeric verification cannot run here (None on macOS)."""
        return None if sys.platform == "darwin" else NOT_ON_LINUX

    def structural_checks(self, folder: Path, meta: ArtifactMeta) -> list[dict[str, Any]]:
        """The checks the verifier lists (each {check, passed, detail}); all of them are run."""
        return structural_check(Path(folder) / meta.model_file, meta)["checks"]


def convert(program: Any, job: ExportJob) -> Any:
    """``ct.convert`` of an exported program to an ML program with the artifact's input and output names."""
    import coremltools as ct

    register_converters()
    in_names, out_names = io_names(job.meta)
    inputs = [ct.TensorType(name=n, shape=tuple(x.shape), dtype=np.float32)
              for n, x in zip(in_names, job.example, strict=True)]
    outputs = [ct.TensorType(name=n, dtype=np.float32) for n in out_names]
    target = getattr(ct.target, str(job.options.get("deployment_target", "iOS17")))
    precision = ct.precision.FLOAT32 if job.precision == "fp32" else ct.precision.FLOAT16
    return ct.convert(program, inputs=inputs, outputs=outputs, convert_to="mlprogram",
                      minimum_deployment_target=target, compute_precision=precision)


def compress(mlmodel: Any, precision: str, palette_bits: int | None) -> Any:
    """int8 weights (linear, symmetric per channel) or ``palette_bits``-bit k-means palettes."""
    import coremltools.optimize.coreml as cto

    if palette_bits:
        config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(nbits=palette_bits, mode="kmeans"))
        with quiet(*_LOGGERS, stderr=True):
            return cto.palettize_weights(mlmodel, config)
    if precision == "int8":
        config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel"))
        with quiet(*_LOGGERS, stderr=True):
            return cto.linear_quantize_weights(mlmodel, config)
    return mlmodel


def register_converters() -> None:
    """Add the converters coremltools 9.0 lacks (``adaptive_avg_pool3d``), once."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch import register_torch_op
    from coremltools.converters.mil.frontend.torch.ops import _get_inputs
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY

    if _TORCH_OPS_REGISTRY.get_func("adaptive_avg_pool3d") is not None:
        return

    def adaptive_avg_pool3d(context: Any, node: Any) -> None:
        x, size = _get_inputs(context, node, expected=2)
        out = [int(s) for s in np.atleast_1d(size.val)]
        out = out * 3 if len(out) == 1 else out
        spatial = [int(s) for s in x.shape[-3:]]
        if out == [1, 1, 1]:
            y = mb.reduce_mean(x=x, axes=[-3, -2, -1], keep_dims=True, name=node.name)
        elif all(i % o == 0 for i, o in zip(spatial, out, strict=True)):
            k = [i // o for i, o in zip(spatial, out, strict=True)]
            y = mb.avg_pool(x=x, kernel_sizes=k, strides=k, pad_type="valid", name=node.name)
        else:
            raise NotImplementedError(f"adaptive_avg_pool3d from {spatial} to {out}: the output must divide the "
                                      "input (or be 1x1x1)")
        context.add(y)

    register_torch_op(adaptive_avg_pool3d)


def count_convs(program: Any) -> int:
    """Convolutions in the exported torch graph (every one must become a MIL ``conv``)."""
    return sum(1 for n in program.graph.nodes if n.op == "call_function"
               and str(n.target).split(".")[1:2] in (["convolution"], ["conv2d"], ["conv3d"], ["conv1d"]))


# ---- structural verification (what Linux can check) --------------------------------------------

def structural_check(path: str | Path, meta: ArtifactMeta) -> dict[str, Any]:
    """Reload ``path`` without running it and check its structure against ``meta``.

    Returns ``{"checks": [{check, passed, detail}], "summary": {...}, "answer":
    str, "numeric_parity": "NOT RUN: ..." | "possible (macOS)"}``. Every check
    listed was run; numeric parity is never among them (it needs a prediction).
    """
    import coremltools as ct

    path = Path(path)
    checks: list[dict[str, Any]] = []

    def add(name: str, passed: bool, detail: str) -> None:
        checks.append({"check": name, "passed": bool(passed), "detail": detail})

    try:
        with quiet(*_LOGGERS, stderr=True):
            spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    except Exception as err:  # noqa: BLE001 -- any failure to reload is the finding
        add("reload", False, f"coremltools cannot reload '{path.name}': {str(err)[:200]}")
        return _result(checks, {}, meta)
    kind = spec.WhichOneof("Type")
    add("reload", kind == "mlProgram", f"reloads as {kind} (spec version {spec.specificationVersion})")
    ops, consts = _program_ops(spec)
    summary: dict[str, Any] = {"ops": dict(ops.most_common()), "weights_by_dtype": consts}
    _check_io(spec, meta, add)
    user = dict(spec.description.metadata.userDefined)
    convs, expected = ops.get("conv", 0), user.get(CONVS_KEY)
    add("convolutions", expected is not None and convs == int(expected),
        f"{convs} MIL conv ops for {expected} torch convolutions (recorded at export)" if expected is not None
        else f"{convs} MIL conv ops; the export did not record the torch count ({CONVS_KEY})")
    _check_weights(user.get(WEIGHTS_KEY, meta.precision), ops, consts, add)
    _check_metadata(spec, meta, add)
    return _result(checks, summary, meta)


def _result(checks: list[dict[str, Any]], summary: dict[str, Any], meta: ArtifactMeta) -> dict[str, Any]:
    parity = "possible (macOS): run edgevc's verification" if sys.platform == "darwin" else f"NOT RUN: {NOT_ON_LINUX}"
    passed = sum(c["passed"] for c in checks)
    failed = [c["check"] for c in checks if not c["passed"]]
    answer = (f"{passed} of {len(checks)} structural checks passed"
              f"{' (FAILED: ' + ', '.join(failed) + ')' if failed else ''}; numeric parity {parity}")
    summary = {**summary, "checks_passed": passed, "checks": len(checks)}
    return {"checks": checks, "summary": summary, "answer": answer, "numeric_parity": parity,
            "model": meta.model, "precision": meta.precision}


def _program_ops(spec: Any) -> tuple[collections.Counter[str], dict[str, int]]:
    """MIL op histogram of ``main``, and large constants (>= 1024 values, i.e. weights) by dtype."""
    from coremltools.proto import MIL_pb2

    fn = spec.mlProgram.functions["main"]
    block = fn.block_specializations[fn.opset]
    ops: collections.Counter[str] = collections.Counter(op.type for op in block.operations)
    consts: collections.Counter[str] = collections.Counter()
    for op in block.operations:
        for out in op.outputs:
            tt = out.type.tensorType
            size = int(np.prod([d.constant.size for d in tt.dimensions])) if tt.dimensions else 1
            if op.type.startswith("const") and size >= 1024:
                consts[f"{op.type}:{MIL_pb2.DataType.Name(tt.dataType).lower()}"] += 1
    return ops, dict(consts)


def _check_io(spec: Any, meta: ArtifactMeta, add: Any) -> None:
    in_names, out_names = io_names(meta)
    shapes = [tuple(meta.input_shape), *(tuple(s.shape) for s in meta.state)]
    got_in = [(i.name, tuple(int(d) for d in i.type.multiArrayType.shape)) for i in spec.description.input]
    want_in = list(zip(in_names, shapes, strict=True))
    add("inputs", got_in == want_in, f"{_fmt(got_in)} as edgevc.json" if got_in == want_in
        else f"{_fmt(got_in, 99)}; expected {_fmt(want_in, 99)}")
    got_out = [(o.name, tuple(int(d) for d in o.type.multiArrayType.shape)) for o in spec.description.output]
    want_out = [(out_names[0], (1, len(meta.labels)))] + [(f"{s.name}_out", tuple(s.shape)) for s in meta.state]
    names_ok = [n for n, _ in got_out] == out_names
    shapes_ok = all(not g[1] or g[1] == w[1] for g, w in zip(got_out, want_out, strict=False))
    ok = names_ok and shapes_ok and len(got_out) == len(want_out)
    add("outputs", ok, f"{_fmt(got_out)} as edgevc.json" if ok
        else f"{_fmt(got_out, 99)}; expected {_fmt(want_out, 99)}")


def _check_weights(weights: str, ops: collections.Counter[str], consts: dict[str, int], add: Any) -> None:
    """The weights are stored as ``weights`` says: ``fp32``, ``fp16``, ``int8`` or ``palette<N>``."""
    lut = sum(ops.get(o, 0) for o in COMPRESSION_OPS["palettize"])
    q8 = sum(ops.get(o, 0) for o in COMPRESSION_OPS["int8"])
    fp32 = sum(n for k, n in consts.items() if k.endswith(":float32"))
    fp16 = sum(n for k, n in consts.items() if k.endswith(":float16"))
    if weights.startswith("palette"):
        add("compression", lut > 0 and fp32 == 0,
            f"{lut} constexpr_lut_to_dense ({weights[7:]}-bit palettes), {fp16} fp16 weights left")
    elif weights == "int8":
        add("compression", q8 > 0 and fp32 == 0,
            f"{q8} int8 weight tensors ({', '.join(COMPRESSION_OPS['int8'])}), {fp16} fp16 weights left "
            "below coremltools' size threshold")
    elif weights == "fp16":
        add("compression", fp16 > 0 and fp32 == 0, f"{fp16} fp16 weight tensors, {fp32} fp32")
    else:
        add("compression", fp32 > 0 and q8 == lut == 0, f"{fp32} fp32 weight tensors, no compression ops")


def _check_metadata(spec: Any, meta: ArtifactMeta, add: Any) -> None:
    text = dict(spec.description.metadata.userDefined).get("edgevc")
    if text is None:
        add("metadata", False, "no user_defined_metadata['edgevc']")
        return
    try:
        embedded = ArtifactMeta.from_json(text)
    except EdgevcError as err:
        add("metadata", False, f"embedded metadata does not validate: {err.message}")
        return
    keys = ("model", "labels", "clip", "preproc", "agg", "input_shape", "precision", "target", "state")
    bad = [k for k in keys if getattr(embedded, k) != getattr(meta, k)]
    add("metadata", not bad, "user_defined_metadata['edgevc'] matches edgevc.json" if not bad
        else f"embedded metadata differs in {', '.join(bad)}")


def _fmt(items: list[tuple[str, tuple[int, ...]]], limit: int = 3) -> str:
    shown = ", ".join(f"{n}{list(s)}" for n, s in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


TARGET = CoremlTarget()
