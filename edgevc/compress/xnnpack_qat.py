"""Quantization-aware training with PT2E and the XNNPACK quantizer, for the ExecuTorch target.

Flow: ``torch.export`` of the network in eval mode (BatchNorm uses its
running statistics: frozen) -> ``prepare_qat_pt2e`` with
``XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True,
is_qat=True))`` (int8 activations per tensor, int8 weights symmetric per
output channel, fake-quantized in the forward pass) -> fine-tune -> the
trained weights go back into the eager network -> the ExecuTorch target's
usual int8 path: the Conv3d -> Conv2d rewrite, ``prepare_pt2e`` with the
same quantizer (static), calibration on the same training clips as PTQ,
``convert_pt2e``, XNNPACK lowering.

The fake-quantizers' moving-average observers follow the data for
``qat.observer_steps`` steps, then their ranges freeze and only the weights
train, as PyTorch's QAT recipe does. Left observing, the ranges chase the
changing weights: on TSM the QAT loss rose from 0.07 to 0.21 over 170 steps
while the learning rate fell, and the int8 artifact lost 1 point.

Why the weights and not the converted QAT graph: ExecuTorch runs only the
rewritten (2D) graph, and that graph trains badly here. Its shapes are
static in the batch (``rewrite_3d`` bakes ``N*T`` into its reshapes), so it
trains one clip at a time, and its extra quantization points make each step
slow: x3d_xs at 8x112², forward + backward per clip, 2 threads, measured in
two runs on a 2-core machine under load (absolute times inflated, ratios
meaningful): eager 2.4 / 2.8 s, the prepared QAT graph without the rewrite
3.4 s, the prepared QAT graph of the rewrite 11.8 s at batch 4 and 19.4 s
at batch 1. What QAT learns survives the move: weights are
quantized per output channel and symmetrically, so folding BatchNorm into
the convolution (a per-channel scale) and regrouping the temporal taps (the
rewrite) leave each channel's grid unchanged; the activation ranges are
observed again on the rewritten graph, as PTQ does.

API notes (executorch 1.5.1 / torchao 0.18): ``prepare_qat_pt2e`` and
``convert_pt2e`` live in ``torchao.quantization.pt2e.quantize_pt2e``;
``XNNPACKQuantizer`` and ``get_symmetric_quantization_config`` in
``executorch.backends.xnnpack.quantizer.xnnpack_quantizer``. A prepared or
converted model refuses ``.train()``/``.eval()`` (``_disallow_eval_train``);
this flow never calls them on it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from edgevc.compress.finetune import FinetuneStats, finetune
from edgevc.compress.recipe import QATSection
from edgevc.errors import EdgevcError
from edgevc.export.support import quiet, require

_LOGGERS = ("torch", "torch.export", "torch._export", "executorch", "torchao", "root")


def xnnpack_qat(model: nn.Module, loader: torch.utils.data.DataLoader, cfg: QATSection,
                log: Callable[[str], None]) -> tuple[nn.Module, FinetuneStats, dict[str, Any]]:
    """PT2E QAT of a copy of ``model``; returns (the eager network with the QAT weights, stats, description)."""
    require([("executorch", "export"), ("torchao", "export")], "quantization-aware training for ExecuTorch")
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    fp = copy.deepcopy(model).eval()
    x, _ = next(iter(loader))  # the batch shape the graph is captured with (the loader drops the last partial one)
    with quiet(*_LOGGERS):
        graph = torch.export.export(fp, (x,), strict=False).module()
        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=True))
        prepared = prepare_qat_pt2e(graph, quantizer)
    frozen = freeze_bn_nodes(prepared) if cfg.freeze_bn else 0
    before = {k: v.clone() for k, v in prepared.state_dict().items() if "running_" in k}
    params = [p for p in prepared.parameters() if p.requires_grad]
    fake = sum(1 for m in prepared.modules() if type(m).__name__ == "FusedMovingAvgObsFakeQuantize")
    if not params:
        raise EdgevcError("the PT2E QAT graph has no trainable parameters", hint="a bug: report it with the model")
    log(f"qat xnnpack: PT2E graph at batch {x.shape[0]}, {fake} fake-quantizers, training {len(params)} tensors, "
        + (f"BatchNorm frozen ({frozen} batch-norm nodes set to use their running statistics)" if cfg.freeze_bn
           else "BatchNorm in batch mode"))
    observers: dict[str, Any] = {"frozen_at_step": None, "scales": None}
    freeze_at = cfg.observer_steps

    def before_step(step: int) -> None:
        if step == (freeze_at if freeze_at is not None else 1):  # unfrozen: drift is measured from step 1
            observers["scales"] = fake_quant_scales(prepared)
        if freeze_at is not None and step == freeze_at:
            from torchao.quantization.pt2e.fake_quantize import disable_observer

            prepared.apply(disable_observer)
            observers["frozen_at_step"] = step
            log(f"  qat xnnpack: observer ranges frozen after {step} steps (only the weights train from here)")

    stats = finetune(prepared, params, loader, cfg, lambda: None, log, "qat xnnpack", before_step)
    drift = scale_drift(observers["scales"], fake_quant_scales(prepared)) if observers["scales"] else None
    if observers["frozen_at_step"] is not None and drift:
        raise EdgevcError(f"fake-quantizer ranges moved by {drift:.3g} (relative) after their observers were frozen",
                          hint="a bug in freezing the PT2E graph's observers: report it")
    if cfg.freeze_bn:
        moved = [k for k, v in prepared.state_dict().items() if k in before and not torch.equal(v, before[k])]
        if moved:
            raise EdgevcError(f"BatchNorm statistics changed during QAT although frozen ({len(moved)} buffers, e.g. "
                              f"{moved[:2]})", hint="a bug in freezing the PT2E graph's batch norms: report it")
    taken = take_weights(fp, prepared)
    return fp.eval(), stats, {
        "method": "PT2E prepare_qat_pt2e + XNNPACKQuantizer (symmetric, per-channel, is_qat) fine-tune; "
                  "weights back into the network, then the executorch target's rewrite + PT2E int8 "
                  "calibrated on the PTQ clips; "
                  + (f"observer ranges frozen after {observers['frozen_at_step']} steps"
                     if observers["frozen_at_step"] is not None else "observers left on throughout"),
        "fake_quantizers": fake, "weights_taken": taken, "observers_frozen_at_step": observers["frozen_at_step"],
        "scale_drift_after": None if drift is None else round(drift, 6)}


def fake_quant_scales(graph: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every fake-quantizer's scale in ``graph``, by module name."""
    return {name: m.scale.detach().clone() for name, m in graph.named_modules()
            if hasattr(m, "scale") and hasattr(m, "observer_enabled")}


