"""torchvision-compatible video models: r3d_18, mc3_18, r2plus1d_18, s3d.

The golden fixture lists torchvision's state-dict keys, shapes (in order) and
parameter counts for each model (recorded from torchvision 0.28.0 with
``weights=None, num_classes=400``); a user's torchvision Kinetics-400
checkpoint must load into ours with ``strict=True``. Costs are pinned against
the published torchvision figures ("_ops" GFLOPS = GMACs).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edgevc.errors import EdgevcError
from edgevc.models import create, model_info
from edgevc.models.layers.conv2plus1d import Conv2Plus1d, midplanes
from edgevc.models.resnet3d import r3d_18
from edgevc.report.flops import count_flops

torch.set_num_threads(1)

MODELS = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d")
_FIXTURE_NAME = "torchvision_video_state_dicts.json"
_FIXTURE_PLACES = (
    Path(__file__).parent / "data" / _FIXTURE_NAME,
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / _FIXTURE_NAME,
)
# torchvision 0.29.1 *_Weights.KINETICS400_V1.meta: "_ops" (GMACs) at (T, H, W) and "num_params".
PUBLISHED = {
    "r3d_18": (40.697, (16, 112, 112), 33_371_472),
    "mc3_18": (43.343, (16, 112, 112), 11_695_440),
    "r2plus1d_18": (40.519, (16, 112, 112), 31_505_325),
    "s3d": (17.979, (16, 224, 224), 8_320_048),
}
# The smallest cheap input each model accepts (S3D pools a 2x7x7 window after /8 time, /32 space).
SMALL_INPUT = {name: (1, 3, 4, 32, 32) for name in MODELS[:3]} | {"s3d": (1, 3, 13, 209, 209)}


@pytest.fixture(scope="module")
def torchvision_layout() -> dict:
    for path in _FIXTURE_PLACES:
        if path.is_file():
            return json.loads(path.read_text())["models"]
    pytest.skip(f"{_FIXTURE_NAME} not found in {[str(p) for p in _FIXTURE_PLACES]}")


def _meta_model(name: str, **kw) -> torch.nn.Module:
    with torch.device("meta"):
        return create(name, **kw)


def _random_state(layout: list, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the fixture's names and shapes; BN variances positive, counters integer."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(123)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    return state


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_keys_and_shapes_equal_torchvisions_in_order(name, torchvision_layout):
    ours = [[k, list(v.shape)] for k, v in _meta_model(name).state_dict().items()]
    theirs = torchvision_layout[name]["state_dict"]
    first_diff = next(((a, b) for a, b in zip(ours, theirs, strict=False) if a != b), None)
    assert first_diff is None, f"{name}: first difference (ours, torchvision's): {first_diff}"
    assert len(ours) == len(theirs)


@pytest.mark.parametrize("name", MODELS)
def test_param_count_equals_torchvisions(name, torchvision_layout):
    params = sum(p.numel() for p in _meta_model(name).parameters())
    assert params == torchvision_layout[name]["num_params"] == PUBLISHED[name][2]
    assert model_info(name).params == params


@pytest.mark.parametrize("name", MODELS)
def test_torchvision_layout_checkpoint_loads_strict(name, torchvision_layout):
    state = _random_state(torchvision_layout[name]["state_dict"])
    model = create(name)
    model.load_state_dict(state, strict=True)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


@pytest.mark.parametrize("name", MODELS)
def test_forward_gives_one_logit_row_per_clip(name):
    model = create(name).eval()
    x = torch.randn(SMALL_INPUT[name], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 400)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", MODELS)
def test_num_classes_replaces_the_head(name):
    model = _meta_model(name, num_classes=7)
    assert model(torch.zeros(SMALL_INPUT[name], device="meta")).shape == (1, 7)


def test_s3d_needs_13_frames_and_209_pixels():
    model = _meta_model("s3d")
    assert model(torch.zeros(1, 3, 13, 209, 209, device="meta")).shape == (1, 400)
    for shape in ((1, 3, 12, 224, 224), (1, 3, 16, 208, 208)):
        with pytest.raises(RuntimeError, match="smaller than kernel size"):
            model(torch.zeros(shape, device="meta"))


@pytest.mark.parametrize("name, t_out", [("r3d_18", 2), ("mc3_18", 16), ("r2plus1d_18", 2)])
def test_mc3_keeps_time_after_layer1_while_r3d_and_r2plus1d_stride_it(name, t_out):
    features = _meta_model(name).forward_features(torch.zeros(1, 3, 16, 112, 112, device="meta"))
    assert tuple(features.shape) == (1, 512, t_out, 7, 7)


def test_conv2plus1d_mid_width_matches_the_full_kernels_params():
    assert midplanes(64, 128) == 230  # floor(27 * 64 * 128 / (9 * 64 + 3 * 128)) = floor(230.4)
    full = 27 * 64 * 128
    factorised = sum(p.numel() for p in Conv2Plus1d(64, 128, 230).parameters() if p.dim() == 5)
    assert abs(factorised - full) / full < 0.01
    with torch.device("meta"):
        y = Conv2Plus1d(64, 128, 230, stride=2)(torch.zeros(1, 64, 8, 16, 16))
    assert tuple(y.shape) == (1, 128, 4, 8, 8)


@pytest.mark.parametrize("name", MODELS)
def test_macs_at_published_input_within_2_percent_of_torchvision(name):
    gmacs, thw, params = PUBLISHED[name]
    info = model_info(name)
    assert info.published.input == thw and info.published.macs == pytest.approx(gmacs * 1e9)
    report = count_flops(lambda: create(name), (1, 3, *thw), name)
    assert report.gmacs_per_clip == pytest.approx(gmacs, rel=0.02)
    assert report.params == params


def test_r2plus1d_18_costs_40_52_gmacs_at_16x112():
    report = count_flops(lambda: create("r2plus1d_18"), (1, 3, 16, 112, 112), "r2plus1d_18")
    assert report.gmacs_per_clip == pytest.approx(40.52, rel=0.02)
    assert report.macs_per_clip == 40_519_080_960  # FlopCounterMode / 2: torchvision's 40.519 exactly


@pytest.mark.parametrize("name", MODELS)
def test_registry_entry_carries_torchvision_preprocessing(name):
    info = model_info(name)
    assert info.num_classes == 400 and info.labels == "kinetics400" and info.weights is None
    assert info.preproc.mean == (0.43216, 0.394666, 0.37645)
    assert info.preproc.std == (0.22803, 0.22145, 0.216989)
    assert info.preproc.value_range == (0.0, 1.0) and info.preproc.layout == "NCTHW"
    assert info.clip.mode == "strided" and info.clip.stride == 1 and info.clip.fps == 15.0
    if name == "s3d":
        assert (info.preproc.resize_short, info.preproc.crop, info.clip.num_frames) == (256, (224, 224), 64)
    else:
        assert (info.preproc.resize_short, info.preproc.crop) == (128, (112, 112))
        assert info.input_shape[2:] == info.published.input  # default input = published input


def _perturbed(name: str, seed: int) -> torch.nn.Module:
    """A model whose weights and BN statistics are all non-trivial (so a load that skips any shows)."""
    torch.manual_seed(seed)
    model = create(name).eval()
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                value.copy_(torch.rand_like(value) + 0.5 if key.endswith("running_var") else
                            torch.randn_like(value) * 0.05)
    return model


@pytest.mark.parametrize("name", ["r2plus1d_18", "s3d"])
def test_pretrained_path_round_trip_gives_identical_outputs(name, tmp_path):
    source = _perturbed(name, seed=3)
    path = tmp_path / f"{name}.pth"
    torch.save(source.state_dict(), path)
    loaded = create(name, pretrained=path).eval()
    x = torch.randn((1, 3, 4, 32, 32) if name != "s3d" else (1, 3, 13, 209, 209),
                    generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(source(x), loaded(x))


def test_pretrained_path_with_other_num_classes_loads_the_backbone_only(tmp_path):
    source = _perturbed("mc3_18", seed=5)
    path = tmp_path / "mc3_18.pth"
    torch.save(source.state_dict(), path)
    model = create("mc3_18", pretrained=path, num_classes=10)
    assert model.fc.weight.shape == (10, 512)
    state, expected = model.state_dict(), source.state_dict()
    assert all(torch.equal(state[k], expected[k]) for k in expected if not k.startswith("fc."))
    assert torch.count_nonzero(model.fc.bias.detach()) == 0  # the new head keeps its fresh init


@pytest.mark.parametrize("wrong, expect", [
    ("rename", "layer3.1.conv1.0.weightz"),
    ("reshape", "layer3.1.conv1.0.weight: (256, 256, 1, 3, 3) vs (256, 256, 3, 3, 3)"),
])
def test_checkpoint_with_a_wrong_key_raises_naming_it(wrong, expect, tmp_path):
    state = _fresh_state("r3d_18")
    key = "layer3.1.conv1.0.weight"
    if wrong == "rename":
        state[key + "z"] = state.pop(key)
    else:
        state[key] = state[key][:, :, :1].clone()
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(EdgevcError) as err:
        create("r3d_18", pretrained=path)
    assert expect in str(err.value)
    if wrong == "rename":
        assert f"'{key}'" in str(err.value)  # the missing key is named too


def _fresh_state(name: str) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in create(name).state_dict().items()}


def test_pretrained_true_without_offline_weights_raises():
    for call in (lambda: create("s3d", pretrained=True), lambda: r3d_18(pretrained=True)):
        with pytest.raises(EdgevcError, match="no pretrained weights"):
            call()
