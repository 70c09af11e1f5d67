"""OpenVINO IR: ``model.xml`` + ``model.bin``, static input shape, metadata in ``rt_info["edgevc"]``.

- ``torch.export`` then ``ov.convert_model(exported_program)`` (the same
  graph capture as the ONNX target; OpenVINO's TorchScript tracing turned
  I3D's shape-dependent pooling window into a non-constant and failed), then
  ``reshape`` to the static input shapes (conversion leaves them ``?``).
- fp32 weights are stored as fp32 (``compress_to_fp16=False``); ``fp16``
  stores fp16 weights (the CPU plugin decompresses them at load).
- int8: NNCF post-training quantization of the ``ov.Model`` on clips from
  real video (TOOLCHAIN.md: PTQ on the OpenVINO model gave the smallest
  error of the routes tried).
- int8 of a model that already holds its quantization (option
  ``prequantized``: NNCF quantization-aware training, ``edgevc compress``):
  its fake-quantize ops convert to ``FakeQuantize`` nodes as they are.

At run time, a CPU with bf16 (AVX-512 BF16, AMX) executes an "fp32" model in
bf16 unless ``INFERENCE_PRECISION_HINT`` is ``f32``: the profiles verify with
the hint and report the default as its own row.
"""

from __future__ import annotations

from edgevc.export.base import ExportJob
from edgevc.export.support import nncf_quantize, quiet, require
from edgevc.runtime.backend import io_names

MODEL_FILE = "model.xml"


class OpenVINOTarget:
    name = "openvino"
    precisions = ("fp32", "fp16", "int8")
    requires = (("openvino", "openvino"),)

    def export(self, job: ExportJob) -> str:
        require(self.requires, "OpenVINO export")
        import openvino as ov
        import torch

        inputs, outputs = io_names(job.meta)
        with quiet("openvino", "torch"), torch.no_grad():
            program = torch.export.export(job.model, job.example, strict=False)
            model = ov.convert_model(program)
        model.reshape({port: ov.PartialShape(list(shape))
                       for port, shape in zip(model.inputs, _shapes(job.meta), strict=True)})
        if len(model.inputs) != len(inputs) or len(model.outputs) != len(outputs):
            raise RuntimeError(f"OpenVINO model has {len(model.inputs)} inputs and {len(model.outputs)} outputs, "
                               f"expected {len(inputs)} and {len(outputs)} ({inputs[:3]}..., {outputs[:3]}...)")
        for port, name in zip(model.inputs, inputs, strict=True):
            port.get_tensor().set_names({name})
        for port, name in zip(model.outputs, outputs, strict=True):
            port.get_tensor().set_names({name})
        if job.precision == "int8" and not job.options.get("prequantized"):
            model = nncf_quantize(model, job.calib, inputs, job.options, job.info)
        meta = job.meta.replace(model_file=MODEL_FILE)
        model.set_rt_info(meta.to_json(indent=None), "edgevc")
        ov.save_model(model, str(job.out_dir / MODEL_FILE), compress_to_fp16=job.precision == "fp16")
        return MODEL_FILE


def _shapes(meta) -> list[tuple[int, ...]]:
    return [tuple(meta.input_shape), *(tuple(s.shape) for s in meta.state)]


TARGET = OpenVINOTarget()
