"""Export what ``edgevc train`` wrote: the run folder's weights with its own classes, labels and specs.

``edgevc export MODEL --weights RUN_DIR`` (or ``RUN_DIR/model.pt``): a run folder holds ``model.pt``
and ``train.json`` (model name, labels, the recipe with its clip, preprocessing and aggregation), so
the artifact carries the trained head and the run's labels, clip and preprocessing, not the zoo
entry's. A bare state dict whose classifier does not match the zoo entry is refused with that advice,
never exported under a fresh head (which would be a silent wrong answer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgevc.errors import EdgevcError

RUN_FILE = "train.json"
WEIGHTS_FILE = "model.pt"


def run_folder(weights: str | Path) -> Path | None:
    """The ``edgevc train`` folder ``weights`` points at (the folder itself or its ``model.pt``), else None."""
    p = Path(weights)
    if p.is_dir():
        if not (p / RUN_FILE).is_file():
            raise EdgevcError(f"--weights: '{p}' is a folder without {RUN_FILE}",
                              hint="pass an edgevc train output folder (model.pt + train.json) or a state-dict file")
        return p
    if p.name == WEIGHTS_FILE and (p.parent / RUN_FILE).is_file():
        return p.parent
    return None


def _read_run(model_name: str | None, run: Path) -> tuple[str, tuple[str, ...], Any]:
    from edgevc.train.recipe import recipe_from_dict

    try:
        raw = json.loads((run / RUN_FILE).read_text())
    except json.JSONDecodeError as err:
        raise EdgevcError(f"'{run / RUN_FILE}' is not valid JSON: {err}") from None
    name, labels = raw.get("model"), tuple(raw.get("labels") or ())
    if not name or not labels or "recipe" not in raw:
        raise EdgevcError(f"'{run / RUN_FILE}' lacks the model, labels or recipe of the run",
                          hint="re-run edgevc train, which writes them")
    if model_name not in (None, name):
        raise EdgevcError(f"--weights: the run '{run}' trained {name}, not {model_name}",
                          hint=f"edgevc export {name} --weights {run}")
    return name, labels, recipe_from_dict(raw["recipe"], source=str(run / RUN_FILE))


def run_clip(model_name: str | None, run: Path) -> tuple[Any, tuple[int, int]]:
    """(ClipSpec, crop) the run trained and evaluated with: the input its exports and benches use."""
    _, _, recipe = _read_run(model_name, run)
    return recipe.clip, tuple(recipe.preproc.crop)


def run_model(model_name: str | None, run: Path) -> Any:
    """The run's trained network (its own head size), in eval mode."""
    from edgevc.models import create

    name, labels, recipe = _read_run(model_name, run)
    weights = run / WEIGHTS_FILE
    if not weights.is_file():
        raise EdgevcError(f"--weights: '{weights}' is missing", hint="the run did not finish; resume or re-run it")
    return create(name, pretrained=weights, num_classes=len(labels), **dict(recipe.model.kwargs)).eval()


def prepared_from_run(model_name: str | None, run: Path) -> tuple[str, Any, Path]:
    """(model name, :class:`~edgevc.export.driver.PreparedModel`, weights file) of a training run."""
    from edgevc.export.driver import PreparedModel
    from edgevc.models import create
    from edgevc.report.flops import count_flops

    name, labels, recipe = _read_run(model_name, run)
    model = run_model(name, run)
    kwargs = dict(recipe.model.kwargs)
    h, w = recipe.preproc.crop
    macs = count_flops(lambda: create(name, num_classes=len(labels), **kwargs),
                       (1, 3, recipe.clip.num_frames, h, w), name).macs_per_clip
    return name, PreparedModel(model=model, clip=recipe.clip, preproc=recipe.preproc, labels=labels,
                               agg=recipe.agg, macs_per_clip=macs,
                               note=f"edgevc train run {run} ({len(labels)} classes)"), run / WEIGHTS_FILE


def check_head(model_name: str, weights: str | Path, num_classes: int) -> None:
    """Refuse a bare state dict whose classifier size differs from the zoo entry's."""
    import torch

    from edgevc.models import create
    from edgevc.models.weights import load_torch_state_dict

    state = load_torch_state_dict(Path(weights))
    with torch.device("meta"):
        ref = create(model_name).state_dict()
    head = [k for k, v in state.items() if k in ref and tuple(v.shape) != tuple(ref[k].shape)
            and ref[k].ndim >= 1 and ref[k].shape[0] == num_classes]
    if head:
        n = state[head[0]].shape[0]
        raise EdgevcError(
            f"--weights: '{weights}' has a {n}-class classifier ({head[0]}), {model_name} has {num_classes}; "
            f"exporting it would put a fresh untrained head on it",
            hint="pass the edgevc train run folder instead (--weights RUN_DIR: its train.json carries the labels, "
                 "clip and preprocessing)")
