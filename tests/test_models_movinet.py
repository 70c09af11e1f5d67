"""MoViNet A0-A2: stream parity with the causal clip forward, shared weights, state shapes, numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgevc.errors import EdgevcError
from edgevc.models import create, model_info
from edgevc.models.layers.causal_conv import CausalConv3d
from edgevc.models.layers.stream_pool import CumulativeAvgPool3d
from edgevc.models.movinet import make_divisible
from edgevc.report.flops import count_flops

VARIANTS = ("a0", "a1", "a2")
NAMES = [f"movinet_{v}{s}" for v in VARIANTS for s in ("", "_stream")]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics, ReZero scales and head weights, so parity checks mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.in_features ** 0.5)
        for name, p in model.named_parameters():
            if name.endswith("rezero"):
                p.copy_(torch.rand((), generator=g) + 0.5)
    return model.eval()


def _stream(model: nn.Module, clip: torch.Tensor) -> list[torch.Tensor]:
    """Logits after every frame, feeding the clip one frame at a time."""
    n, _, t, h, w = clip.shape
    state = model.init_state(n, input_size=(h, w))
    outs = []
    for i in range(t):
        logits, state = model.forward_step(clip[:, :, i:i + 1], state)
        outs.append(logits)
    return outs


def test_stream_frame_by_frame_matches_causal_clip_forward():
    torch.manual_seed(0)
    model = _randomize(create("movinet_a0_stream"))
    clip = torch.rand(2, 3, 8, 64, 64)
    with torch.no_grad():
        steps = _stream(model, clip)
        full = model(clip)
        prefix4 = model(clip[:, :, :4])
    assert steps[-1].shape == full.shape == (2, 600)
    diff = (steps[-1] - full).abs().max().item()
    assert diff <= 1e-4, f"last-frame logits: max abs diff {diff:.3g} (scale {full.abs().max():.3g})"
    assert (steps[3] - prefix4).abs().max().item() <= 1e-4  # every step is the clip forward of its prefix
    # the check has teeth: logits move far more than the tolerance as frames arrive
    assert (steps[0] - steps[-1]).abs().max().item() > 1e-2


def test_stream_in_chunks_matches_frames():
    torch.manual_seed(1)
    model = _randomize(create("movinet_a1_stream"), seed=1)
    clip = torch.rand(1, 3, 7, 48, 48)
    with torch.no_grad():
        state = model.init_state(1, input_size=(48, 48))
        _, state = model.forward_step(clip[:, :, :3], state)
        chunked, state = model.forward_step(clip[:, :, 3:], state)
        full = model(clip)
    assert (chunked - full).abs().max().item() <= 1e-4
    assert state[0].tolist() == [7.0]  # frame counter


def test_forward_step_is_pure():
    model = _randomize(create("movinet_a0_stream"))
    frame = torch.rand(1, 3, 1, 48, 48)
    state = [s + torch.rand_like(s) for s in model.init_state(1, input_size=(48, 48))]
    before = [s.clone() for s in state]
    with torch.no_grad():
        a, new_a = model.forward_step(frame, state)
        b, new_b = model.forward_step(frame, state)
    assert torch.equal(a, b)
    assert all(torch.equal(x, y) for x, y in zip(new_a, new_b, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(state, before, strict=True))


def test_init_state_shapes_follow_the_input_size():
    model = create("movinet_a0_stream")
    names = model.state_names()
    shapes = {n: tuple(s.shape) for n, s in zip(names, model.init_state(2), strict=True)}  # default 172x172
    assert len(shapes) == len(names) == 28  # count + 15 SE sums + 11 temporal buffers + head sum
    assert shapes["frame_count"] == (1,)
    assert shapes["blocks.1.dw.conv.buffer"] == (2, 80, 2, 43, 43)  # 3x3x3 at 172 / 4
    assert shapes["blocks.4.dw.conv.buffer"] == (2, 184, 4, 22, 22)  # 5x3x3 at 172 / 8
    assert shapes["blocks.0.se.pool.sum"] == (2, 24, 1, 1, 1)
    assert shapes["head.pool.sum"] == (2, 480, 1, 1, 1)
    assert "blocks.0.dw.conv.buffer" not in shapes  # 1x5x5 needs no buffer
    small = dict(zip(names, model.init_state(1, input_size=(64, 64)), strict=True))
    assert tuple(small["blocks.1.dw.conv.buffer"].shape) == (1, 80, 2, 16, 16)
    assert all(float(s.abs().sum()) == 0.0 for s in small.values())


def test_forward_step_rejects_a_base_model_and_a_wrong_state():
    with pytest.raises(EdgevcError, match="cannot stream"):
        create("movinet_a0").init_state()
    model = create("movinet_a0_stream")
    with pytest.raises(EdgevcError, match="state tensors"):
        model.forward_step(torch.rand(1, 3, 1, 48, 48), model.init_state(1, (48, 48))[:-1])


@pytest.mark.parametrize("variant", VARIANTS)
def test_base_and_stream_share_the_state_dict(variant):
    base, stream = create(f"movinet_{variant}"), create(f"movinet_{variant}_stream")
    sb, ss = base.state_dict(), stream.state_dict()
    assert list(sb) == list(ss)
    assert all(sb[k].shape == ss[k].shape for k in sb)
    stream.load_state_dict(sb, strict=True)


def test_base_weights_run_in_the_stream_form_with_causal_padding():
    base = _randomize(create("movinet_a0"))
    stream = create("movinet_a0_stream").eval()
    stream.load_state_dict(base.state_dict())
    clip = torch.rand(1, 3, 6, 48, 48)
    with torch.no_grad():
        b, s = base(clip), stream(clip)
    assert (b - s).abs().max().item() > 1e-3  # symmetric vs causal padding and SE: different models
    with torch.no_grad():
        assert (_stream(stream, clip)[-1] - s).abs().max().item() <= 1e-4


def test_causal_conv_never_sees_future_frames():
    torch.manual_seed(0)
    conv = CausalConv3d(4, 4, (3, 3, 3), groups=4)
    x = torch.rand(1, 4, 6, 8, 8)
    x2 = x.clone()
    x2[:, :, 4:] = torch.rand(1, 4, 2, 8, 8)
    with torch.no_grad():
        y, y2 = conv(x), conv(x2)
        assert torch.equal(y[:, :, :4], y2[:, :, :4])
        assert not torch.allclose(y[:, :, 4:], y2[:, :, 4:])
        buf, outs = torch.zeros(1, 4, 2, 8, 8), []
        for t in range(6):
            out, (buf,) = conv.stream(x[:, :, t:t + 1], [buf])
            outs.append(out)
    assert (torch.cat(outs, 2) - y).abs().max().item() <= 1e-6


def test_cumulative_pool_averages_frames_so_far():
    x = torch.tensor([1.0, 3.0, 8.0]).view(1, 1, 3, 1, 1).expand(1, 1, 3, 2, 2)
    per_frame = CumulativeAvgPool3d(1, keep_time=True)(x).flatten().tolist()
    assert per_frame == pytest.approx([1.0, 2.0, 4.0])
    assert CumulativeAvgPool3d(1, keep_time=False)(x).item() == pytest.approx(4.0)
    past_sum, past_count = torch.full((1, 1, 1, 1, 1), 4.0), torch.tensor([2.0])  # frames 1 and 3 seen
    y, (total,) = CumulativeAvgPool3d(1).stream(x[:, :, 2:], [past_sum], past_count)
    assert y.item() == pytest.approx(4.0) and total.item() == pytest.approx(12.0)


def test_se_width_is_a_quarter_of_the_expansion_rounded_to_8():
    assert [make_divisible(0.25 * c) for c in (24, 80, 184, 280, 344, 576)] == [8, 24, 48, 72, 88, 144]
    block = create("movinet_a0").blocks[4]
    assert block.se.fc1.weight.shape == (48, 184, 1, 1, 1)


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry_specs_and_output_shape(name):
    info = model_info(name)
    side = 224 if "a2" in name else 172
    assert info.preproc.crop == (side, side) and info.preproc.resize_short == side
    assert info.preproc.value_range == (0.0, 1.0) and info.preproc.mean == (0.0, 0.0, 0.0)
    assert (info.clip.num_frames, info.clip.fps, info.clip.stride) == (50, 5.0, 1)
    assert info.num_classes == 600 and info.weights is None and info.labels is None
    assert info.stream == name.endswith("_stream")
    assert info.published.input == (50, side, side)
    model = create(name).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 3, 48, 48)).shape == (1, 600)


@pytest.mark.parametrize("name", NAMES)
def test_counted_params_and_macs_are_the_registry_numbers(name):
    info = model_info(name)
    report = count_flops(lambda: create(name), info.input_shape, name)
    assert (report.params, report.macs_per_clip) == (info.params, info.macs)


def test_published_gflops_are_multiply_adds():
    """A0 at 50x172²: our MACs are 2.6% under the published 2.7 'GFLOPs'; FLOPs (2x) would be 95% over."""
    info = model_info("movinet_a0")
    assert info.macs / info.published.macs == pytest.approx(0.974, abs=0.001)
    assert 2 * info.macs / info.published.macs > 1.9
    assert info.params / info.published.params == pytest.approx(1.0038, abs=0.0005)


def test_pretrained_path_loads_and_another_head_size_is_reinitialised(tmp_path):
    source = _randomize(create("movinet_a0"))
    path = tmp_path / "a0.pth"
    torch.save(source.state_dict(), path)
    stream = create("movinet_a0_stream", pretrained=path)
    assert torch.equal(stream.blocks[3].dw.conv.weight, source.blocks[3].dw.conv.weight)
    small = create("movinet_a0", pretrained=path, num_classes=10)
    assert small.head.classifier.weight.shape == (10, 2048)
    assert torch.equal(small.head.fc.weight, source.head.fc.weight)
    with pytest.raises(EdgevcError, match="no pretrained weights"):
        create("movinet_a0", pretrained=True)


class _StepModule(nn.Module):
    """forward_step with the state as separate tensors in and out, as an exporter sees it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, new = self.model.forward_step(frame, list(state))
        return (logits, *new)


def test_forward_step_exports_with_explicit_state():
    model = _randomize(create("movinet_a0_stream"))
    state = model.init_state(1, input_size=(48, 48))
    frames = torch.rand(2, 1, 3, 1, 48, 48)
    program = torch.export.export(_StepModule(model), (frames[0], *state)).module()
    ref_state, exp_state = state, state
    with torch.no_grad():
        for frame in frames:
            ref, ref_state = model.forward_step(frame, ref_state)
            out = program(frame, *exp_state)
            exp_state = list(out[1:])
    assert len(exp_state) == len(state)
    assert (out[0] - ref).abs().max().item() <= 1e-5
