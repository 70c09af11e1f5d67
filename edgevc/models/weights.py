"""Loading weights safely: torch files with ``weights_only=True``, never a bare unpickle."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from edgevc.errors import EdgevcError


def load_torch_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.pth``/``.pt`` file; refuses code payloads (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise EdgevcError(f"weights file not found: {path}", hint="pass the path of a saved state dict")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise EdgevcError(
            f"cannot load weights from {path}: {type(err).__name__}: {str(err).splitlines()[0][:200]}",
            hint="edgevc loads only plain tensors (weights_only=True); save with torch.save(model.state_dict())",
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise EdgevcError(f"{path} does not hold a state dict of tensors")
    return obj


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str, strict: bool = True) -> None:
    """``model.load_state_dict`` with a readable error listing missing/unexpected keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k in state and state[k].shape != own[k].shape]
    if strict and (missing or unexpected or shape):
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shape:
            parts.append(f"{len(shape)} with other shapes (e.g. {shape[:3]})")
        raise EdgevcError(f"weights from {source} do not fit {type(model).__name__}: " + "; ".join(parts),
                          hint="check the model name and --num-classes match the checkpoint")
    model.load_state_dict(state, strict=strict)
