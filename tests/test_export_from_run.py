"""`edgevc export --weights RUN_DIR`: a trained run exports with its own head, labels and specs; a bare
state dict with another head size is refused instead of being exported under a fresh untrained head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgevc import runtime
from edgevc.errors import EdgevcError
from edgevc.export.driver import export_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from edgevc.train import load_recipe, train

    out = tmp_path_factory.mktemp("tiny_run")
    train(load_recipe(REPO / "recipes" / "tiny_ci.yaml"), out=out, show_progress=False, log=lambda _m: None)
    return out


def test_a_run_folder_exports_its_trained_head_labels_and_clip(tiny_run, tmp_path):
    run = json.loads((tiny_run / "train.json").read_text())
    res = export_model(None, "onnx", "fp32", weights=tiny_run, out=tmp_path / "a", log=None,
                       verify_clips=2, random_clips=1)
    assert res.ok and res.model == "x3d_xs"
    meta = runtime.load(tmp_path / "a").meta
    assert list(meta.labels) == run["labels"] and len(meta.labels) == 8
    assert meta.input_shape == (1, 3, 4, 32, 32)  # the run's clip and crop, not the zoo's 4x160²
    model = runtime.load(tmp_path / "a")
    x = np.random.default_rng(0).standard_normal(meta.input_shape).astype(np.float32)
    from edgevc.models import create

    torch_model = create("x3d_xs", pretrained=tiny_run / "model.pt", num_classes=8).eval()
    with torch.inference_mode():
        ref = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.infer(x), ref, atol=1e-4)  # the trained head, not a fresh one


def test_a_state_dict_with_another_head_is_refused_with_the_run_folder_advice(tiny_run, tmp_path):
    bare = tmp_path / "weights.pt"
    torch.save(torch.load(tiny_run / "model.pt", weights_only=True), bare)
    with pytest.raises(EdgevcError) as err:
        export_model("x3d_xs", "onnx", "fp32", weights=bare, out=tmp_path / "b", log=None)
    assert "8-class classifier" in str(err.value) and "400" in str(err.value)
    assert "--weights RUN_DIR" in err.value.hint
    assert not (tmp_path / "b").exists()  # nothing written


def test_a_run_of_another_model_is_refused(tiny_run, tmp_path):
    with pytest.raises(EdgevcError, match="trained x3d_xs, not tsm_mobilenet_v2"):
        export_model("tsm_mobilenet_v2", "onnx", "fp32", weights=tiny_run, out=tmp_path / "c", log=None)


def test_bench_with_a_run_folder_uses_its_clip_head_and_labels_and_scores_its_split(tiny_run, tmp_path):
    """`edgevc bench x3d_xs --weights RUN_DIR --data SPLIT`: the run's 4x32² input (not the zoo's 4x160²),
    its trained 8-class head in the PyTorch row and the exports, and accuracy by the run's class names."""
    from edgevc.bench.runner import BenchRequest, run_bench
    from edgevc.data.synth import make_bench
    from edgevc.train import load_recipe

    recipe = load_recipe(REPO / "recipes" / "tiny_ci.yaml")
    split = make_bench(recipe.data.bench).split_dir("test")
    report = run_bench(BenchRequest(model="x3d_xs", targets=("onnx",), precisions=("fp32",), weights=str(tiny_run),
                                    data=str(split), data_clips=2, repeats=3, warmup=0, budget_s=None,
                                    timing_clips=1, verify_clips=2, random_clips=1, cache=str(tmp_path / "cache"),
                                    peak=False))
    assert report.clip["num_frames"] == 4 and report.clip["size"] == 32
    torch_row = next(r for r in report.rows if r.variant == "eager")
    onnx_row = next(r for r in report.rows if r.target == "onnx" and r.variant == "artifact")
    assert onnx_row.ok, onnx_row.reason
    assert onnx_row.max_abs_diff is not None and onnx_row.max_abs_diff <= 1e-4
    # both rows scored the split's 8 videos by class name: the artifact answers as the trained head does
    assert torch_row.accuracy is not None and onnx_row.accuracy == torch_row.accuracy
    assert report.settings["accuracy_split"]["videos"] == 8
    assert any("trained weights (edgevc train run" in n for n in report.notes)
    assert not any("untrained head" in n for n in report.notes)
