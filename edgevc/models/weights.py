"""Loading weights safely: torch files with ``weights_only=True``, never a bare unpickle."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from edgevc.errors import EdgevcError

_log = logging.getLogger(__name__)


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
    for wrapper in ("state_dict", "model_state", "model"):  # Lightning / PySlowFast / plain training checkpoints
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
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


def load_keeping_fresh_head(model: nn.Module, state: dict[str, torch.Tensor], source: str,
                            head_keys: tuple[str, ...] | list[str]) -> bool:
    """Strict load; a checkpoint whose head has another number of classes loads the backbone only.

    The model's own (freshly initialised) head is kept then, with a warning,
    since it must be trained before use. Returns True when the head was kept.
    """
    own = model.state_dict()
    misfit = [k for k in head_keys if k in state and k in own and state[k].shape != own[k].shape]
    if misfit:
        _log.warning("%s: the checkpoint's %s is %s, the model's %s; loading the backbone only, the head stays "
                     "freshly initialised (train it before use)", type(model).__name__, misfit[0],
                     tuple(state[misfit[0]].shape), tuple(own[misfit[0]].shape))
        state = {**state, **{k: own[k] for k in head_keys if k in own}}
    load_into(model, state, source=source)
    return bool(misfit)


def no_offline_weights(name: str, layouts: str = "edgevc") -> EdgevcError:
    """The error for ``pretrained=True`` on a model whose weights cannot be fetched offline."""
    return EdgevcError(f"model '{name}' has no pretrained weights that can be fetched offline",
                       hint=f"pass a path to a state dict ({layouts} layout): pretrained=PATH or --weights PATH")
