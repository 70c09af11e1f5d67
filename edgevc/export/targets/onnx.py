"""ONNX: one ``model.onnx`` (opset 18, no external data), checked by ``onnx.checker``, run by onnxruntime.

- fp32: ``torch.onnx.export(dynamo=True, external_data=False)``.
- fp16: the fp32 graph converted by onnxruntime's ``float16`` tool with
  float32 inputs and outputs kept (``keep_io_types``), so the runtime API
  does not change.
- int8: NNCF post-training quantization of the ONNX graph (QDQ) on clips
  cut from real video. onnxruntime does not always run QDQ faster than fp32
  on a CPU, so the export times both, interleaved, and records the answer
  in ``info["int8_vs_fp32"]`` (printed by ``edgevc export``).
- int8 of a model that already holds its quantization (option
  ``prequantized``: quantization-aware training, ``edgevc compress``): its
  fake-quantize ops export as QDQ directly, constant weights folded to int8
  (:func:`fold_weight_quantize`); no speed check (there is no fp32 graph).

The artifact metadata is embedded in ``metadata_props`` under key ``edgevc``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from edgevc.export.base import ExportJob
from edgevc.export.support import nncf_quantize, quiet, require
from edgevc.runtime.backend import io_names

MODEL_FILE = "model.onnx"
OPSET = 18
TWO_GB = 2**31


class OnnxTarget:
    name = "onnx"
    precisions = ("fp32", "fp16", "int8")
    requires = (("onnx", "export"), ("onnxscript", "export"), ("onnxruntime", "onnx"))

    def export(self, job: ExportJob) -> str:
        require(self.requires, "ONNX export")
        import onnx

        inputs, outputs = io_names(job.meta)
        path = job.out_dir / MODEL_FILE
        quantize = job.precision == "int8" and not job.options.get("prequantized")
        fp32 = job.out_dir / ".fp32.onnx" if quantize else path
        _torch_export(job, fp32, inputs, outputs)
        model = onnx.load(str(fp32))
        if job.precision == "fp16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            with quiet("onnxruntime"):
                model = convert_float_to_float16(model, keep_io_types=True)
        elif quantize:
            model = nncf_quantize(split_fanout(model), job.calib, inputs, job.options, job.info)
        elif job.precision == "int8":
            job.info["int8_weights"] = f"{fold_weight_quantize(model)} fake-quantized weights stored as int8"
        meta = job.meta.replace(model_file=MODEL_FILE)
        del model.metadata_props[:]
        model.metadata_props.add(key="edgevc", value=meta.to_json(indent=None))
        onnx.save(model, str(path))
        onnx.checker.check_model(str(path), full_check=True)
        if quantize:
            try:
                if job.options.get("speed_check", True):
                    job.info["int8_vs_fp32"] = compare_speed(fp32, path, job, inputs)
            finally:
                fp32.unlink(missing_ok=True)
        return MODEL_FILE


def split_fanout(model: Any) -> Any:
    """Give every consumer of a multi-consumer tensor its own ``Identity`` copy, and every node a unique name.

    NNCF 3.4's full bias correction on an ONNX graph extracts a subgraph per
    layer and failed ("Duplicate definition-site") where one tensor feeds
    several branches (Inception's max-pool output) or node names repeat;
    with this it runs, and onnxruntime removes the Identity nodes again when
    it loads the model. Measured on I3D (32x224², 32 real clips): see
    targets/onnx-int8.yaml.
    """
    from onnx import helper

    graph = model.graph
    consumers: dict[str, list[tuple[Any, int]]] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name:
                consumers.setdefault(name, []).append((node, i))
    nodes = []
    for node in graph.node:
        nodes.append(node)
        for out in node.output:
            users = consumers.get(out, [])
            if len(users) < 2:
                continue
            for k, (user, i) in enumerate(users):
                alias = f"{out}__to{k}"
                nodes.append(helper.make_node("Identity", [out], [alias]))
                user.input[i] = alias
    del graph.node[:]
    graph.node.extend(nodes)
    for i, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{i}"
    return model


def fold_weight_quantize(model: Any) -> int:
    """Store fake-quantized constant weights as integers: ``QuantizeLinear(initializer)`` becomes an initializer.

    A quantization-aware-trained model exports each weight as a float
    initializer followed by ``QuantizeLinear`` -> ``DequantizeLinear``, which
    keeps the file at fp32 size and quantizes at every load. Computing the
    ``QuantizeLinear`` here (``saturate(round_half_even(w / scale) + zero_point)``,
    in float32 as the ONNX operator does) leaves the usual QDQ form of int8
    weights, as NNCF's post-training quantization writes it. Returns how many
    weights were folded.
    """
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consts = {n.output[0]: n for n in graph.node if n.op_type == "Constant" and n.attribute[0].name == "value"}

    def value(name: str) -> Any:
        if name in inits:
            return numpy_helper.to_array(inits[name])
        return numpy_helper.to_array(consts[name].attribute[0].t) if name in consts else None

    folded, keep = [], []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in inits or len(node.input) < 3 or \
                any(value(n) is None for n in node.input[1:3]):
            keep.append(node)
            continue
        w, scale, zero = (value(n) for n in node.input[:3])
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.size > 1:
            shape = [1] * w.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        info = np.iinfo(zero.dtype)
        q = np.clip(np.round(w.astype(np.float32) / scale.astype(np.float32)) + zero.astype(np.int32),
                    info.min, info.max).astype(zero.dtype)
        graph.initializer.append(numpy_helper.from_array(q, node.output[0]))
        folded.append(node.input[0])
    del graph.node[:]
    graph.node.extend(keep)
    used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    for name in set(folded) - used:  # the float weights, unless something else reads them
        graph.initializer.remove(inits[name])
    return len(folded)


def _torch_export(job: ExportJob, path: Path, inputs: list[str], outputs: list[str]) -> None:
    import torch

    with quiet("torch.onnx", "torch.export", "torch._dynamo"), torch.no_grad():
        program = torch.onnx.export(
            job.model, job.example, dynamo=True, external_data=False, opset_version=OPSET,
            input_names=inputs, output_names=outputs, verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path), external_data=False)
    if path.stat().st_size >= TWO_GB:
        raise RuntimeError(f"the ONNX model is {path.stat().st_size / 1e9:.1f} GB: over protobuf's 2 GB, "
                           "which needs external data (not supported by this target)")


def compare_speed(fp32: Path, int8: Path, job: ExportJob, inputs: list[str], runs: int | None = None,
                  budget_s: float = 2.0) -> dict[str, Any]:
    """Median latency of the fp32 and int8 graphs in onnxruntime on one real clip, runs interleaved.

    At least ``runs`` rounds (option ``speed_runs``, default 5) after one
    warm-up round, more while under ``budget_s`` seconds (at most 50), so
    a small model gets enough repeats for its median to mean something.
    """
    import numpy as np
    import onnxruntime as ort

    runs = int(runs or job.options.get("speed_runs", 5))
    threads = int(job.options.get("threads") or 2)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sessions = {k: ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
                for k, p in (("fp32", fp32), ("int8", int8))}
    item = next(iter(job.calib())) if job.calib else None
    feed_arrays = list(item) if isinstance(item, (tuple, list)) else [item]
    feed = dict(zip(inputs, [np.ascontiguousarray(a, dtype=np.float32) for a in feed_arrays], strict=True))
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    start, rounds = time.perf_counter(), 0
    while rounds <= runs or (time.perf_counter() - start < budget_s and rounds <= 50):
        for key, sess in sessions.items():
            t0 = time.perf_counter()
            sess.run(None, feed)
            times[key].append(time.perf_counter() - t0)
        rounds += 1
    fp, q = (statistics.median(times[k][1:]) * 1e3 for k in ("fp32", "int8"))  # round 0 warms up
    ratio = fp / q
    if abs(ratio - 1.0) < 0.05:
        answer = f"int8 is about as fast as fp32 ({ratio:.2f}x, within 5%)"
    elif ratio > 1.0:
        answer = f"int8 is {ratio:.2f}x FASTER than fp32"
    else:
        answer = f"int8 is {1 / ratio:.2f}x SLOWER than fp32"
    return {"fp32_ms": round(fp, 2), "int8_ms": round(q, 2), "speedup": round(ratio, 3), "runs": rounds - 1,
            "threads": threads, "answer": f"{answer} in onnxruntime {ort.__version__} on this CPU "
                                          f"({threads} threads, median of {rounds - 1} interleaved runs, "
                                          f"fp32 {fp:.1f} ms, int8 {q:.1f} ms)"}


TARGET = OnnxTarget()
