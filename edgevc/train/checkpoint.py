"""Checkpoints written atomically, and resume.

``checkpoint.pt`` holds everything needed to continue: the model's state dict
(unwrapped from DDP), the optimizer state, the number of
epochs completed, the global step, the history so far, the recipe and
torch's RNG state (dropout). Data order and augmentation are functions of
(seed, epoch), so a resumed run repeats the uninterrupted one exactly. It is
written to a temporary file in the same folder and renamed over the old one
(``os.replace``), so a crash mid-write leaves the previous checkpoint intact.

``model.pt`` (the final weights alone) loads with
``edgevc.models.create(name, pretrained="model.pt", num_classes=K)``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from edgevc.errors import EdgevcError

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "model.pt"


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` into a temporary sibling, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(out: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    epoch: int, step: int, history: list[dict], recipe: dict, labels: tuple[str, ...]) -> Path:
    """Write ``checkpoint.pt`` (the learning rate is recomputed from ``step`` and the history's times)."""
    return atomic_save({
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "epoch": epoch, "step": step, "history": history, "recipe": recipe, "labels": list(labels),
        "torch_rng": torch.get_rng_state(),
    }, out / CHECKPOINT)


def load_checkpoint(out: Path, model_name: str, labels: tuple[str, ...]) -> dict[str, Any]:
    """The checkpoint in ``out``, checked against the run it should continue."""
    path = out / CHECKPOINT
    if not path.is_file():
        raise EdgevcError(f"--resume: no checkpoint in '{out}'", hint="run without --resume to start fresh")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a code payload (UnpicklingError), a truncated file (EOFError, RuntimeError)...
        raise EdgevcError(f"--resume: cannot load '{path}': {type(err).__name__}: "
                          f"{str(err).splitlines()[0][:200] if str(err) else 'no detail'}",
                          hint="edgevc resumes only from its own checkpoints (plain tensors, weights_only=True); "
                               "start fresh in another --out folder") from None
    if not isinstance(ckpt, dict):
        raise EdgevcError(f"--resume: '{path}' holds a {type(ckpt).__name__}, not an edgevc checkpoint",
                          hint="start fresh in another --out folder")
    was = ckpt.get("recipe", {}).get("model", {}).get("name")
    if was != model_name:
        raise EdgevcError(f"--resume: '{path}' was trained as model '{was}', the recipe says '{model_name}'",
                          hint="use another --out folder, or the recipe that made the checkpoint")
    if tuple(ckpt.get("labels", ())) != tuple(labels):
        raise EdgevcError(f"--resume: '{path}' has other labels than this recipe's data",
                          hint="resume with the same data, or start fresh in another --out folder")
    return ckpt
