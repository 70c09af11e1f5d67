"""The short fine-tune both QAT flavours share: training clips, AdamW, cosine by steps or time, BN frozen.

Clips come from :class:`~edgevc.data.datasets.ClipDataset` with the run's
augmentation (the training path of ``edgevc train``, through
:mod:`edgevc.sampling`); the schedule is :class:`edgevc.train.optim.Schedule`
(a cosine that ends on the step count or the time budget, whichever comes
first). ``set_mode`` is called before the first step: it puts the network in
training mode with BatchNorm in eval mode (frozen statistics), or does
nothing for a graph captured in eval mode.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn

from edgevc.compress.recipe import QATSection

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass
class FinetuneStats:
    """What one QAT run did: steps, time, the loss at the start and over the last 20 steps, why it stopped."""

    steps: int
    clips: int
    seconds: float
    loss_first: float
    loss_last20: float
    train_top1_last20: float
    lr_last: float
    stopped: str

    def to_dict(self) -> dict:
        return asdict(self)


def freeze_bn_mode(model: nn.Module, freeze_bn: bool) -> Callable[[], None]:
    """A ``set_mode`` for an eager network: ``train()``, then BatchNorm back to eval when ``freeze_bn``."""

    def set_mode() -> None:
        model.train()
        if freeze_bn:
            for m in model.modules():
                if isinstance(m, _BN):
                    m.eval()

    return set_mode


def batches(loader: torch.utils.data.DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches, epoch after epoch (the dataset's augmentation draws depend on the epoch)."""
    epoch = 0
    while True:
        if hasattr(loader.dataset, "set_epoch"):
            loader.dataset.set_epoch(epoch)
        yield from loader
        epoch += 1


def finetune(model: nn.Module, params: list[torch.nn.Parameter], loader: torch.utils.data.DataLoader,
             cfg: QATSection, set_mode: Callable[[], None], log: Callable[[str], None], name: str,
             before_step: Callable[[int], None] | None = None) -> FinetuneStats:
    """Train ``params`` of ``model`` for ``cfg.steps`` steps (or ``cfg.budget_minutes``) on ``loader``.

    ``before_step(step)``, when given, is called before each step (0-based), e.g. to freeze observers.
    """
    from edgevc.train.optim import Schedule

    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    schedule = Schedule(cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio,
                        cfg.budget_minutes * 60 if cfg.budget_minutes else None)
    crit = nn.CrossEntropyLoss()
    set_mode()
    recent: deque[tuple[float, float]] = deque(maxlen=20)
    first, step, clips, lr, stopped = float("nan"), 0, 0, 0.0, "steps"
    t0 = time.monotonic()
    for x, y in batches(loader):
        elapsed = time.monotonic() - t0
        if step > 0 and schedule.progress(step, elapsed) >= 1.0:
            stopped = "steps" if step >= cfg.steps else "time budget"
            break
        lr = schedule.apply(optimizer, cfg.lr, step, elapsed)
        if before_step is not None:
            before_step(step)
        logits = model(x)
        loss = crit(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        clips += int(y.numel())
        value = float(loss.item())
        first = value if step == 1 else first
        recent.append((value, float((logits.argmax(1) == y).float().mean())))
        if step % cfg.log_every == 0 or step == 1:
            log(f"  {name} step {step}/{cfg.steps}: loss {value:.4f} (last 20: "
                f"{sum(r[0] for r in recent) / len(recent):.4f}), lr {lr:.3g}, {time.monotonic() - t0:.0f} s")
    n = max(1, len(recent))
    return FinetuneStats(steps=step, clips=clips, seconds=round(time.monotonic() - t0, 2), loss_first=first,
                         loss_last20=sum(r[0] for r in recent) / n, train_top1_last20=sum(r[1] for r in recent) / n,
                         lr_last=lr, stopped=stopped)
