"""One process or many: the torchrun environment, gloo on CPU and NCCL on GPUs.

``torchrun --nproc-per-node N -m edgevc train RECIPE.yaml`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address; without them the
same code runs as a single process (rank 0 of 1) and no process group is
created. Only rank 0 logs and writes files.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def init_distributed() -> DistInfo:
    """Join the torchrun process group if there is one; pick the device (a GPU per local rank, else CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world <= 1:
        return DistInfo(0, 1, 0, device, None)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=device if cuda else None)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, device, backend)


def shutdown(info: DistInfo, wait: bool = True) -> None:
    """Leave the process group; ``wait=False`` after an error (the other ranks may never reach a barrier)."""
    if info.distributed and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_sum(info: DistInfo, tensor: torch.Tensor) -> torch.Tensor:
    """Sum over processes (in place; a no-op for one process)."""
    if info.distributed:
        moved = tensor.to(info.device)
        dist.all_reduce(moved, op=dist.ReduceOp.SUM)
        tensor.copy_(moved.to(tensor.device))
    return tensor


def all_reduce_max(info: DistInfo, tensor: torch.Tensor) -> torch.Tensor:
    """Maximum over processes (in place; a no-op for one process)."""
    if info.distributed:
        moved = tensor.to(info.device)
        dist.all_reduce(moved, op=dist.ReduceOp.MAX)
        tensor.copy_(moved.to(tensor.device))
    return tensor


def average_buffers(info: DistInfo, module: torch.nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over processes.

    DDP broadcasts rank 0's buffers at the start of each forward, so after
    the last training step every rank holds statistics updated by its own
    batch only; averaging makes them equal again (and a better estimate).
    """
    if not info.distributed:
        return
    for buf in module.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(info.world)


def state_sha256(module: torch.nn.Module) -> str:
    """A hash of every parameter and buffer (names, dtypes, shapes, bytes): equal weights, equal hash."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def gather_strings(info: DistInfo, text: str) -> list[str]:
    """Every rank's ``text``, in rank order (on every rank)."""
    if not info.distributed:
        return [text]
    out: list[str] = [""] * info.world
    dist.all_gather_object(out, text)
    return out
