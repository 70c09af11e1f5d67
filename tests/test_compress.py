"""edgevc compress: strict recipes, the QAT building blocks, and the tiny run end to end through the artifacts.

CI runs the tiny run to OpenVINO (fp32, PTQ, NNCF QAT) and the PT2E QAT step
without lowering; the same run to ExecuTorch and ONNX (three XNNPACK lowerings,
minutes on two cores) is marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from edgevc.compress.recipe import QATSection, compress_recipe_from_dict, load_compress_recipe
from edgevc.errors import EdgevcError

REPO = Path(__file__).resolve().parents[1]
TINY_TRAIN = REPO / "recipes" / "tiny_ci.yaml"
TINY_COMPRESS = REPO / "recipes" / "tiny_compress.yaml"


def _fake_run(folder: Path) -> Path:
    """A run folder as ``edgevc train`` writes it, without training (train.json from the tiny recipe)."""
    from edgevc.train import load_recipe

    folder.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe(TINY_TRAIN)
    (folder / "train.json").write_text(json.dumps({"model": "x3d_xs", "recipe": recipe.to_dict(), "labels": [],
                                                   "final": {"video_top1": 0.5}}))
    return folder


# ---- recipes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("section", "key", "suggestion"), [
    ("qat", "stpes", "steps"), ("eval", "clips_per_vdeo", "clips_per_video"), ("ptq", "calib_clip", "calib_clips"),
    (None, "tagrets", "targets"), ("data", "wrokers", "workers"),
])
def test_an_unknown_recipe_key_names_its_dotted_path_and_the_closest_key(tmp_path, section, key, suggestion):
    raw = {"source": {"run": str(_fake_run(tmp_path / "run"))}}
    if section:
        raw[section] = {key: 1}
    else:
        raw[key] = 1
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    dotted = f"{section}.{key}" if section else key
    with pytest.raises(EdgevcError, match=rf"r\.yaml: invalid field '{dotted}': unknown key; did you mean "
                                          rf"'{suggestion}'\?"):
        load_compress_recipe(path)


def test_an_unknown_target_and_unfrozen_bn_for_executorch_are_refused_with_the_path(tmp_path):
    run = str(_fake_run(tmp_path / "run"))
    with pytest.raises(EdgevcError, match=r"invalid field 'targets\[1\]': unknown target 'executorh'; "
                                          r"did you mean 'executorch'\?"):
        compress_recipe_from_dict({"source": {"run": run}, "targets": ["openvino", "executorh"]})
    with pytest.raises(EdgevcError, match="invalid field 'qat': freeze_bn: false with target executorch"):
        compress_recipe_from_dict({"source": {"run": run}, "qat": {"freeze_bn": False}})
    assert not compress_recipe_from_dict({"source": {"run": run}, "targets": ["openvino"],
                                          "qat": {"freeze_bn": False}}).qat.freeze_bn
    with pytest.raises(EdgevcError, match="invalid field 'source.run': neither 'run' nor 'weights'"):
        compress_recipe_from_dict({"source": {}, "model": {"name": "x3d_xs"}})
    with pytest.raises(EdgevcError, match="no train.json"):
        compress_recipe_from_dict({"source": {"run": str(tmp_path / "nowhere")}})


def test_the_run_supplies_model_specs_and_data_and_recipe_keys_merge_over_them(tmp_path):
    run = _fake_run(tmp_path / "run")
    r = load_compress_recipe(TINY_COMPRESS, [f"source.run={run}", "data.workers=1", "preproc.resize_short=40"])
    assert (r.model.name, r.clip.num_frames, r.preproc.crop, r.preproc.resize_short) == ("x3d_xs", 4, (32, 32), 40)
    assert (r.data.bench.name, r.data.bench.size, r.data.workers) == ("tiny", 32, 1)  # merged key by key
    assert r.augment.hflip_swap == (("pan_left", "pan_right"), ("rotate_cw", "rotate_ccw"))
    assert r.source.weights_path() == run / "model.pt" and r.targets == ("openvino", "executorch", "onnx")
    plain = compress_recipe_from_dict({"source": {"weights": "w.pt"}, "model": {"name": "x3d_xs"}})
    from edgevc.models import model_info

    assert (plain.clip, plain.preproc) == (model_info("x3d_xs").clip, model_info("x3d_xs").preproc)


def test_the_report_gives_drops_in_points_and_names_a_failed_artifact():
    from edgevc.compress.evaluate import ArtifactAccuracy
    from edgevc.compress.report import CompressResult, VariantResult

    def acc(top1):
        return ArtifactAccuracy(top1, top1, 200, 3, [], [], 1.0)

    result = CompressResult("x3d_xs", ["a", "b"], "w.pt", "0" * 64, {}, {"videos": 200, "clips_per_video": 3}, None)
    result.variants = [VariantResult("openvino", "fp32", "fp32", "m", "f", 12_000_000, accuracy=acc(0.965)),
                       VariantResult("openvino", "ptq", "int8", "m", "f", 4_000_000, accuracy=acc(0.94)),
                       VariantResult("openvino", "qat", "int8", "m", "f", 4_100_000, accuracy=acc(0.96),
                                     verified_against="the NNCF QAT network"),
                       VariantResult("executorch", "fp32", "fp32", "m", "f", 12_000_000, accuracy=acc(0.965)),
                       VariantResult("executorch", "qat", "int8", "m", "f", error="lowered but does not execute",
                                     verified_against="the PT2E QAT weights")]
    ov, et = result.rows()
    assert (ov["ptq_drop_pt"], ov["qat_drop_pt"], ov["qat_within_limit"], ov["qat_mb"]) == (2.5, 0.5, True, 4.1)
    assert (et["ptq_top1"], et["qat_drop_pt"], et["qat_within_limit"]) == (None, None, False)
    table = result.table()
    assert "94.00% (+2.50)" in table and "96.00% (+0.50)" in table
    assert "failed: executorch qat: lowered but does not execute" in table
    assert "| executorch | 96.50% | - | failed | no |" in result.markdown()
    assert CompressResult.from_dict(json.loads(json.dumps(result.to_dict()))).markdown() == result.markdown()
    # each QAT flavour names its own reference (two targets' QAT artifacts come from different networks)
    assert ("qat (openvino) against the NNCF QAT network; qat (executorch) against the PT2E QAT weights."
            in result.markdown())


def test_calibration_videos_take_the_classes_in_turn():
    from edgevc.compress.pipeline import stratified
    from edgevc.data.lists import VideoList, VideoRecord

    records = tuple(VideoRecord(Path(f"{c}/{i}.mp4"), c) for c in range(3) for i in range(4))
    order = stratified(VideoList(records, ("a", "b", "c")), seed=0)
    assert sorted(order) == sorted(str(r.path) for r in records)
    assert [Path(p).parent.name for p in order[:6]] == ["0", "1", "2", "0", "1", "2"]
    assert order == stratified(VideoList(records, ("a", "b", "c")), seed=0)


# ---- building blocks -------------------------------------------------------------------------------------

class _Tiny(nn.Module):
    """Conv3d + BN + ReLU, a temporal shift on the frames (as TSM), Conv2d, pool, Linear: milliseconds."""

    def __init__(self) -> None:
        from edgevc.models.layers.temporal_shift import TemporalShift

        super().__init__()
        self.conv = nn.Conv3d(3, 16, (3, 3, 3), padding=1)
        self.bn = nn.BatchNorm3d(16)
        self.shift = TemporalShift(fold_div=4)
        self.conv2 = nn.Conv2d(16, 8, 1)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        n, c, t, hh, ww = h.shape
        f = self.conv2(self.shift(h.permute(0, 2, 1, 3, 4).reshape(n * t, c, hh, ww), t))
        return self.head(f.reshape(n, t, -1, hh, ww).mean((1, 3, 4)))


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    model = _Tiny()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


# slow (39 s): CI's tiny OpenVINO compress run exports an NNCF QAT network end to end
@pytest.mark.slow
def test_frozen_fake_quantizers_compute_what_the_stripped_nncf_model_computes_and_export():
    """A temporal shift slices one tensor three times: NNCF shares one quantizer there, which strip leaves."""
    import nncf
    from nncf.torch.function_hook.wrapper import get_hook_storage

    from edgevc.compress.nncf_qat import FrozenFakeQuantize, freeze_fake_quantizers

    model = _tiny_model()
    gen = torch.Generator().manual_seed(1)
    clips = [torch.randn(1, 3, 4, 8, 8, generator=gen) for _ in range(4)]
    q = nncf.quantize(model, nncf.Dataset(clips), subset_size=4)
    stripped = nncf.strip(q, do_copy=True, example_input=clips[0])
    hooks = dict(get_hook_storage(stripped).named_hooks(remove_duplicate=False))
    assert any(type(m).__name__ == "SymmetricQuantizer" for m in hooks.values())  # left behind by strip
    x = torch.randn(1, 3, 4, 8, 8, generator=gen)
    with torch.no_grad():
        before = stripped(x)
        counts = freeze_fake_quantizers(stripped)
        after = stripped(x)
    hooks = dict(get_hook_storage(stripped).named_hooks(remove_duplicate=False))
    assert all(isinstance(m, FrozenFakeQuantize) for m in hooks.values())
    assert len({id(m) for m in hooks.values()}) == sum(counts.values()) < len(hooks)  # shared stays shared
    assert counts.get("per_channel [-128, 127]") == 3, counts  # the weights of conv, conv2 and head
    assert torch.equal(before, after)
    assert (before - model(x)).abs().max() > 0  # it does quantize
    program = torch.export.export(stripped, (x,), strict=False)
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert {"aten.fake_quantize_per_channel_affine.default",
            "aten.fake_quantize_per_tensor_affine.tensor_qparams"} <= ops


def test_xnnpack_qat_trains_the_fake_quantized_graph_and_hands_its_weights_back():
    from torch.utils.data import DataLoader, TensorDataset

    from edgevc.compress.recipe import QATSection
    from edgevc.compress.xnnpack_qat import xnnpack_qat

    model = _tiny_model()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(2)
    data = TensorDataset(torch.randn(8, 3, 4, 8, 8, generator=gen), torch.randint(0, 4, (8,), generator=gen))
    loader = DataLoader(data, batch_size=4, shuffle=True, drop_last=True, generator=gen)
    lines: list[str] = []
    qat, stats, info = xnnpack_qat(model, loader, QATSection(steps=3, batch_size=4, lr=1e-2, log_every=1),
                                   lines.append)
    assert stats.steps == 3 and stats.clips == 12 and np.isfinite(stats.loss_last20) and stats.stopped == "steps"
    assert info["fake_quantizers"] >= 3 and info["weights_taken"] == len(list(model.parameters()))
    assert any("qat xnnpack step 3/3" in ln for ln in lines)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in original.items())  # the input is not touched
    changed = [k for k, v in qat.state_dict().items() if not torch.equal(v, original[k])]
    assert "conv.weight" in changed and "head.weight" in changed
    assert all(torch.equal(qat.state_dict()[k], original[k]) for k in ("bn.running_mean", "bn.running_var"))


@pytest.mark.parametrize("observer_steps", [1, None])
def test_xnnpack_qat_freezes_the_observer_ranges_after_observer_steps(observer_steps):
    """Frozen: no fake-quantizer scale moves after the freeze step; left observing, they follow the data."""
    from torch.utils.data import DataLoader, TensorDataset

    from edgevc.compress.recipe import QATSection
    from edgevc.compress.xnnpack_qat import xnnpack_qat

    gen = torch.Generator().manual_seed(4)
    data = TensorDataset(torch.randn(12, 3, 4, 8, 8, generator=gen) * torch.arange(1, 13).view(12, 1, 1, 1, 1),
                         torch.randint(0, 4, (12,), generator=gen))
    loader = DataLoader(data, batch_size=4, shuffle=False, drop_last=True)
    lines: list[str] = []
    _, stats, info = xnnpack_qat(_tiny_model(), loader, QATSection(steps=3, batch_size=4, lr=1e-2, log_every=1,
                                                                   observer_steps=observer_steps), lines.append)
    assert stats.steps == 3 and info["observers_frozen_at_step"] == observer_steps
    if observer_steps:
        assert info["scale_drift_after"] == 0.0
        assert any("observer ranges frozen after 1 steps" in ln for ln in lines)
    else:  # inputs grow batch after batch: the moving-average ranges follow them
        assert info["scale_drift_after"] > 1e-3 and not any("frozen after" in ln for ln in lines)


def test_observer_steps_must_let_the_observers_see_data_first():
    with pytest.raises(EdgevcError, match="observer_steps"):
        QATSection(observer_steps=0)


class _Tiny2D(torch.nn.Module):
    """Per-frame Conv2d + BatchNorm2d (as TSM): the pattern prepare_qat_pt2e turns into its QAT conv-bn."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(8)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        n, c, t, h, w = x.shape
        y = torch.relu(self.bn(self.conv(x.transpose(1, 2).reshape(n * t, c, h, w))))
        return self.head(y.mean((2, 3)).reshape(n, t, -1).mean(1))