def scale_drift(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    """The largest relative change of any fake-quantizer scale between two snapshots."""
    worst = 0.0
    for name, old in before.items():
        new = after[name]
        if old.shape != new.shape:
            return float("inf")
        worst = max(worst, float(((new - old).abs() / old.abs().clamp_min(1e-12)).max()) if old.numel() else 0.0)
    return worst


_TRAINING_BN = ("aten._native_batch_norm_legit.default", "aten.cudnn_batch_norm.default",
                "aten.batch_norm.default")


def freeze_bn_nodes(graph: torch.fx.GraphModule) -> int:
    """Make every batch norm of a PT2E QAT graph use its running statistics, and never update them.

    A network captured in eval mode is not enough: ``prepare_qat_pt2e`` rewrites each conv + BN into its
    QAT pattern, whose batch norm runs in training mode (batch statistics, running ones updated every step:
    on a batch of 8 clips they drifted by up to 86% of their norm in one QAT run). As in PyTorch's PT2E QAT
    guide ("freeze BN statistics"), the ``training`` argument of those nodes is set to False. Returns how many.
    """
    count = 0
    for node in graph.graph.nodes:
        if node.op == "call_function" and str(node.target) in _TRAINING_BN:
            args = list(node.args)  # (input, weight, bias, running_mean, running_var, training, ...)
            if args[5] is not False:
                args[5] = False
                node.args = tuple(args)
                count += 1
    graph.recompile()
    return count


def take_weights(model: nn.Module, graph: nn.Module) -> int:
    """Copy the trained parameters of ``graph`` (same names as ``model``'s) into ``model``; returns how many.

    Every parameter of ``model`` must be found with its shape: a renamed one
    would silently keep its pre-QAT value.
    """
    state = graph.state_dict()
    own = dict(model.named_parameters())
    missing = [k for k, p in own.items() if k not in state or state[k].shape != p.shape]
    if missing:
        raise EdgevcError(f"{len(missing)} parameters of {type(model).__name__} are not in the QAT graph under "
                          f"their names (e.g. {missing[:3]})", hint="a bug: report it with the model")
    with torch.no_grad():
        for name, p in own.items():
            p.copy_(state[name])
    return len(own)
