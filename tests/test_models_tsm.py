"""TSM-MobileNetV2: the shift itself, the torchvision-compatible backbone, offline vs online forms."""

from __future__ import annotations

import ast

import pytest
import torch
from torch import nn

from edgevc.errors import EdgevcError
from edgevc.models import create, model_info
from edgevc.models.layers.mobilenet_v2 import MobileNetV2
from edgevc.models.layers.temporal_shift import causal_temporal_shift, shift_step, temporal_shift
from edgevc.models.tsm import OnlineTSMMobileNetV2, TSMMobileNetV2, load_pretrained
from edgevc.report.flops import count_flops

torch.set_num_threads(1)

SHIFT_POINTS = (3, 5, 6, 8, 9, 10, 12, 13, 15, 16)
# The authors' online_demo/mobilenet_v2_tsm.py shift buffers at 224x224 (channels, size).
DEMO_BUFFERS = [(3, 56), (4, 28), (4, 28), (8, 14), (8, 14), (8, 14), (12, 14), (12, 14), (20, 7), (20, 7)]


def _ramp(n: int, t: int, c: int) -> torch.Tensor:
    """Frames ``(N*T, C, 1, 1)`` with value ``100*n + 10*t + ch`` (so every source is identifiable)."""
    v = torch.tensor([[[100 * i + 10 * j + k for k in range(c)] for j in range(t)] for i in range(n)],
                     dtype=torch.float32)
    return v.reshape(n * t, c, 1, 1)


def _model(cls: type[TSMMobileNetV2], num_classes: int = 400) -> TSMMobileNetV2:
    """Random init with realistic activations, in eval mode.

    With BatchNorm's default statistics a random MobileNetV2 shrinks its
    activations to ~1e-9 by the last layer (any comparison then passes), so
    the statistics are set from one train-mode batch, and the head is
    N(0, 0.1) so logits are O(10).
    """
    torch.manual_seed(0)
    model = cls(num_classes=num_classes)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0  # running stats := this batch's
    with torch.no_grad():
        model.train()(torch.randn(2, 3, 4, 32, 32))
    nn.init.normal_(model.classifier[1].weight, 0.0, 0.1)
    return model.eval()


# ---- the shift on small tensors, exact values ----

def test_bidirectional_shift_moves_one_eighth_each_way_with_zero_ends():
    x = _ramp(2, 3, 8)  # fold = 8 // 8 = 1
    y = temporal_shift(x, num_frames=3).reshape(2, 3, 8)
    # channel 0 from the next frame, channel 1 from the previous one, zeros outside the clip
    assert y[0, :, 0].tolist() == [10, 20, 0]
    assert y[0, :, 1].tolist() == [0, 1, 11]
    assert y[1, :, 0].tolist() == [110, 120, 0]  # clip 1 never reads clip 0
    assert y[1, :, 1].tolist() == [0, 101, 111]
    assert torch.equal(y[:, :, 2:], x.reshape(2, 3, 8)[:, :, 2:])


def test_causal_shift_takes_first_eighth_from_previous_frame_only():
    x = _ramp(2, 3, 16)  # fold = 2
    y = causal_temporal_shift(x, num_frames=3).reshape(2, 3, 16)
    assert y[0, :, 0].tolist() == [0, 0, 10]
    assert y[0, :, 1].tolist() == [0, 1, 11]
    assert y[1, :, 0].tolist() == [0, 100, 110]
    assert torch.equal(y[:, :, 2:], x.reshape(2, 3, 16)[:, :, 2:])


def test_shift_step_frame_by_frame_equals_causal_shift_of_the_clip():
    x = torch.randn(2 * 5, 24, 3, 3)
    full = causal_temporal_shift(x, num_frames=5).reshape(2, 5, 24, 3, 3)
    frames = x.reshape(2, 5, 24, 3, 3)
    state = torch.zeros(2, 3, 3, 3)
    for t in range(5):
        shifted, state = shift_step(frames[:, t], state)
        assert torch.equal(shifted, full[:, t])
    assert torch.equal(state, frames[:, 4, :3])


