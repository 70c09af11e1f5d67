"""Parameters and multiply-adds, counted by ``torch.utils.flop_counter``.

Convention: torch's FlopCounterMode counts 2 FLOPs per multiply-add (exact
for conv, matmul and attention; elementwise ops, pooling and activations
are not counted). torchvision's and most video papers' "GFLOPs" are
multiply-adds (GMACs), so ``macs = flops / 2``. Every figure edgevc prints
names its unit.

Counting runs on the ``meta`` device (shapes only), so a 40-GMAC model is
counted in milliseconds without allocating its activations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class FlopsReport:
    model: str
    input: tuple[int, ...]
    params: int
    flops_per_clip: int

    @property
    def macs_per_clip(self) -> int:
        return self.flops_per_clip // 2

    @property
    def gmacs_per_clip(self) -> float:
        return self.macs_per_clip / 1e9

    @property
    def gflops_per_clip(self) -> float:
        return self.flops_per_clip / 1e9

    @property
    def gmacs_per_frame(self) -> float:
        return self.gmacs_per_clip / self.input[2]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            input=list(self.input),
            gmacs_per_clip=round(self.gmacs_per_clip, 4),
            gflops_per_clip=round(self.gflops_per_clip, 4),
            gmacs_per_frame=round(self.gmacs_per_frame, 5),
            convention="1 MAC = 2 FLOPs (torch FlopCounterMode counts FLOPs; GMACs = GFLOPs / 2)",
        )
        return d


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_flops(model: nn.Module, input_shape: tuple[int, ...],
               call: Callable[[nn.Module, torch.Tensor], object] | None = None) -> int:
    """FLOPs of ``call(model, x)`` (default: ``model(x)``) for a zero ``x`` of ``input_shape``.

    ``model`` must live on the meta device (build it under ``torch.device("meta")``, or
    ``copy.deepcopy(m).to("meta")``): only shapes are computed.
    """
    x = torch.zeros(input_shape, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        (call or (lambda m, t: m(t)))(model.eval(), x)
    return int(counter.get_total_flops())


def module_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward of an existing ``model`` (a meta copy is counted; ``model`` is untouched)."""
    import copy

    return meta_flops(copy.deepcopy(model).to("meta"), input_shape) // 2


def count_flops(build: Callable[[], nn.Module], input_shape: tuple[int, ...], name: str = "") -> FlopsReport:
    """FLOPs of one forward of ``build()`` on a zero clip of ``input_shape``, on the meta device."""
    with torch.device("meta"):
        model = build()
    return FlopsReport(model=name, input=tuple(input_shape), params=count_params(model),
                       flops_per_clip=meta_flops(model, input_shape))
