"""Quantization-aware training with NNCF, for the OpenVINO and ONNX targets.

``nncf.quantize`` on the torch network inserts NNCF quantizers (ranges set
from the calibration clips, trainable scales) through function hooks; the
network is then fine-tuned as usual with BatchNorm frozen (the modules
stay in eval mode, as NNCF's QAT guidance advises for short fine-tunes), and
``nncf.strip`` (NATIVE format) turns each NNCF quantizer into a
``torch.ao`` ``FakeQuantize`` holding the trained ranges.

``torch.export`` cannot capture a ``FakeQuantize`` module: its forward
branches on a buffer (``if self.observer_enabled[0] == 1``), a data-dependent
guard. :func:`freeze_fake_quantizers` replaces each one by
:class:`FrozenFakeQuantize`, which calls ``torch.fake_quantize_per_channel_affine``
/ ``fake_quantize_per_tensor_affine`` with the same scale, zero point and
integer range; those ops export, and the targets turn them into OpenVINO
``FakeQuantize`` nodes and ONNX ``QuantizeLinear``/``DequantizeLinear`` pairs
(the OpenVINO and ONNX targets' ``prequantized`` option converts them as
they are instead of quantizing again).

API notes (NNCF 3.4.0): ``nncf.strip(model, do_copy=True,
strip_format=StripFormat.NATIVE, example_input=x)`` needs ``example_input``
(it traces the graph to find weight quantizers); the hooks live in
``nncf.torch.function_hook.wrapper.get_hook_storage(model)``, whose
``named_hooks()`` / ``set_submodule()`` reach the quantizer modules.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from edgevc.compress.finetune import FinetuneStats, finetune, freeze_bn_mode
from edgevc.compress.recipe import QATSection
from edgevc.export.support import quiet, require


class FrozenFakeQuantize(nn.Module):
    """A ``torch.ao`` ``FakeQuantize`` with its observer gone: the fake-quantize op alone, exportable."""

    def __init__(self, fq: nn.Module) -> None:
        super().__init__()
        self.register_buffer("scale", fq.scale.detach().clone().float())
        self.register_buffer("zero_point", fq.zero_point.detach().clone().to(torch.int32))
        self.axis = int(fq.ch_axis)
        self.quant_min, self.quant_max = int(fq.quant_min), int(fq.quant_max)
        self.per_channel = fq.qscheme in (torch.per_channel_symmetric, torch.per_channel_affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_channel:
            return torch.fake_quantize_per_channel_affine(x, self.scale, self.zero_point, self.axis,
                                                          self.quant_min, self.quant_max)
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, self.quant_min, self.quant_max)

    def extra_repr(self) -> str:
        kind = f"per channel (axis {self.axis})" if self.per_channel else "per tensor"
        return f"{kind}, [{self.quant_min}, {self.quant_max}]"


def freeze_fake_quantizers(model: nn.Module) -> dict[str, int]:
    """Replace every quantizer hook of a stripped NNCF model by :class:`FrozenFakeQuantize`.

    Covers the ``FakeQuantize`` modules ``nncf.strip`` made and the NNCF
    quantizers it left: a quantizer shared by several hooks (TSM's temporal
    shift slices one tensor several times) is replaced under its first name
    only (NNCF 3.4 walks ``named_hooks()``, which skips duplicates), so its
    other names still hold the NNCF module, which ``torch.export`` cannot
    capture. Shared stays shared. Returns counts by kind, e.g.
    ``{"per_channel [-128, 127]": 88, ...}``.
    """
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.quantization.layers import BaseQuantizer
    from nncf.torch.quantization.strip import convert_to_torch_fakequantizer
    from torch.ao.quantization.fake_quantize import FakeQuantize

    storage = get_hook_storage(model)
    frozen: dict[int, FrozenFakeQuantize] = {}
    for name, module in list(storage.named_hooks(remove_duplicate=False)):
        if isinstance(module, (FakeQuantize, BaseQuantizer)):
            if id(module) not in frozen:
                fq = convert_to_torch_fakequantizer(module) if isinstance(module, BaseQuantizer) else module
                frozen[id(module)] = FrozenFakeQuantize(fq)
            storage.set_submodule(name, frozen[id(module)])
    counts: dict[str, int] = {}
    for f in frozen.values():
        key = f"{'per_channel' if f.per_channel else 'per_tensor'} [{f.quant_min}, {f.quant_max}]"
        counts[key] = counts.get(key, 0) + 1
    return counts


def nncf_qat(model: nn.Module, calib: list[np.ndarray], loader: torch.utils.data.DataLoader, cfg: QATSection,
             log: Callable[[str], None]) -> tuple[nn.Module, FinetuneStats, dict[str, Any]]:
    """NNCF int8 of a copy of ``model`` (ranges from ``calib``), fine-tuned, stripped, fake-quantizers frozen.

    Returns (the exportable quantized network, what the fine-tune did, a description).
    """
    require([("nncf", "export")], "quantization-aware training with NNCF")
    import nncf

    fp = copy.deepcopy(model).eval()
    dataset = nncf.Dataset([torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32)) for c in calib])
    nncf.set_log_level(logging.ERROR)
    with quiet("nncf"):
        q = nncf.quantize(fp, dataset, subset_size=len(calib))
    params = [p for p in q.parameters() if p.requires_grad]
    quant_params = sum(p.numel() for n, p in q.named_parameters() if p.requires_grad and "__nncf_hooks" in n)
    log(f"qat nncf: {len(calib)} calibration clips set the initial ranges; training {len(params)} tensors "
        f"({quant_params} quantizer scales), BatchNorm {'frozen' if cfg.freeze_bn else 'in batch mode'}")
    stats = finetune(q, params, loader, cfg, freeze_bn_mode(q, cfg.freeze_bn), log, "qat nncf")
    q.eval()
    example = torch.from_numpy(np.ascontiguousarray(calib[0], dtype=np.float32))
    with quiet("nncf"), torch.no_grad():
        stripped = nncf.strip(q, do_copy=True, example_input=example)
    counts = freeze_fake_quantizers(stripped)
    return stripped.eval(), stats, {
        "method": "NNCF 3.4 quantize (torch) + fine-tune with trained quantizer scales, strip (NATIVE), "
                  "fake-quantize ops frozen",
        "fake_quantizers": counts, "calib_clips": len(calib), "freeze_bn": cfg.freeze_bn}
