"""The fine-tuning loop: data from the recipe, AdamW + cosine, checkpoints, DDP, a final video-level evaluation.

One code path for one process and for ``torchrun --nproc-per-node N``: a
:class:`~torch.utils.data.distributed.DistributedSampler` shards the
training videos (it also shuffles for a single process), gradients are
averaged by DDP, BatchNorm statistics are averaged over processes at the end
of every epoch, and only rank 0 logs and writes. At the end every rank
hashes its weights and the hashes must agree.

Files written to ``out``: ``checkpoint.pt`` (resume state, atomic),
``model.pt`` (final weights), ``labels.txt`` and ``train.json`` (the
:class:`TrainResult`: recipe, history, final evaluation, timings).
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from edgevc.data.datasets import ClipDataset
from edgevc.data.lists import VideoList, csv_list, folder_list, read_labels
from edgevc.errors import EdgevcError
from edgevc.train import distributed as D
from edgevc.train.checkpoint import WEIGHTS, atomic_save, load_checkpoint, save_checkpoint
from edgevc.train.evaluate import EvalResult, evaluate
from edgevc.train.optim import Schedule, build_optimizer, prepare_bn, set_train_mode, zero_init_residual
from edgevc.train.progress import Progress
from edgevc.train.recipe import Recipe


@dataclass
class TrainResult:
    """What a run did and reached; saved as ``train.json`` and printed by ``edgevc train --json``."""

    model: str
    labels: list[str]
    recipe: dict
    history: list[dict]
    final: dict
    weights: str
    weights_sha256: str
    rank_weights_sha256: list[str]
    world_size: int
    threads: int
    train_seconds: float
    eval_seconds: float
    wall_seconds: float = 0.0  # the whole run: set-up, training, evaluations during it, the final evaluation

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_data(recipe: Recipe, log: Callable[[str], None]) -> tuple[VideoList, VideoList]:
    """The train and test video lists the recipe names (generating the benchmark if needed)."""
    data = recipe.data
    labels = read_labels(data.labels) if data.labels else None
    if data.kind == "bench":
        from edgevc.data.synth import make_bench

        bench = make_bench(data.bench, root=data.root, report=log)
        return folder_list(bench.split_dir("train"), bench.labels), folder_list(bench.split_dir("test"), bench.labels)
    if data.kind == "folder":
        train = folder_list(data.train, labels)  # type: ignore[arg-type]
        return train, folder_list(data.test, labels or train.labels)  # type: ignore[arg-type]
    train = csv_list(data.train, data.root, labels, data.missing)  # type: ignore[arg-type]
    test = csv_list(data.test, data.root, labels or train.labels, data.missing)  # type: ignore[arg-type]
    for name, lst in (("train", train), ("test", test)):
        if lst.missing:
            log(f"data.{name}: skipped {len(lst.missing)} listed videos that are not on disk")
    return train, test


def _log_fn(info: D.DistInfo) -> Callable[[str], None]:
    return (lambda msg: print(msg, file=sys.stderr, flush=True)) if info.main else (lambda _msg: None)


@dataclass
class _Run:
    """Everything one training run is made of (built by :func:`_setup`)."""

    labels: tuple[str, ...]
    train_ds: ClipDataset
    test_ds: ClipDataset
    model: torch.nn.Module
    sampler: DistributedSampler
    loader: DataLoader
    optimizer: torch.optim.Optimizer
    schedule: Schedule


def _setup(recipe: Recipe, info: D.DistInfo, log: Callable[[str], None]) -> _Run:
    from edgevc.models import create

    cfg = recipe.train
    train_list, test_list = resolve_data(recipe, log)
    labels = train_list.labels
    train_ds = ClipDataset(train_list, recipe.clip, recipe.preproc, train=True, augment=recipe.augment, seed=cfg.seed)
    test_ds = ClipDataset(test_list, recipe.clip, recipe.preproc, train=False, num_clips=cfg.eval_clips)
    if len(train_ds) // info.world < cfg.batch_size:
        raise EdgevcError(f"{len(train_ds)} training videos over {info.world} processes is less than one batch "
                          f"of {cfg.batch_size}", hint="lower train.batch_size or add videos")
    if cfg.bn == "batch" and cfg.batch_size < 4:
        log(f"warning: BatchNorm on {cfg.batch_size} clips per process is noisy; "
            "consider train.bn: frozen (fine-tuning) or a larger batch")
    model = create(recipe.model.name, pretrained=recipe.model.pretrained, num_classes=len(labels),
                   **recipe.model.kwargs)
    if recipe.model.zero_init_residual:
        log(f"zero-initialised the last BatchNorm of {zero_init_residual(model)} residual branches")
    model = prepare_bn(model, cfg.bn, info.distributed, info.device).to(info.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    sampler = DistributedSampler(train_ds, num_replicas=info.world, rank=info.rank, shuffle=True, seed=cfg.seed,
                                 drop_last=True)
    loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                        num_workers=recipe.data.workers,  # workers copy the dataset: not across size changes
                        persistent_workers=recipe.data.workers > 0 and not cfg.sizes)
    optimizer = build_optimizer(model, recipe.optim)
    steps = len(loader)
    schedule = Schedule(cfg.epochs * steps, round(recipe.optim.warmup_epochs * steps), recipe.optim.min_lr_ratio,
                        cfg.budget_minutes * 60 if cfg.budget_minutes else None)
    return _Run(labels, train_ds, test_ds, model, sampler, loader, optimizer, schedule)


def train(recipe: Recipe, out: str | Path | None = None, resume: bool = False, show_progress: bool = True,
          log: Callable[[str], None] | None = None) -> TrainResult:
    """Run the recipe; returns the result on every rank (rank 0 also writes it to ``out``)."""
    t_start = time.monotonic()
    info = D.init_distributed()
    log = log if (log and info.main) else _log_fn(info)
    cfg = recipe.train
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out or recipe.out or "runs/train")
    torch.manual_seed(cfg.seed)
    failed = True
    try:
        run = _setup(recipe, info, log)
        model = run.model
        start_epoch, step, history = 0, 0, []
        if resume:
            ckpt = load_checkpoint(out, recipe.model.name, run.labels)
            model.load_state_dict(ckpt["model"])
            run.optimizer.load_state_dict(ckpt["optimizer"])
            start_epoch, step, history = ckpt["epoch"], ckpt["step"], ckpt["history"]
            torch.set_rng_state(ckpt["torch_rng"])
            log(f"resumed from {out / 'checkpoint.pt'} after epoch {start_epoch}")
        ddp = (DistributedDataParallel(model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
               if info.distributed else model)
        log(f"train {recipe.model.name}: {len(run.train_ds)} train / {len(run.test_ds)} test videos, "
            f"{len(run.labels)} classes, {info.world} process(es) x batch {cfg.batch_size}, {len(run.loader)} "
            f"steps/epoch, {cfg.epochs} epochs, torch threads {torch.get_num_threads()}")
        for epoch in range(start_epoch, cfg.epochs):
            stats = _train_epoch(ddp, run, recipe, info, epoch, step, sum(h["seconds"] for h in history),
                                 show_progress)
            step += stats["steps"]
            D.average_buffers(info, model)
            last = epoch + 1 == cfg.epochs or stats["stopped"]
            if cfg.eval_every and (epoch + 1) % cfg.eval_every == 0 and not last:
                ev = evaluate(model, run.test_ds, recipe.agg, info, workers=recipe.data.workers, show=show_progress)
                stats["test_video_top1"] = ev.video_top1
            history.append(stats)
            log(f"epoch {epoch + 1}/{cfg.epochs}: " + " ".join(f"{k}={_fmt(v)}" for k, v in stats.items()))
            if info.main and ((epoch + 1) % cfg.checkpoint_every == 0 or last):
                save_checkpoint(out, model=model, optimizer=run.optimizer, epoch=epoch + 1, step=step,
                                history=history, recipe=recipe.to_dict(), labels=run.labels)
            if stats["stopped"]:
                log(f"time budget of {cfg.budget_minutes} min spent after {step} steps: stopping")
                break
        t1 = time.monotonic()
        final = evaluate(model, run.test_ds, recipe.agg, info, workers=recipe.data.workers, show=show_progress)
        result = _finish(model, recipe, run.labels, history, final, info, out, time.monotonic() - t1, t_start)
        log(f"final: video top-1 {final.video_top1:.4f} ({final.videos} videos x {final.clips_per_video} clips), "
            f"clip top-1 {final.clip_top1:.4f}; train {result.train_seconds:.0f} s, eval {result.eval_seconds:.0f} s;"
            f" weights {out / WEIGHTS}")
        failed = False
        return result
    finally:
        D.shutdown(info, wait=not failed)


def _train_epoch(ddp: torch.nn.Module, run: _Run, recipe: Recipe, info: D.DistInfo, epoch: int, step: int,
                 elapsed_before: float, show: bool) -> dict:
    """One pass over this rank's shard; stops early (``stopped``) when the schedule's progress reaches 1."""
    run.sampler.set_epoch(epoch)
    run.train_ds.set_epoch(epoch)
    if recipe.train.sizes:  # multigrid's long cycle: this epoch's crop from the schedule's progress
        at = _agreed(info, elapsed_before, run.schedule.budget_s is not None)
        run.train_ds.preproc = recipe.crop_at(run.schedule.progress(step, at))
    set_train_mode(ddp, recipe.train.bn)
    crit = torch.nn.CrossEntropyLoss(label_smoothing=recipe.optim.label_smoothing)
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, right, seen
    bar = Progress(len(run.loader), f"epoch {epoch + 1}/{recipe.train.epochs}", enabled=info.main and show,
                   every=recipe.train.log_every)
    t0 = time.monotonic()
    done, stopped, lr = 0, False, 0.0
    recent: deque[float] = deque(maxlen=20)  # the last 20 losses: the epoch mean lags behind a falling loss
    for x, y in run.loader:
        elapsed = _agreed(info, elapsed_before + time.monotonic() - t0, run.schedule.budget_s is not None)
        if step + done > 0 and run.schedule.progress(step + done, elapsed) >= 1.0:  # at least one step
            stopped = True
            break
        lr = run.schedule.apply(run.optimizer, recipe.optim.lr, step + done, elapsed)
        x, y = x.to(info.device, non_blocking=True), y.to(info.device, non_blocking=True)
        if recipe.train.channels_last and x.dim() == 5:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        logits = ddp(x)
        loss = crit(logits, y)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(ddp.parameters(), recipe.optim.grad_clip)
        run.optimizer.step()
        done += 1
        n = y.numel()
        totals += torch.tensor([loss.item() * n, (logits.argmax(1) == y).sum().item(), n], dtype=torch.float64)
        recent.append(loss.item())
        bar.update(1, loss=float(totals[0] / totals[2]), last20=sum(recent) / len(recent),
                   acc=float(totals[1] / totals[2]), lr=lr)
    bar.close()
    D.all_reduce_sum(info, totals)
    seen = max(1.0, float(totals[2]))
    return {"epoch": epoch + 1, "loss": float(totals[0]) / seen, "train_top1": float(totals[1]) / seen, "lr": lr,
            "steps": done, "seconds": time.monotonic() - t0, "stopped": stopped,
            "crop": run.train_ds.preproc.crop[0]}


def _agreed(info: D.DistInfo, elapsed: float, needed: bool) -> float:
    """The largest elapsed time over the processes, so every rank stops at the same step."""
    if not (needed and info.distributed):
        return elapsed
    t = torch.tensor([elapsed], dtype=torch.float64)
    D.all_reduce_max(info, t)
    return float(t[0])


def _finish(model: torch.nn.Module, recipe: Recipe, labels: tuple[str, ...], history: list[dict],
            final: EvalResult, info: D.DistInfo, out: Path, eval_seconds: float, t_start: float) -> TrainResult:
    hashes = D.gather_strings(info, D.state_sha256(model))
    if len(set(hashes)) != 1:
        raise EdgevcError(f"the {info.world} processes ended with different weights: {hashes}",
                          hint="a bug in the distributed setup; report it with the recipe")
    result = TrainResult(
        model=recipe.model.name, labels=list(labels), recipe=recipe.to_dict(), history=history,
        final=final.to_dict(), weights=str(out / WEIGHTS), weights_sha256=hashes[0], rank_weights_sha256=hashes,
        world_size=info.world, threads=torch.get_num_threads(),
        train_seconds=round(sum(h["seconds"] for h in history), 2),
        eval_seconds=round(eval_seconds, 2), wall_seconds=round(time.monotonic() - t_start, 2))
    if info.main:
        atomic_save(model.state_dict(), out / WEIGHTS)
        (out / "labels.txt").write_text("\n".join(labels) + "\n")
        (out / "train.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return result


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