# ---- the backbone: torchvision layout, real ImageNet weights ----

def test_mobilenet_v2_has_torchvision_params_and_macs():
    report = count_flops(lambda: MobileNetV2(num_classes=1000), (1, 3, 224, 224), "mobilenet_v2")
    assert report.params == 3_504_872  # torchvision MobileNet_V2_Weights.IMAGENET1K_V1 num_params
    assert report.macs_per_clip == 300_774_272  # torchvision's _ops: 0.301 GFLOPS (multiply-adds)


@pytest.mark.network
def test_imagenet_file_keys_and_shapes_equal_the_backbone():
    from edgevc import assets

    state = torch.load(assets.fetch("mobilenet_v2_imagenet"), weights_only=True)
    own = MobileNetV2(num_classes=1000).state_dict()
    assert list(state) == list(own)  # same names, same order: 314 tensors
    assert len(own) == 314
    assert all(state[k].shape == own[k].shape for k in own)


@pytest.mark.network
def test_pretrained_loads_all_312_backbone_tensors_and_reinitialises_the_head():
    from edgevc import assets

    state = torch.load(assets.fetch("mobilenet_v2_imagenet"), weights_only=True)
    model = TSMMobileNetV2(num_classes=400)
    assert load_pretrained(model, True, "tsm_mobilenet_v2") == 312
    got = model.state_dict()
    backbone = [k for k in state if not k.startswith("classifier.")]
    assert len(backbone) == 312
    assert all(torch.equal(got[k], state[k]) for k in backbone)
    assert got["classifier.1.weight"].shape == (400, 1280)
    assert float(got["classifier.1.weight"].std()) == pytest.approx(0.001, rel=0.05)  # TSM's head init
    assert float(got["classifier.1.bias"].abs().max()) == 0.0
    online = create("tsm_mobilenet_v2_online", pretrained=True)
    assert torch.equal(online.features[3].conv[0][0].weight, state["features.3.conv.0.0.weight"])


def _imagenet_model() -> MobileNetV2:
    from edgevc import assets

    model = MobileNetV2(num_classes=1000).eval()
    model.load_state_dict(torch.load(assets.fetch("mobilenet_v2_imagenet"), weights_only=True))
    return model


@pytest.mark.network
def test_imagenet_backbone_gives_a_distribution_on_a_gray_image():
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        probs = _imagenet_model()((torch.full((1, 3, 224, 224), 0.5) - mean) / std).softmax(-1)
    assert probs.shape == (1, 1000)
    assert bool(torch.isfinite(probs).all())
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.network
def test_imagenet_backbone_is_confident_on_a_real_frame():
    """Big Buck Bunny frame 99 (the white bunny stretching): the real weights say 'albatross' at p > 0.5.

    Random or wrongly loaded weights (e.g. BatchNorm statistics missing) give
    a near-flat distribution; the class is a golden value of these weights.
    """
    av = pytest.importorskip("av")
    from edgevc import assets

    with av.open(str(assets.fetch("bbb_720p"))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == 99:
                rgb = torch.from_numpy(frame.to_ndarray(format="rgb24"))
                break
    x = rgb.permute(2, 0, 1)[None].float() / 255  # 720x1280
    x = nn.functional.interpolate(x, size=(256, 455), mode="bilinear", antialias=True, align_corners=False)
    x = x[:, :, 16:240, 115:339]
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1)
    with torch.no_grad():
        probs = _imagenet_model()(x).softmax(-1)[0]
    names = _imagenet_names()
    assert names[int(probs.argmax())] == "albatross"
    assert float(probs.max()) > 0.5


