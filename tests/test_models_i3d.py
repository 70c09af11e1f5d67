"""I3D (i3d_k400): TF "SAME" padding, the safe checkpoint reader, weight conversion, real predictions."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgevc.errors import EdgevcError
from edgevc.models import create, model_info
from edgevc.models.i3d import I3D, _create_i3d, convert_jax_params, load_jax_checkpoint
from edgevc.models.layers.same_pad import Conv3dSame, MaxPool3dSame, same_pads
from edgevc.report.flops import count_flops

ARM_WRESTLING = Path(__file__).resolve().parents[2] / "shared" / "clips" / "kinetics" / "arm_wrestling.mp4"


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------ SAME padding


@pytest.mark.parametrize(("size", "kernel", "stride", "pads"), [
    (13, 6, 5, (1, 2)),    # TF's documented example
    (224, 7, 2, (2, 3)),   # I3D stem, H and W
    (32, 7, 2, (2, 3)),    # I3D stem, 32 frames
    (112, 3, 2, (0, 1)),   # MaxPool3d_2a
    (16, 3, 2, (0, 1)),    # MaxPool3d_4a in time at 32 frames
    (14, 2, 2, (0, 0)),    # MaxPool3d_5a at 224
    (7, 2, 2, (0, 1)),
    (56, 3, 1, (1, 1)),    # stride 1, odd kernel: symmetric
    (5, 1, 1, (0, 0)),
    (4, 7, 3, (3, 3)),     # kernel larger than the input
])
def test_same_pads_follow_tf_rule(size, kernel, stride, pads):
    assert same_pads(size, kernel, stride) == pads


def test_same_pads_give_ceil_output_and_extra_pixel_at_the_end():
    for n in range(1, 40):
        for k in range(1, 8):
            for s in range(1, 4):
                begin, end = same_pads(n, k, s)
                total = max((-(-n // s) - 1) * s + k - n, 0)
                assert (begin, end) == (total // 2, total - total // 2)
                assert end - begin in (0, 1)
                assert (n + begin + end - k) // s + 1 == -(-n // s)


def test_conv3d_same_pads_asymmetrically_like_tf():
    conv = Conv3dSame(1, 1, (1, 1, 3), (1, 1, 2))
    with torch.no_grad():
        conv.weight.fill_(1.0)
    y = conv(torch.ones(1, 1, 1, 1, 8))
    # windows start at 0, 2, 4, 6; the last covers 6, 7 and one zero of padding (pads (0, 1))
    assert y.flatten().tolist() == [3.0, 3.0, 3.0, 2.0]
    sym = F.conv3d(torch.ones(1, 1, 1, 1, 8), conv.weight, stride=(1, 1, 2), padding=(0, 0, 1))
    assert sym.flatten().tolist() == [2.0, 3.0, 3.0, 3.0]  # PyTorch's symmetric padding differs


def test_conv3d_same_matches_explicit_padding_on_random_input():
    torch.manual_seed(0)
    conv = Conv3dSame(3, 4, 7, 2)
    x = torch.randn(1, 3, 9, 13, 12)
    # pads: T 9 -> (3, 3); H 13 -> (3, 3); W 12 -> (2, 3): only W is asymmetric
    ref = F.conv3d(F.pad(x, (2, 3, 3, 3, 3, 3)), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), ref, rtol=0, atol=1e-5)
    assert conv(x).shape == (1, 4, 5, 7, 6)


def test_maxpool_same_pads_with_minus_inf_not_zero():
    pool = MaxPool3dSame((1, 1, 3), (1, 1, 2))
    x = -torch.arange(1.0, 5.0).view(1, 1, 1, 1, 4)  # [-1, -2, -3, -4]
    # windows [-1, -2, -3] and [-3, -4, pad]: a zero pad would win the second
    assert pool(x).flatten().tolist() == [-1.0, -3.0]
    same_stride1 = MaxPool3dSame(3, 1)(x.expand(1, 1, 3, 3, 4).contiguous())
    assert same_stride1.shape == (1, 1, 3, 3, 4)
    assert same_stride1[0, 0, 0, 0].tolist() == [-1.0, -1.0, -2.0, -3.0]


# ------------------------------------------------------------------------------------------ the model


def test_i3d_small_input_gives_logits_per_class():
    torch.manual_seed(0)
    model = create("i3d_k400").eval()
    x = torch.randn(2, 3, 8, 64, 64).clamp(-1, 1)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
    assert feats.shape == (2, 1024, 1, 2, 2)
    assert logits.shape == (2, 400)
    assert torch.isfinite(logits).all()


def test_batchnorm_has_no_scale_parameter_and_eps_1e3():
    model = _create_i3d("i3d_k400")
    bn = model.conv3d_1a_7x7.bn
    assert bn.eps == 1e-3
    assert "weight" not in dict(bn.named_parameters())
    assert torch.equal(bn.weight, torch.ones(64))
    assert "conv3d_1a_7x7.bn.weight" not in model.state_dict()


def test_counts_on_meta_device_match_registry_and_published():
    info = model_info("i3d_k400")
    at_default = count_flops(lambda: _create_i3d("i3d_k400"), info.input_shape)
    assert (at_default.params, at_default.macs_per_clip) == (info.params, info.macs)
    assert (info.params, info.macs) == (12_689_984, 55_576_367_104)
    at_16 = count_flops(lambda: _create_i3d("i3d_k400"), (1, 3, 16, 224, 224))
    assert at_16.macs_per_clip == 27_787_978_752
    assert abs(at_16.macs_per_clip / info.published.macs - 1) < 0.002


def test_pretrained_path_loads_and_new_head_is_left_initialised(tmp_path):
    torch.manual_seed(0)
    src = _create_i3d("i3d_k400")
    path = tmp_path / "i3d.pth"
    torch.save(src.state_dict(), path)
    same = create("i3d_k400", pretrained=path)
    for key, value in src.state_dict().items():
        assert torch.equal(same.state_dict()[key], value), key
    small = create("i3d_k400", pretrained=path, num_classes=7)
    assert small.logits.conv3d_0c_1x1.conv.weight.shape == (7, 1024, 1, 1, 1)
    assert torch.equal(small.mixed_5c.branch_1.conv3d_0b_3x3.conv.weight,
                       src.mixed_5c.branch_1.conv3d_0b_3x3.conv.weight)


# ------------------------------------------------------------------------------------------ checkpoint reader


def _to_jax_tree(model: I3D) -> dict[str, dict]:
    """The inverse of convert_jax_params, nested the way flax does ('Branch_1/Conv3d_0b_3x3' is one key)."""
    leaf = {"weight": "kernel", "bias": "bias", "running_mean": "mean", "running_var": "var"}
    tree: dict[str, dict] = {"params": {}, "batch_stats": {}}
    for key, value in model.state_dict().items():
        *mods, sub, name = key.split(".")
        if name == "num_batches_tracked":
            continue
        arr = value.numpy()
        arr = arr.transpose(2, 3, 4, 1, 0) if name == "weight" else arr
        arr = arr.reshape(1, 1, 1, 1, -1) if name in ("running_mean", "running_var") else arr
        group = "batch_stats" if name.startswith("running") else "params"
        names = [m[0].upper() + m[1:] for m in mods]
        node = tree[group].setdefault(names[0], {})
        if len(names) > 1:
            node = node.setdefault("/".join(names[1:]), {})
        sub_name = {"conv": "Conv_0", "bn": "BatchNorm_0"}[sub]
        node.setdefault(sub_name, {})[leaf[name]] = np.ascontiguousarray(arr)
    return tree


def test_jax_checkpoint_round_trip_reproduces_the_model(tmp_path):
    torch.manual_seed(0)
    src = _create_i3d("i3d_k400").eval()
    for m in src.modules():  # non-trivial statistics, so a mix-up of mean and var would show
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "fake.ckpt"
    path.write_bytes(pickle.dumps(_to_jax_tree(src), protocol=4))
    ckpt = load_jax_checkpoint(path)
    dst = _create_i3d("i3d_k400").eval()
    dst.load_state_dict(convert_jax_params(ckpt["params"], ckpt["batch_stats"]), strict=True)
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": {}, "batch_stats": {"x": _Payload(marker)}}))
    with pytest.raises(EdgevcError, match=rf"refused .*'{os.system.__module__}\.system'"):
        load_jax_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("obj", [
    {"params": eval, "batch_stats": {}},
    {"params": {"a": Path("/")}, "batch_stats": {}},
])
def test_restricted_unpickler_refuses_any_non_numpy_global(tmp_path, obj):
    path = tmp_path / "other.ckpt"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(EdgevcError, match="refused to load the global"):
        load_jax_checkpoint(path)


def test_checkpoint_with_object_array_is_refused(tmp_path):
    path = tmp_path / "objects.ckpt"
    path.write_bytes(pickle.dumps({"params": {"a": np.array([1, "x"], dtype=object)}, "batch_stats": {}}))
    with pytest.raises(EdgevcError, match="expected a float numpy array"):
        load_jax_checkpoint(path)


# ------------------------------------------------------------------------------------------ real weights


@pytest.fixture(scope="module")
def real_ckpt():
    from edgevc import assets

    return load_jax_checkpoint(assets.fetch("i3d_k400_ckpt"))


@pytest.mark.network
def test_converted_real_weights_fit_the_model_exactly(real_ckpt):
    state = convert_jax_params(real_ckpt["params"], real_ckpt["batch_stats"])
    model = _create_i3d("i3d_k400")
    own = model.state_dict()
    assert sorted(state) == sorted(own)
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in own.items()}
    model.load_state_dict(state, strict=True)
    assert len(state) == 287  # 57 conv+BN units x 5 keys, plus the logits weight and bias
    assert sum(v.numel() for k, v in state.items() if "running" not in k and "tracked" not in k) == 12_689_984


@pytest.mark.network
def test_real_weights_name_arm_wrestling(real_ckpt):
    from edgevc.models.labels import get_labels
    from edgevc.sampling import preprocess
    from edgevc.video import read_video

    info = model_info("i3d_k400")
    video = read_video(ARM_WRESTLING, fps=info.clip.fps, max_frames=info.clip.num_frames)
    x = torch.from_numpy(preprocess(video.frames, info.preproc))
    assert x.shape == (1, 3, 32, 224, 224)
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    model = _create_i3d("i3d_k400").eval()
    model.load_state_dict(convert_jax_params(real_ckpt["params"], real_ckpt["batch_stats"]), strict=True)
    torch.set_num_threads(2)  # ~1 s for a 32x224x224 forward; the autouse fixture restores it
    with torch.no_grad():
        probs = model(x).softmax(-1)[0]
    labels = get_labels(info.labels)
    assert labels[int(probs.argmax())] == "arm wrestling"
    assert float(probs[labels.index("arm wrestling")]) > 0.5
