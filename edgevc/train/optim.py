"""AdamW with parameter groups, a warmup + cosine schedule (by steps or by a time budget), BN modes, zero-init."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from edgevc.errors import EdgevcError
from edgevc.train.recipe import OptimSection

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def build_optimizer(model: nn.Module, cfg: OptimSection) -> torch.optim.AdamW:
    """AdamW; biases and normalisation weights (1-D tensors) get no weight decay."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Schedule:
    """Warmup then cosine, driven by progress: by steps, or by training time when there is a budget.

    ``progress = max(step / total_steps, elapsed / budget)`` (the budget term only
    with ``budget_s``); the LR multiplier is ``min(1, (step + 1) / warmup_steps)``
    times ``min_ratio + (1 - min_ratio) (1 + cos(pi progress)) / 2``, and training
    stops when progress reaches 1. With a budget a slow machine gets a shorter
    run that still ends its cosine, instead of a run that overshoots the time.

    Example: 100 steps, warmup 10, min 0.01, no budget: step 0 -> 0.1,
    step 9 -> 0.980, step 50 -> 0.505, step 99 -> 0.0103.
    """

    total_steps: int
    warmup_steps: int
    min_ratio: float
    budget_s: float | None = None

    def progress(self, step: int, elapsed: float = 0.0) -> float:
        p = step / max(1, self.total_steps)
        if self.budget_s:
            p = max(p, elapsed / self.budget_s)
        return min(1.0, p)

    def factor(self, step: int, elapsed: float = 0.0) -> float:
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        cos = 0.5 * (1.0 + math.cos(math.pi * self.progress(step, elapsed)))
        return warm * (self.min_ratio + (1.0 - self.min_ratio) * cos)

    def apply(self, optimizer: torch.optim.Optimizer, base_lr: float, step: int, elapsed: float = 0.0) -> float:
        lr = base_lr * self.factor(step, elapsed)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr


def prepare_bn(model: nn.Module, mode: str, distributed: bool, device: torch.device) -> nn.Module:
    """``sync``: convert to SyncBatchNorm (GPUs only); other modes leave the modules as they are."""
    if mode != "sync":
        return model
    if device.type != "cuda":
        raise EdgevcError("train.bn: sync needs GPUs (PyTorch's SyncBatchNorm has no CPU kernel)",
                          hint="on CPU use bn: batch with a larger batch_size, or bn: frozen for fine-tuning")
    return nn.SyncBatchNorm.convert_sync_batchnorm(model) if distributed else model


def set_train_mode(model: nn.Module, bn_mode: str) -> None:
    """``model.train()``; with ``frozen`` the BatchNorm layers stay in eval mode (running statistics fixed)."""
    model.train()
    if bn_mode == "frozen":
        for m in model.modules():
            if isinstance(m, _BN):
                m.eval()


# The last BatchNorm of each residual branch, per block class of the zoo.
_RESIDUAL_BN: dict[str, Callable[[nn.Module], nn.Module | None]] = {
    "X3DBottleneck": lambda m: m.norm_c,
    "BasicBlock": lambda m: m.conv2[-1],
    "InvertedResidual": lambda m: m.conv[-1] if m.use_res_connect else None,
}


def zero_init_residual(model: nn.Module) -> int:
    """Set the scale of the last BatchNorm of every residual branch to 0; returns how many.

    Each residual block then starts as the identity, which makes deep
    networks trainable from scratch much sooner (Goyal et al., "Accurate,
    Large Minibatch SGD", 2017; PySlowFast's ``ZERO_INIT_FINAL_BN`` for
    X3D). Measured on the benchmark at 8x64x64: X3D-XS with PyTorchVideo's
    plain init was at chance after 200 steps of 8 clips (loss 2.05), with
    this at loss 1.81 and climbing.
    """
    count = 0
    for m in model.modules():
        find = _RESIDUAL_BN.get(type(m).__name__)
        bn = find(m) if find else None
        if isinstance(bn, _BN):
            nn.init.zeros_(bn.weight)
            count += 1
    if count == 0:
        raise EdgevcError(f"model.zero_init_residual: no known residual block in {type(model).__name__}",
                          hint=f"supported blocks: {', '.join(_RESIDUAL_BN)}; set it to false")
    return count
