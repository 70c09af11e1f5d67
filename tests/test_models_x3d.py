"""X3D-XS/S/M (PyTorchVideo's ``create_x3d``) and the reusable 3D squeeze-excite block.

Shapes and multiply-adds are counted on the meta device; the few real
forwards use X3D-XS at 4x160² or smaller (tens of milliseconds).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgevc.errors import EdgevcError
from edgevc.models import create, model_info
from edgevc.models.layers.se import SqueezeExcite3d, make_divisible
from edgevc.models.x3d import X3D, X3DHead, convert_pytorchvideo_state_dict
from edgevc.report.flops import count_flops

VARIANTS = ("x3d_xs", "x3d_s", "x3d_m")
# The X3D paper's GFLOPs (= GMACs) at its nominal inputs.
PAPER = {
    "x3d_xs": (0.60e9, (4, 160, 160)),
    "x3d_s": (1.96e9, (13, 160, 160)),
    "x3d_m": (4.73e9, (16, 224, 224)),
}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _meta_forward(name: str, shape: tuple[int, ...], num_classes: int = 400) -> torch.Size:
    with torch.device("meta"):
        model = create(name, num_classes=num_classes).eval()
        return model(torch.zeros(shape)).shape


# ---- registry data -------------------------------------------------------------------------------

@pytest.mark.parametrize("name,frames,stride,crop", [("x3d_xs", 4, 12, 160), ("x3d_s", 13, 6, 160),
                                                     ("x3d_m", 16, 5, 224)])
def test_default_clip_and_preproc_follow_pyslowfast_configs(name, frames, stride, crop):
    info = model_info(name)
    assert (info.clip.num_frames, info.clip.stride, info.clip.fps, info.clip.mode) == (frames, stride, 30.0,
                                                                                       "strided")
    assert info.preproc.crop == (crop, crop) and info.preproc.resize_short == crop
    assert info.preproc.mean == (0.45,) * 3 and info.preproc.std == (0.225,) * 3
    assert info.preproc.value_range == (0.0, 1.0) and info.preproc.channel_order == "RGB"
    assert info.input_shape == (1, 3, frames, crop, crop)
    assert info.weights is None and info.labels is None and info.num_classes == 400


# ---- shapes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", VARIANTS)
def test_output_is_batch_by_classes_at_default_input(name):
    info = model_info(name)
    assert _meta_forward(name, (2, *info.input_shape[1:])) == (2, 400)


@pytest.mark.parametrize("name", VARIANTS)
def test_runs_at_8_frames_112_pixels_for_training(name):
    assert _meta_forward(name, (3, 3, 8, 112, 112), num_classes=7) == (3, 7)


def test_real_forward_gives_finite_logits_at_default_and_training_sizes():
    torch.manual_seed(0)
    model = create("x3d_xs").eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 4, 160, 160))
        feats = model.forward_features(torch.randn(2, 3, 8, 112, 112))
        y_small = model(torch.randn(2, 3, 8, 112, 112))
    assert y.shape == (1, 400) and torch.isfinite(y).all()
    assert feats.shape == (2, 192, 8, 4, 4)  # no temporal stride; spatial stride 32
    assert y_small.shape == (2, 400) and torch.isfinite(y_small).all()


def test_global_mean_head_equals_pytorchvideo_fixed_avgpool_at_training_size():
    """PyTorchVideo pools with AvgPool3d((T, ceil(crop/32), ceil(crop/32)), stride 1): same result there."""
    torch.manual_seed(0)
    head = X3DHead(192, 432, 2048, num_classes=5, dropout=0.5).eval()
    nn.init.normal_(head.pre_norm.running_mean)
    x = torch.randn(2, 192, 4, 5, 5)
    with torch.no_grad():
        pooled = nn.AvgPool3d((4, 5, 5), stride=1)(head.pre_act(head.pre_norm(head.pre_conv(x))))
        ref = head.proj(head.post_act(head.post_conv(pooled)).flatten(1))
        out = head(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


# ---- architecture --------------------------------------------------------------------------------

def test_stage_depths_widths_and_se_placement_match_create_x3d():
    with torch.device("meta"):
        model = X3D()
    stages = list(model.blocks[1:5])
    assert [len(s.res_blocks) for s in stages] == [3, 5, 11, 7]  # ceil((1, 2, 5, 3) * 2.2)
    assert [s.res_blocks[0].branch2.norm_c.num_features for s in stages] == [24, 48, 96, 192]
    assert [s.res_blocks[0].branch2.conv_b.out_channels for s in stages] == [54, 108, 216, 432]
    assert all(s.res_blocks[0].branch2.conv_b.groups == s.res_blocks[0].branch2.conv_b.in_channels
               for s in stages)  # channel-wise 3x3x3
    se_flags = [[isinstance(b.branch2.se, SqueezeExcite3d) for b in s.res_blocks] for s in stages]
    assert se_flags == [[i % 2 == 0 for i in range(len(s.res_blocks))] for s in stages]
    assert [s.res_blocks[0].branch2.se.squeeze_channels for s in stages] == [8, 8, 16, 32]
    stem = model.blocks[0]
    assert stem.conv_xy.kernel_size == (1, 3, 3) and stem.conv_xy.stride == (1, 2, 2)
    assert stem.conv_t.kernel_size == (5, 1, 1) and stem.conv_t.groups == 24
    # Projection shortcut in each first block; BN on it only where the width changes (not stage 1, 24 -> 24).
    assert [s.res_blocks[0].branch1_norm is not None for s in stages] == [False, True, True, True]
    assert all(b.branch1_conv is None for s in stages for b in s.res_blocks[1:])
    head = model.blocks[5]
    assert (head.pre_conv.out_channels, head.post_conv.out_channels) == (432, 2048)
    assert head.proj.in_features == 2048
    assert head.post_conv.bias is None and head.dropout.p == 0.5


# ---- numbers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", VARIANTS)
def test_macs_within_2_percent_of_the_paper(name):
    macs, (t, h, w) = PAPER[name]
    report = count_flops(lambda: create(name), (1, 3, t, h, w), name)
    assert abs(report.macs_per_clip / macs - 1) < 0.02, report.gmacs_per_clip
    info = model_info(name)
    assert info.published.macs == macs and info.published.input == (t, h, w)
    assert (report.params, report.macs_per_clip) == (info.params, info.macs)  # default input == paper input


@pytest.mark.parametrize("name", VARIANTS)
def test_params_within_2_percent_of_3_8_million(name):
    report = count_flops(lambda: create(name), (1, 3, 4, 64, 64), name)
    assert report.params == 3_794_274  # the same network for XS, S and M; PyTorchVideo's zoo says 3.79M
    assert abs(report.params / 3.8e6 - 1) < 0.02


def test_macs_scale_with_frames_except_the_per_clip_layers():
    """No temporal stride: MACs are linear in T, except after global pools (SE fcs, post conv, classifier)."""
    with torch.device("meta"):
        model = X3D()
    se_blocks = [m for m in model.modules() if isinstance(m, SqueezeExcite3d)]
    se_macs = sum(2 * m.channels * m.squeeze_channels for m in se_blocks)
    assert se_macs == 158_976  # 15 SE blocks: 2 x (2*54*8) + 3 x (2*108*8) + 6 x (2*216*16) + 4 x (2*432*32)
    per_clip = se_macs + 432 * 2048 + 2048 * 400
    m4, m8 = (count_flops(lambda: create("x3d_xs"), (1, 3, t, 160, 160)).macs_per_clip for t in (4, 8))
    assert m8 - per_clip == 2 * (m4 - per_clip)


# ---- squeeze-excite ------------------------------------------------------------------------------

def test_se_output_is_input_times_sigmoid_gate_with_shape_preserved():
    torch.manual_seed(0)
    se = SqueezeExcite3d(16, squeeze_channels=4)
    x = torch.randn(2, 16, 3, 5, 7)
    with torch.no_grad():
        s = x.mean(dim=(2, 3, 4), keepdim=True)
        gate = torch.sigmoid(se.fc2(torch.relu(se.fc1(s))))
        out = se(x)
    assert out.shape == x.shape and gate.shape == (2, 16, 1, 1, 1)
    torch.testing.assert_close(out, x * gate)
    assert ((gate > 0) & (gate < 1)).all()


def test_se_gate_saturates_to_identity_or_zero():
    se = SqueezeExcite3d(8, squeeze_channels=8)
    x = torch.randn(1, 8, 2, 3, 3)
    with torch.no_grad():
        se.fc2.weight.zero_()
        se.fc2.bias.fill_(30.0)
        torch.testing.assert_close(se(x), x)
        se.fc2.bias.fill_(-30.0)
        assert se(x).abs().max() < 1e-12


def test_se_squeeze_width_rounds_like_pytorchvideo_round_width():
    assert SqueezeExcite3d(54, reduction_ratio=0.0625).squeeze_channels == 8  # 3.375 -> minimum 8
    assert SqueezeExcite3d(432, reduction_ratio=0.0625).squeeze_channels == 32  # 27 -> 24 < 0.9 * 27 -> 32
    assert SqueezeExcite3d(64).squeeze_channels == 16  # default ratio 1/4
    assert SqueezeExcite3d(64, squeeze_channels=5).squeeze_channels == 5
    assert [make_divisible(v) for v in (12 * 2.0, 24 * 2.0, 13.5, 100.0)] == [24, 48, 16, 104]


def test_se_takes_other_activation_and_gate_classes():
    se = SqueezeExcite3d(16, reduction_ratio=0.25, activation=nn.SiLU, gate=nn.Hardsigmoid)
    assert isinstance(se.act, nn.SiLU) and isinstance(se.gate, nn.Hardsigmoid) and se.squeeze_channels == 8
    x = torch.randn(1, 16, 2, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(se(x), x * nn.functional.hardsigmoid(se.fc2(nn.functional.silu(
            se.fc1(x.mean(dim=(2, 3, 4), keepdim=True))))))


# ---- initialisation and weights ------------------------------------------------------------------

def test_same_seed_gives_same_weights_and_another_seed_does_not():
    def build(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return create("x3d_xs").state_dict()

    a, b, c = build(0), build(0), build(1)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["blocks.0.conv_xy.weight"], c["blocks.0.conv_xy.weight"])
    # PyTorchVideo's init: BN weight 1, bias 0 (no zero-initialised final BN); linear N(0, 0.01), bias 0.
    assert torch.equal(a["blocks.1.res_blocks.0.branch2.norm_c.weight"], torch.ones(24))
    assert torch.equal(a["blocks.5.proj.bias"], torch.zeros(400))
    assert 0.008 < a["blocks.5.proj.weight"].std() < 0.012


def _to_pytorchvideo_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """edgevc -> PyTorchVideo ``create_x3d`` key names, written out independently of the module's table."""
    out = {}
    for key, value in state.items():
        if key.startswith("blocks.0.conv_xy."):
            key = key.replace("blocks.0.conv_xy.", "blocks.0.conv.conv_t.")
        elif key.startswith("blocks.0.conv_t."):
            key = key.replace("blocks.0.conv_t.", "blocks.0.conv.conv_xy.")
        key = key.replace(".se.fc1.", ".norm_b.1.block.0.").replace(".se.fc2.", ".norm_b.1.block.2.")
        key = key.replace(".norm_b.weight", ".norm_b.0.weight").replace(".norm_b.bias", ".norm_b.0.bias")
        key = key.replace(".norm_b.running", ".norm_b.0.running").replace(".norm_b.num_b", ".norm_b.0.num_b")
        if key.startswith("blocks.5.") and not key.startswith("blocks.5.proj."):
            key = "blocks.5.pool." + key[len("blocks.5."):]
        out[key] = value
    return out