@pytest.mark.parametrize("freeze", [True, False])
def test_xnnpack_qat_freezes_the_batch_norms_of_the_qat_conv_bn_pattern(freeze):
    """prepare_qat_pt2e runs conv + BN in training mode even for a graph captured in eval mode: frozen means
    the running statistics never move (they drifted by up to 86% on TSM before the fix)."""
    from torch.utils.data import DataLoader, TensorDataset

    from edgevc.compress.recipe import QATSection
    from edgevc.compress.xnnpack_qat import xnnpack_qat

    torch.manual_seed(0)
    model = _Tiny2D().eval()
    model.bn.running_mean.fill_(0.3)
    gen = torch.Generator().manual_seed(3)
    data = TensorDataset(torch.randn(8, 3, 2, 8, 8, generator=gen) * 2 + 1, torch.randint(0, 4, (8,), generator=gen))
    loader = DataLoader(data, batch_size=4, shuffle=True, drop_last=True, generator=gen)
    lines: list[str] = []
    qat, _, _ = xnnpack_qat(model, loader, QATSection(steps=3, batch_size=4, lr=1e-2, log_every=1,
                                                       freeze_bn=freeze), lines.append)
    same = torch.equal(qat.bn.running_mean, model.bn.running_mean)
    assert same == freeze, (qat.bn.running_mean, model.bn.running_mean)
    assert any(("BatchNorm frozen (1 batch-norm" if freeze else "BatchNorm in batch mode") in ln for ln in lines)
    assert torch.equal(model.bn.running_mean, torch.full((8,), 0.3))  # the caller's network is never touched