def _imagenet_names() -> list[str]:
    from edgevc import assets

    tree = ast.parse(assets.fetch("kinetics400_labels_src").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_IMAGENET_CATEGORIES":
            return list(ast.literal_eval(node.value))
    raise AssertionError("no _IMAGENET_CATEGORIES in torchvision's _meta.py")


def test_pretrained_path_round_trips_a_tsm_state_dict(tmp_path):
    src = _model(TSMMobileNetV2)
    torch.save(src.state_dict(), tmp_path / "tsm.pth")
    dst = create("tsm_mobilenet_v2", pretrained=tmp_path / "tsm.pth")
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values(),
                                                 strict=True))


# ---- where the shifts are, and the online state ----

def test_shifts_sit_in_the_ten_residual_blocks_and_state_matches_the_demo_buffers():
    model = OnlineTSMMobileNetV2()
    assert model.shift_points == SHIFT_POINTS
    assert all(model.features[i].use_res_connect for i in SHIFT_POINTS)
    state = model.init_state(batch=2, input_size=(224, 224))
    assert [tuple(s.shape) for s in state] == [(2, c, s, s) for c, s in DEMO_BUFFERS]
    assert all(float(s.abs().sum()) == 0.0 for s in state)
    # each stride-2 layer before a shift point: ceil(size / 2)
    assert [s[2:] for s in model.state_shapes(1, (100, 60))][:2] == [(25, 15), (13, 8)]


def test_online_frame_by_frame_equals_forward_frames_of_the_clip():
    model = _model(OnlineTSMMobileNetV2)
    torch.manual_seed(1)
    clip = torch.randn(2, 3, 6, 64, 64)
    with torch.no_grad():
        full = model.forward_frames(clip)
        state = model.init_state(batch=2, input_size=(64, 64))
        steps = []
        for t in range(6):
            logits, state = model.forward_step(clip[:, :, t:t + 1], state)
            steps.append(logits)
        clip_logits = model(clip)
    stepped = torch.stack(steps, dim=1)
    assert full.shape == stepped.shape == (2, 6, 400)
    assert float(full.abs().max()) > 1.0  # a meaningful comparison, not of near-zero logits
    assert float((stepped - full).abs().max()) <= 1e-4
    assert torch.allclose(clip_logits, full.mean(dim=1), atol=1e-6)


def test_forward_step_does_not_modify_its_state():
    model = _model(OnlineTSMMobileNetV2)
    state = [s + 1.0 for s in model.init_state(1, (32, 32))]
    before = [s.clone() for s in state]
    with torch.no_grad():
        model.forward_step(torch.randn(1, 3, 1, 32, 32), state)
    assert all(torch.equal(a, b) for a, b in zip(state, before, strict=True))


def test_online_stream_depends_on_the_last_eleven_frames_only():
    """Ten shift points on the path: frame t sees frames t-10..t, so a stream forgets its start."""
    model = _model(OnlineTSMMobileNetV2)
    torch.manual_seed(2)
    clip = torch.randn(1, 3, 13, 32, 32)
    with torch.no_grad():
        stream = model.forward_frames(clip)
        window = model.forward_frames(clip[:, :, 2:])  # 11 frames: 2..12
        short = model.forward_frames(clip[:, :, 3:])  # 10 frames: 3..12, misses frame 2
    assert float((window[:, -1] - stream[:, -1]).abs().max()) <= 1e-4
    assert float((short[:, -1] - stream[:, -1]).abs().max()) > 1e-4


def _first_shift_block_outputs(model: TSMMobileNetV2, clip: torch.Tensor) -> torch.Tensor:
    out = {}
    hook = model.features[SHIFT_POINTS[0]].register_forward_hook(lambda m, i, o: out.setdefault("y", o))
    with torch.no_grad():
        model.forward_frames(clip)
    hook.remove()
    n, _, t = clip.shape[:3]
    return out["y"].reshape(n, t, -1)


