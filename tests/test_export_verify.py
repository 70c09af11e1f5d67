"""Parity figures, checks and real-video clip planning, on small arrays and a tiny model (no export)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgevc.export.calib import RealClips, calibrate_bn, random_clips, split_frames, window_starts
from edgevc.export.profiles import Tolerances
from edgevc.export.verify import Figures, Row, VerifyReport, apply_floor, checks, compare, fp32_floor, torch_outputs
from edgevc.spec import ClipSpec, PreprocSpec

torch.set_num_threads(1)

CLIP = ClipSpec(num_frames=4, stride=12, fps=30.0)
PRE = PreprocSpec(crop=(32, 32), resize_short=40, mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225))


def _figures(**kw) -> Figures:
    base = dict(samples=4, classes=10, max_abs=0.0, max_abs_at=(0, 0), rel_l2=0.0, rel_l2_worst=0.0,
                top1_agreement=1.0, top5_agreement=1.0, ref_abs_max=1.0)
    return Figures(**{**base, **kw})


def test_compare_gives_exact_figures_and_where_the_largest_error_is():
    ref = np.array([[3.0, 1.0, 0.0, -1.0, -2.0, -3.0], [0.0, 2.0, 1.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    got = ref.copy()
    got[1, 2] = 2.5  # sample 1 now prefers class 2 (torch: class 1), off by 1.5
    fig = compare(ref, got)
    assert fig.max_abs == pytest.approx(1.5)
    assert fig.max_abs_at == (1, 2)
    assert fig.rel_l2 == pytest.approx(1.5 / np.sqrt(24 + 5))
    assert fig.rel_l2_worst == pytest.approx(1.5 / np.sqrt(5))
    assert fig.top1_agreement == 0.5
    assert fig.top5_agreement == 1.0  # torch's class 1 is still in the artifact's top 5
    assert fig.ref_abs_max == 3.0
    assert fig.decisive_samples == 2 and fig.top1_agreement_decisive == 0.5
    (flip,) = fig.disagreements
    assert flip["sample"] == 1 and flip["torch"] == 1 and flip["artifact"] == 2
    p = np.exp(ref[1]) / np.exp(ref[1]).sum()
    assert flip["torch_margin"] == pytest.approx(p[1] - p[2], abs=1e-4)  # how decisive torch was


def test_a_flip_on_a_near_tie_is_not_a_decisive_disagreement():
    ref = np.array([[2.0, 1.99, 0.0], [5.0, 0.0, 0.0], [0.0, 3.0, 0.0]], dtype=np.float32)
    got = np.array([[1.99, 2.0, 0.0], [5.0, 0.0, 0.0], [0.0, 3.0, 0.0]], dtype=np.float32)
    fig = compare(ref, got)
    assert fig.top1_agreement == pytest.approx(2 / 3)
    assert fig.decisive_samples == 2  # sample 0: torch's margin is 0.004 < 0.1
    assert fig.top1_agreement_decisive == 1.0
    assert compare(ref[:1], got[:1]).top1_agreement_decisive is None


def test_top5_agreement_counts_the_reference_top1_missing_from_the_artifact_top5():
    ref = np.arange(10, dtype=np.float32)[None]  # top-1 is class 9
    got = ref[:, ::-1].copy()  # class 9 is now the lowest
    assert compare(ref, got).top5_agreement == 0.0


def test_compare_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="artifact logits"):
        compare(np.zeros((2, 5)), np.zeros((2, 4)))


def test_topk_limits_bind_only_trained_models_on_real_clips():
    tol = Tolerances(max_abs=None, rel_l2=0.25, top1_agreement=0.95, top5_agreement=0.95)
    fig = _figures(rel_l2=0.1, top1_agreement=0.5)
    trained = {c.figure: c for c in checks(fig, tol, trained=True, inputs="real")}
    assert trained["top1_agreement"].enforced and trained["top1_agreement"].passed is False
    assert trained["rel_l2"].passed is True
    assert trained["max_abs"].enforced is False and trained["max_abs"].note == "no limit in the profile"
    untrained = {c.figure: c for c in checks(fig, tol, trained=False, inputs="real")}
    assert untrained["top1_agreement"].enforced is False and "random-init" in untrained["top1_agreement"].note
    noise = {c.figure: c for c in checks(fig, tol, trained=True, inputs="random")}
    assert noise["top1_agreement"].passed is None


def test_an_fp32_random_row_over_its_limit_passes_only_within_the_floor_multiple_and_says_so():
    tol = Tolerances(rel_l2=1e-4, rel_l2_floor_multiple=10)
    floor = {"float64": 4.8e-5, "one_ulp_input": 6.3e-5, "floor": 6.3e-5}
    near = checks(_figures(rel_l2=2.6e-4), tol, trained=False, inputs="random")
    assert next(c for c in near if c.figure == "rel_l2").passed is False
    apply_floor(near, tol, floor)
    rel = next(c for c in near if c.figure == "rel_l2")
    assert rel.passed is True and rel.limit == pytest.approx(6.3e-4)
    assert "10 x PyTorch fp32's own rounding floor" in rel.note and "4.80e-05 from float64" in rel.note
    row = Row("artifact", "random", {}, {}, _figures(rel_l2=2.6e-4), near, 0.1, fp32_floor=floor)
    report = VerifyReport("m", "onnx", "fp32", None, False, False, rows=[row], inputs={})
    assert report.passed and "pass (fp32 floor)" in report.table() and "one-ulp input change" in report.table()
    wrong = checks(_figures(rel_l2=1e-2), tol, trained=False, inputs="random")  # a wrong layer: far over
    apply_floor(wrong, tol, floor)
    assert next(c for c in wrong if c.figure == "rel_l2").passed is False
    plain = checks(_figures(rel_l2=2.6e-4), Tolerances(rel_l2=1e-4), trained=False, inputs="random")
    apply_floor(plain, Tolerances(rel_l2=1e-4), floor)  # no multiple in the profile: the limit stands
    assert next(c for c in plain if c.figure == "rel_l2").passed is False


def test_the_fp32_floor_grows_with_how_chaotic_the_network_is():
    torch.manual_seed(0)

    def net(gain: float) -> nn.Module:
        layers = [nn.Flatten()]
        for i in range(8):
            lin = nn.Linear(48 if i == 0 else 64, 64)
            nn.init.orthogonal_(lin.weight, gain=gain)
            layers += [lin, nn.Tanh()]
        return nn.Sequential(*layers, nn.Linear(64, 10)).eval()

    clips = [np.random.default_rng(i).standard_normal((1, 3, 4, 2, 2)).astype(np.float32) for i in range(4)]
    tame, wild = net(0.5), net(8.0)
    tame_floor = fp32_floor(tame, clips, False, torch_outputs(tame, clips, False))
    wild_floor = fp32_floor(wild, clips, False, torch_outputs(wild, clips, False))
    assert 0 < tame_floor["float64"] < 1e-6 and tame_floor["floor"] == max(tame_floor["float64"],
                                                                          tame_floor["one_ulp_input"])
    assert wild_floor["floor"] > 10 * tame_floor["floor"]


def test_the_fp32_floor_runs_a_stream_model_in_float64_with_its_state_cast():
    from edgevc.models import create

    torch.manual_seed(0)
    model = create("movinet_a0_stream").eval()
    clips = [np.random.default_rng(0).standard_normal((1, 3, 3, 64, 64)).astype(np.float32)]
    ref32 = torch_outputs(model, clips, True)
    assert ref32.shape[0] == 3  # one row per frame
    floor = fp32_floor(model, clips, True, ref32)
    assert 0 < floor["float64"] < 1e-5 and 0 < floor["one_ulp_input"] < 1e-5
    assert next(model.parameters()).dtype == torch.float32  # the float64 run used a copy


def test_a_report_whose_numbers_were_not_run_never_passes_on_nothing():
    report = VerifyReport("m", "coreml", "fp16", None, True, False, rows=[], inputs={}, numeric="NOT RUN: needs macOS")
    assert not report.passed
    report.structural = [{"check": "reload", "passed": True, "detail": "ok"}]
    assert report.passed
    assert report.table().startswith("numeric parity NOT RUN: needs macOS")


def test_window_starts_spread_clips_and_interleave_calibration_with_verification():
    assert window_starts(100, 37, 3, phase=0.0) == [0, 21, 42]
    assert window_starts(100, 37, 3, phase=0.5) == [10, 31, 52]
    assert window_starts(20, 37, 2, phase=0.5) == [0, 0]  # a short video: every window at 0 (clamped later)


def test_real_clips_come_round_robin_from_the_four_real_videos_preprocessed():
    clips = RealClips(CLIP, PRE, 6, phase=0.5)
    assert [r.source for r in clips.refs] == ["kinetics/arm_wrestling.mp4", "kinetics/arm_wrestling.mp4",
                                              "bikes", "bikes", "bbb_720p", "carphone"]
    assert all(np.diff(r.indices).tolist() == [12, 12, 12] for r in clips.refs)
    arrays = list(clips)
    assert len(arrays) == 6 and all(a.shape == (1, 3, 4, 32, 32) and a.dtype == np.float32 for a in arrays)
    lo = (0 - 0.45) / 0.225
    hi = (1 - 0.45) / 0.225
    assert all(lo - 1e-5 <= a.min() and a.max() <= hi + 1e-5 for a in arrays)
    assert not np.allclose(arrays[0], arrays[1])  # different windows of one video
    calib = RealClips(CLIP, PRE, 6, phase=0.0)
    assert [r.indices for r in calib.refs] != [r.indices for r in clips.refs]


def test_random_clips_span_the_value_range_and_split_into_frames():
    (clip,) = random_clips(CLIP, PRE, 1, seed=3)
    assert clip.shape == (1, 3, 4, 32, 32)
    assert clip.min() == pytest.approx(-2.0, abs=1e-5) and clip.max() == pytest.approx(2.4444444, abs=1e-5)
    frames = split_frames(clip)
    assert len(frames) == 4 and frames[2].shape == (1, 3, 1, 32, 32)
    assert np.array_equal(frames[2][:, :, 0], clip[:, :, 2])


def test_calibrate_bn_sets_running_stats_to_the_mean_and_variance_of_real_clips():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(3, 4, 1, bias=False), nn.BatchNorm3d(4), nn.ReLU(),
                          nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 3))
    clips = list(RealClips(CLIP, PRE, 4, phase=0.25))
    assert calibrate_bn(model, clips, batch=2) == 1
    bn = model[1]
    assert not model.training and bn.momentum == 0.1  # restored
    with torch.no_grad():
        feats = [model[0](torch.from_numpy(np.concatenate(clips[i:i + 2]))) for i in (0, 2)]
    # momentum=None: the plain average over the two batches of each batch's statistics
    means = torch.stack([f.mean((0, 2, 3, 4)) for f in feats]).mean(0)
    varis = torch.stack([f.var((0, 2, 3, 4), unbiased=True) for f in feats]).mean(0)
    assert torch.allclose(bn.running_mean, means, atol=1e-5)
    assert torch.allclose(bn.running_var, varis, rtol=1e-4)
    assert int(bn.num_batches_tracked) == 2


def test_clips_are_shared_by_how_many_windows_each_video_has():
    from edgevc.export.calib import allocate

    assert allocate(32, [219, 219, 101, 69]) == [11, 11, 6, 4]  # I3D's 32 clips over the four videos
    assert allocate(4, [219, 219, 101, 69]) == [1, 1, 1, 1]
    assert sum(allocate(33, [5, 1000, 7])) == 33