def test_fold_weight_quantize_stores_int8_weights_and_keeps_the_outputs():
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from edgevc.export.targets.onnx import fold_weight_quantize

    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    scale = (np.abs(w).reshape(4, -1).max(1) / 127).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(scale, "s"),
             numpy_helper.from_array(np.zeros(4, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["w", "s", "z"], ["wq"], axis=0),
             helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"], axis=0),
             helper.make_node("Conv", ["x", "wd"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)

    def run(m):
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    before = run(model)
    assert fold_weight_quantize(model) == 1
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["DequantizeLinear", "Conv"]
    assert {i.name: i.data_type for i in model.graph.initializer} == {"s": TensorProto.FLOAT, "z": TensorProto.INT8,
                                                                      "wq": TensorProto.INT8}
    np.testing.assert_array_equal(run(model), before)


# ---- the tiny run, through the artifacts -----------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from edgevc.train import load_recipe, train

    out = tmp_path_factory.mktemp("tiny_run")
    train(load_recipe(TINY_TRAIN), out=out, show_progress=False, log=lambda _m: None)
    return out


def _recomputed(folder: Path, test_dir: Path, labels: tuple[str, ...], clips_per_video: int,
                options: dict) -> tuple[float, list[int]]:
    """Video top-1 and predictions of an artifact, recomputed here with edgevc.runtime + edgevc.sampling."""
    from edgevc.runtime import load
    from edgevc.sampling import aggregate, assemble, eval_clips, preprocess_frame
    from edgevc.video import read_video

    model = load(folder, threads=2, options=options)
    meta = model.meta
    right, preds = 0, []
    for c, name in enumerate(labels):
        for path in sorted((test_dir / name).iterdir()):
            frames = read_video(path, fps=meta.clip.fps).frames
            logits = [model.infer(assemble(np.stack([preprocess_frame(f, meta.preproc) for f in frames[idx]]),
                                           meta.preproc))
                      for idx in eval_clips(meta.clip, len(frames), clips_per_video)]
            pred = int(np.argmax(aggregate(np.concatenate(logits), meta.agg)))
            preds.append(pred)
            right += pred == c
    return right / len(preds), preds


def _check_artifacts(result: dict, out: Path, targets: tuple[str, ...]) -> None:
    """Every artifact exists, carries the run's specs, and its reported top-1 is what the runtime gives."""
    from edgevc.data.synth import make_bench
    from edgevc.export.profiles import resolve
    from edgevc.spec import ArtifactMeta
    from edgevc.train import load_recipe

    recipe = load_recipe(TINY_TRAIN)
    bench = make_bench(recipe.data.bench)
    assert sorted((v["target"], v["variant"]) for v in result["variants"]) == \
        sorted((t, v) for t in targets for v in ("fp32", "ptq", "qat"))
    for v in result["variants"]:
        assert v["error"] is None and v["verify_passed"] is True, v
        # QAT artifacts are checked against the QAT network they were made from; fp32 and PTQ against the trained one
        assert ("QAT" in v["verified_against"]) == (v["variant"] == "qat"), v
        folder = out / f"{v['target']}-{v['variant']}"
        meta = ArtifactMeta.load(folder)
        assert (meta.labels, meta.clip, meta.preproc) == (bench.labels, recipe.clip, recipe.preproc)
        assert meta.precision == ("fp32" if v["variant"] == "fp32" else "int8") and (folder / "verify.json").is_file()
        options = resolve(v["target"], meta.precision).profile.runtime_options or {}
        top1, preds = _recomputed(folder, bench.split_dir("test"), bench.labels, 2, options)
        acc = v["accuracy"]
        assert (acc["video_top1"], acc["predictions"], acc["videos"], acc["clips_per_video"]) == (top1, preds, 8, 2)
    rows = {r["target"]: r for r in result["table"]}
    for t in targets:
        r = rows[t]
        assert r["ptq_drop_pt"] == round((r["fp32_top1"] - r["ptq_top1"]) * 100, 2)
        assert r["qat_drop_pt"] == round((r["fp32_top1"] - r["qat_top1"]) * 100, 2)
        assert r["qat_mb"] < 0.6 * r["fp32_mb"] and r["ptq_mb"] < 0.6 * r["fp32_mb"]  # int8 weights are stored
    assert json.loads((out / "compress.json").read_text())["table"] == result["table"]
    assert "| target | fp32 | PTQ (drop) | QAT (drop) |" in (out / "compress.md").read_text()


def test_tiny_run_compresses_to_openvino_and_reports_top1_through_the_artifacts(tiny_run, tmp_path, capsys):
    """The CI check of the mechanics: fp32, PTQ and NNCF QAT artifacts of a trained run, via the CLI."""
    from edgevc.cli.main import main

    out = tmp_path / "c"
    code = main(["compress", str(TINY_COMPRESS), "--set", f"source.run={tiny_run}", "--targets", "openvino",
                 "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    _check_artifacts(result, out, ("openvino",))
    xml = (out / "openvino-qat" / "model.xml").read_text()
    assert xml.count('type="FakeQuantize"') >= 100  # the trained fake-quantizers became OpenVINO int8 nodes
    assert result["qat"]["nncf"]["stats"]["steps"] == 4 and (out / "qat_nncf.pt").is_file()
    from edgevc.assets import sha256_file
    from edgevc.spec import ArtifactMeta

    assert ArtifactMeta.load(out / "openvino-qat").weights_sha256 == sha256_file(out / "qat_nncf.pt")
    assert ArtifactMeta.load(out / "openvino-ptq").weights_sha256 == sha256_file(tiny_run / "model.pt")
    assert main(["compress", str(TINY_COMPRESS), "--set", f"source.run={tiny_run}", "--out", str(out)]) == 1
    assert "exists and is not empty" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_run_compresses_to_executorch_and_onnx_with_int8_ops_delegated(tiny_run, tmp_path):
    from edgevc.compress import compress

    out = tmp_path / "c"
    recipe = load_compress_recipe(TINY_COMPRESS, [f"source.run={tiny_run}", "targets=[executorch, onnx]"])
    result = compress(recipe, out=out, log=lambda _m: None).to_dict()
    _check_artifacts(result, out, ("executorch", "onnx"))
    for variant in ("ptq", "qat"):
        report = json.loads((out / f"executorch-{variant}" / "delegation.json").read_text())
        delegated = {op: v["delegated"] for op, v in report["by_op"].items() if "quantize" in op}
        assert delegated.get("quantized_decomposed_quantize_per_tensor_default", 0) > 50, delegated
        assert not any(v["not_delegated"] for op, v in report["by_op"].items() if "quantize" in op)
        assert report["executed"]["ok"] and report["compute_share"] > 0.95
    import onnx

    graph = onnx.load(str(out / "onnx-qat" / "model.onnx")).graph
    int8 = [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert len(int8) >= 80 and sum(n.op_type == "QuantizeLinear" for n in graph.node) >= 100