def _changed_frames(model: TSMMobileNetV2) -> list[int]:
    torch.manual_seed(3)
    clip = torch.randn(1, 3, 6, 32, 32)
    bumped = clip.clone()
    bumped[:, :, 3] += 1.0
    a, b = _first_shift_block_outputs(model, clip), _first_shift_block_outputs(model, bumped)
    return [t for t in range(6) if float((a[:, t] - b[:, t]).abs().max()) > 1e-6]


def test_offline_shift_is_bidirectional_at_the_first_shifted_block():
    assert _changed_frames(_model(TSMMobileNetV2)) == [2, 3, 4]


def test_online_shift_is_causal_at_the_first_shifted_block():
    assert _changed_frames(_model(OnlineTSMMobileNetV2)) == [3, 4]


# ---- shapes, errors, registry ----

@pytest.mark.parametrize("name", ["tsm_mobilenet_v2", "tsm_mobilenet_v2_online"])
def test_forward_shapes_and_tsn_consensus(name):
    model = create(name, num_classes=10).eval()
    clip = torch.randn(2, 3, 4, 64, 96)
    with torch.no_grad():
        logits, frames = model(clip), model.forward_frames(clip)
        single = model(clip[:, :, :1])
    assert logits.shape == (2, 10) and frames.shape == (2, 4, 10) and single.shape == (2, 10)
    assert torch.allclose(logits, frames.mean(dim=1), atol=1e-6)


def test_stream_interface_rejects_wrong_inputs():
    model = OnlineTSMMobileNetV2(num_classes=5).eval()
    state = model.init_state(1, (32, 32))
    with pytest.raises(EdgevcError, match="one frame"):
        model.forward_step(torch.randn(1, 3, 2, 32, 32), state)
    with pytest.raises(EdgevcError, match="10 state tensors"):
        model.forward_step(torch.randn(1, 3, 1, 32, 32), state[:-1])
    with pytest.raises(EdgevcError, match="NCTHW"):
        model(torch.randn(1, 32, 32, 3))
    assert not hasattr(TSMMobileNetV2(), "forward_step")


def test_registry_entries_carry_the_specs():
    offline, online = model_info("tsm_mobilenet_v2"), model_info("tsm_mobilenet_v2_online")
    assert (offline.stream, online.stream) == (False, True)
    assert offline.clip.mode == "segment" and offline.clip.span == 64
    assert online.clip.mode == "strided" and online.clip.stride == offline.clip.stride == 8
    assert offline.weights == online.weights == "mobilenet_v2_imagenet"
    assert offline.input_shape == online.input_shape == (1, 3, 8, 224, 224)
    assert offline.params == 2_736_272 == offline.published.params
    assert isinstance(create("tsm_mobilenet_v2_online"), OnlineTSMMobileNetV2)


def test_published_figure_is_mmcv_counting_at_8x256x256():
    """mmaction2's 3,337,519,104 'FLOPs' = conv/linear MACs + 2 per BN element + ReLU6 + pool, at 256x256."""
    with torch.device("meta"):
        model = TSMMobileNetV2().eval()
    total = {"n": 0}

    def add(n: int) -> None:
        total["n"] += n

    def conv_macs(m: nn.Conv2d, out: torch.Tensor) -> int:
        return out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(lambda m, i, o: add(conv_macs(m, o)))
        elif isinstance(m, nn.BatchNorm2d):
            m.register_forward_hook(lambda m, i, o: add(2 * i[0].numel()))
        elif isinstance(m, nn.ReLU6):
            m.register_forward_hook(lambda m, i, o: add(o.numel()))
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(lambda m, i, o: add(i[0].numel() * o.shape[-1]))
    model.features[-1].register_forward_hook(lambda m, i, o: add(o.numel()))  # the global average pool
    with torch.no_grad():
        model(torch.zeros(1, 3, 8, 256, 256, device="meta"))
    assert total["n"] == int(model_info("tsm_mobilenet_v2").published.macs) == 3_337_519_104
