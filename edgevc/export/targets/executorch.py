"""ExecuTorch with the XNNPACK delegate: ``model.pte`` plus ``delegation.json``, fp32 or int8.

Flow (TOOLCHAIN.md, measured): the exact 3D -> 2D graph rewrite of
:mod:`edgevc.export.rewrite` (Conv3d does not execute in ExecuTorch), then
``torch.export`` -> [int8: PT2E ``prepare_pt2e`` / calibration on the job's
real-video clips / ``convert_pt2e`` with ``XNNPACKQuantizer`` symmetric
per-channel, re-export] -> ``to_edge_transform_and_lower`` with the
``XnnpackPartitioner`` -> ``to_executorch`` -> ``model.pte``.

Lowering without error does not mean the program runs, so every ``.pte`` is
loaded and executed once on the example input before the export returns;
a failure raises :class:`ExecutionError` naming the ops left outside the
delegate and their module paths.

The share of nodes delegated to XNNPACK is written to ``delegation.json``
and to ``job.info["delegation"]``. A ``.pte`` has no metadata slot: the
``edgevc.json`` the driver writes beside it is the metadata carrier.
Stream models arrive as a module ``forward(frame, *state) -> (logits,
*new_state)`` (the driver's ``StepModule``): the state is explicit inputs and
outputs of the program.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgevc.errors import EdgevcError
from edgevc.export.base import ExportJob
from edgevc.export.support import as_inputs, quiet, require
from edgevc.runtime.backend import io_names

MODEL_FILE = "model.pte"
DELEGATION_FILE = "delegation.json"
# nodes that are bookkeeping, not compute: unpacking the delegate's outputs, constant blocks (a memset)
NOT_COMPUTE = ("getitem", "aten_full_default")
_LOGGERS = ("torch", "torch.export", "torch._export", "executorch", "torchao", "root")


class ExecutionError(EdgevcError):
    """The lowered program does not execute in the ExecuTorch runtime."""


class ExecutorchTarget:
    name = "executorch"
    precisions = ("fp32", "int8")
    requires = (("executorch", "export"), ("torchao", "export"))

    def export(self, job: ExportJob) -> str:
        require(self.requires, "ExecuTorch export")
        if job.precision not in self.precisions:
            raise EdgevcError(f"the executorch target writes {', '.join(self.precisions)}, not '{job.precision}'",
                              hint="pass --precision fp32 or int8")
        import torch

        from edgevc.export.rewrite import rewrite_3d

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        with quiet(*_LOGGERS), torch.no_grad():
            graph = rewrite_3d(job.model, job.example)
            program = torch.export.export(graph, job.example, strict=False)
            if job.precision == "int8":
                names = io_names(job.meta)[0]
                floats = [names.index(n) for n in job.options.get("float_inputs") or () if n in names]
                program = quantize_pt2e(program, job.example, job.calib, floats)
            timings["export_s"] = time.perf_counter() - t0
            edge, report = lower(program)
            buffer = edge.to_executorch().buffer
        timings["lower_s"] = time.perf_counter() - t0 - timings["export_s"]
        path = job.out_dir / MODEL_FILE
        path.write_bytes(buffer)
        report["rewrite"] = graph.meta.get("rewrite", {})
        executed = execute_once(path, job.example, reference=program.module(), precision=job.precision,
                                threads=job.options.get("threads"), suspects=report["not_delegated_at"])
        report["executed"] = executed
        report["timings_s"] = {k: round(v, 2) for k, v in timings.items()}
        (job.out_dir / DELEGATION_FILE).write_text(json.dumps(report, indent=2) + "\n")
        info = getattr(job, "info", None)
        if info is not None:
            info["delegation"] = summary(report)
            info["executed"] = executed
        return MODEL_FILE


def quantize_pt2e(program: Any, example: tuple, calib: Callable[[], Iterable[Any]] | None,
                  float_inputs: Sequence[int] = ()) -> Any:
    """PT2E static int8 with the XNNPACK quantizer (symmetric, per-channel weights), calibrated on real clips.

    ``float_inputs`` (input positions: a stream model's accumulators) keep
    their paths in float, up to and including the first division.
    """
    if calib is None:
        raise EdgevcError("int8 export needs calibration clips from real video",
                          hint="the driver passes them; calling the target directly, set ExportJob.calib")
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    graph = program.module()
    if float_inputs:
        keep = float_path(graph, float_inputs)
        quantizer.set_filter_function(lambda node: node not in keep)
    prepared = prepare_pt2e(graph, quantizer)
    seen = 0
    for item in calib():
        prepared(*(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in as_inputs(item)))
        seen += 1
    if not seen:
        raise EdgevcError("int8 calibration got no clips", hint="check the calibration sources (--calib)")
    converted = convert_pt2e(prepared)
    return torch.export.export(converted, example, strict=False)


def float_path(graph: Any, inputs: Sequence[int]) -> set[Any]:
    """Nodes fed by the ``inputs``-th placeholders, up to and including a division (an accumulator's mean)."""
    import torch

    placeholders = [n for n in graph.graph.nodes if n.op == "placeholder"]
    frontier = [placeholders[i] for i in inputs]
    seen: set[Any] = set()
    while frontier:
        node = frontier.pop()
        for user in node.users:
            if user.op != "call_function" or user in seen:
                continue
            seen.add(user)
            if user.target is not torch.ops.aten.div.Tensor:
                frontier.append(user)
    return seen


def lower(program: Any) -> tuple[Any, dict[str, Any]]:
    """``to_edge_transform_and_lower`` with XNNPACK; returns the edge program and the delegation report."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    return edge, delegation_report(edge.exported_program().graph_module)


def delegation_report(graph_module: Any) -> dict[str, Any]:
    """Delegated vs not, per op type, from ExecuTorch's ``get_delegation_info``.

    ``share`` counts every node ExecuTorch counts; ``compute_share`` leaves
    out bookkeeping that computes nothing (``getitem`` unpacking the
    delegate's outputs, ``full`` constant blocks of the temporal padding).
    """
    from executorch.devtools.backend_debug import get_delegation_info

    from edgevc.export.rewrite import module_path

    info = get_delegation_info(graph_module)
    by_op = {op: {"delegated": b.delegated, "not_delegated": b.non_delegated}
             for op, b in sorted(info.delegation_by_operator.items())}
    comp_d = sum(v["delegated"] for op, v in by_op.items() if op not in NOT_COMPUTE)
    comp_n = sum(v["not_delegated"] for op, v in by_op.items() if op not in NOT_COMPUTE)
    total = info.num_delegated_nodes + info.num_non_delegated_nodes
    outside = [f"{_op_type(n.name)} at {module_path(n)}" for n in graph_module.graph.nodes
               if n.op == "call_function" and _op_type(n.name) not in (*NOT_COMPUTE, "executorch_call_delegate")]
    return {
        "backend": "XnnpackBackend",
        "subgraphs": info.num_delegated_subgraphs,
        "delegated_nodes": info.num_delegated_nodes,
        "non_delegated_nodes": info.num_non_delegated_nodes,
        "share": round(info.num_delegated_nodes / total, 4) if total else 0.0,
        "compute_delegated": comp_d,
        "compute_nodes": comp_d + comp_n,
        "compute_share": round(comp_d / (comp_d + comp_n), 4) if comp_d + comp_n else 0.0,
        "compute_definition": f"every node get_delegation_info counts except {', '.join(NOT_COMPUTE)}",
        "not_delegated": {op: v["not_delegated"] for op, v in by_op.items() if v["not_delegated"]},
        "not_delegated_at": outside,
        "by_op": by_op,
    }


def _op_type(node_name: str) -> str:
    """``aten_full_default_3`` -> ``aten_full_default`` (how ``get_delegation_info`` names op types)."""
    return re.sub(r"_[\d]+$", "", node_name)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The few figures the export prints: shares, counts and what stayed outside XNNPACK."""
    keys = ("share", "compute_share", "delegated_nodes", "non_delegated_nodes", "compute_delegated",
            "compute_nodes", "subgraphs", "not_delegated")
    outside = ", ".join(f"{n} {op}" for op, n in report["not_delegated"].items()) or "nothing"
    answer = (f"XNNPACK runs {report['compute_delegated']} of {report['compute_nodes']} compute nodes "
              f"({report['compute_share']:.1%}); {report['delegated_nodes']} of "
              f"{report['delegated_nodes'] + report['non_delegated_nodes']} nodes counting bookkeeping "
              f"({report['share']:.1%}); outside: {outside}")
    return {**{k: report[k] for k in keys}, "answer": answer}


def execute_once(path: Path, example: tuple, reference: Any, precision: str, threads: int | None,
                 suspects: list[str]) -> dict[str, Any]:
    """Load and run ``path`` in the ExecuTorch runtime once; compare with ``reference`` (torch).

    Raises :class:`ExecutionError` when loading or executing fails (the
    runtime then names the missing kernel in its log, which is captured).
    """
    import torch

    from edgevc.runtime.backends.executorch import load_method, run_method

    with _CapturedStderr() as log:
        try:
            method = load_method(path, precision, threads)
            outputs = run_method(method, [t.numpy() for t in example])
        except Exception as err:  # noqa: BLE001 -- the runtime raises RuntimeError with a bare code
            raise ExecutionError(
                f"'{path.name}' lowered but does not execute in ExecuTorch: {str(err).strip()[:200]}; "
                f"runtime log: {_tail(log.text())}; ops outside XNNPACK: {'; '.join(suspects[:8]) or 'none'}",
                hint="an op outside the delegate has no portable kernel for these shapes: replace it in that "
                     "module's forward (5-D pads, 3D pools and convs are rewritten; others are not), or export "
                     "with --target openvino or onnx") from None
    with torch.no_grad():
        ref = reference(*example)
    refs = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    diffs = [float(np.max(np.abs(o - r.numpy()))) if o.size else 0.0 for o, r in zip(outputs, refs, strict=True)]
    reference_name = "the PT2E int8 torch model" if precision == "int8" else "the rewritten torch graph"
    worst = max(diffs) if diffs else 0.0
    return {"ok": True, "outputs": [list(o.shape) for o in outputs], "max_abs_vs_torch": worst,
            "reference": reference_name,
            "answer": f"ran once in the ExecuTorch runtime: {len(outputs)} output(s), logits "
                      f"{list(outputs[0].shape)}, max |pte - {reference_name}| = {worst:.3g}"}


def _tail(text: str, lines: int = 4) -> str:
    kept = [ln.strip() for ln in text.splitlines() if ln.strip() and "cpuinfo" not in ln]
    return " | ".join(kept[-lines:]) or "(empty)"


class _CapturedStderr:
    """Captures file descriptor 2 (the C++ runtime logs there, not to ``sys.stderr``)."""

    def __enter__(self) -> _CapturedStderr:
        import os
        import sys
        import tempfile

        sys.stderr.flush()
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc: Any) -> None:
        import os

        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.close()

    def text(self) -> str:
        self._file.seek(0)
        return self._file.read().decode(errors="replace")


TARGET = ExecutorchTarget()