def test_pytorchvideo_state_dict_loads_through_pretrained_path(tmp_path):
    torch.manual_seed(0)
    source = create("x3d_xs").state_dict()
    ptv = _to_pytorchvideo_keys(source)
    expected_shapes = {
        "blocks.0.conv.conv_t.weight": (24, 3, 1, 3, 3),
        "blocks.0.conv.conv_xy.weight": (24, 1, 5, 1, 1),
        "blocks.1.res_blocks.0.branch1_conv.weight": (24, 24, 1, 1, 1),
        "blocks.1.res_blocks.0.branch2.norm_b.0.running_var": (54,),
        "blocks.1.res_blocks.0.branch2.norm_b.1.block.0.weight": (8, 54, 1, 1, 1),
        "blocks.4.res_blocks.6.branch2.norm_b.1.block.2.bias": (432,),
        "blocks.5.pool.pre_conv.weight": (432, 192, 1, 1, 1),
        "blocks.5.pool.post_conv.weight": (2048, 432, 1, 1, 1),
        "blocks.5.proj.weight": (400, 2048),
    }
    assert {k: tuple(ptv[k].shape) for k in expected_shapes} == expected_shapes
    assert convert_pytorchvideo_state_dict(ptv).keys() == source.keys()
    path = tmp_path / "x3d_xs_ptv.pth"
    torch.save(ptv, path)
    torch.manual_seed(1)
    loaded = create("x3d_xs", pretrained=str(path)).state_dict()
    assert all(torch.equal(loaded[k], source[k]) for k in source)


def test_checkpoint_with_other_class_count_loads_backbone_and_keeps_new_head(tmp_path):
    torch.manual_seed(0)
    source = create("x3d_s").state_dict()
    path = tmp_path / "x3d_s.pth"
    torch.save(source, path)
    model = create("x3d_s", pretrained=path, num_classes=10)
    state = model.state_dict()
    assert state["blocks.5.proj.weight"].shape == (10, 2048)
    assert all(torch.equal(state[k], v) for k, v in source.items() if not k.startswith("blocks.5.proj."))


def test_pretrained_true_raises_a_clear_error():
    with pytest.raises(EdgevcError, match="no pretrained weights"):
        create("x3d_m", pretrained=True)


def test_reset_classifier_replaces_only_the_linear_layer():
    torch.manual_seed(0)
    model = create("x3d_xs").eval()
    before = model.blocks[5].post_conv.weight.clone()
    model.reset_classifier(3)
    assert model.num_classes == 3 and model.blocks[5].proj.out_features == 3
    assert torch.equal(model.blocks[5].post_conv.weight, before)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 4, 64, 64)).shape == (1, 3)
