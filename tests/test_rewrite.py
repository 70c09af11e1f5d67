"""The exact 3D -> 2D graph rewrite (edgevc.export.rewrite): every zoo model, every conv/pool variant.

Exactness is checked in float64, where the rewritten graph equals the
original to ~1e-12 (in float32 both sides carry ~1e-6 rounding noise that a
random-init network amplifies, so float32 is checked against a looser bound).
Random-init models get BatchNorm statistics from one train-mode batch first:
with the defaults (mean 0, var 1) activations shrink layer by layer and any
comparison would pass trivially.
"""

from __future__ import annotations

import collections

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgevc.export.rewrite import RewriteError, rewrite_3d, unsupported_nodes
from edgevc.export.stream import StepModule
from edgevc.models import create, list_models, model_info

torch.set_num_threads(1)


def _input_shape(name: str) -> tuple[int, ...]:
    """Small inputs: S3D's fixed 2x7x7 head pool needs 224², I3D's stride-2 SAME pads want even sizes."""
    if name == "s3d":
        return (1, 3, 16, 224, 224)
    if name.startswith("i3d"):
        return (1, 3, 8, 64, 64)
    size = 64 if name.startswith("movinet") else 32  # MoViNet's 3x3 skip pools need >= 3 pixels at 1/16
    return (1, 3, min(model_info(name).clip.num_frames, 4), size, size)


def _realistic(model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """BN running statistics := one train-mode batch (so activations stay O(1)), then eval."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 1.0
    with torch.no_grad():
        model.train()(torch.randn(2, *shape[1:], dtype=next(model.parameters()).dtype))
    return model.eval()


def _zoo_case(name: str, dtype: torch.dtype) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    model = create(name).to(dtype)
    shape = _input_shape(name)
    model = _realistic(model, shape)
    if model_info(name).stream:
        frame = torch.randn(1, 3, 1, *shape[3:], dtype=dtype)
        state = [torch.randn_like(s) for s in model.init_state(1, input_size=shape[3:])]
        return StepModule(model).eval(), (frame, *state)
    return model, (torch.randn(shape, dtype=dtype),)


def _outputs(module: nn.Module, example: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    with torch.no_grad():
        out = module(*example)
    return [out] if isinstance(out, torch.Tensor) else list(out)


def _assert_close(got: list[torch.Tensor], ref: list[torch.Tensor], rel: float, what: str) -> None:
    assert len(got) == len(ref)
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert g.shape == r.shape, f"{what} output {i}: shape {tuple(g.shape)} != {tuple(r.shape)}"
        scale = r.abs().max().item()
        err = (g - r).abs().max().item()
        assert scale > 1e-3 or r.numel() == 1, f"{what} output {i} is ~0 (max {scale:.2e}): the test would be vacuous"
        assert err <= rel * max(scale, 1.0), (f"{what} output {i}: max abs diff {err:.3e} at "
                                              f"{tuple(int(v) for v in divmod((g - r).abs().argmax().item(), 1))}"
                                              f", scale {scale:.3e}")


def _op_name(target) -> str:
    """The op's name, never its repr: a repr such as '<built-in method cat ... at 0x7f3d...>' carries a memory
    address, and an address that happens to contain '3d' made the '3D ops left' check fail at random."""
    if isinstance(target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        return str(target)  # 'aten.permute.default'
    return getattr(target, "__name__", None) or str(target)  # torch.cat -> 'cat', F.relu -> 'relu'


def _ops(gm: torch.fx.GraphModule) -> collections.Counter[str]:
    return collections.Counter(_op_name(n.target) for n in gm.graph.nodes if n.op == "call_function")


# ---- every zoo model --------------------------------------------------------------------------

# CI runs one model per family and layer kind (plus the stream forms); the rest only change widths and inputs
CI_ZOO = {"i3d_k400", "mc3_18", "r3d_18", "r2plus1d_18", "x3d_xs", "movinet_a0", "movinet_a0_stream",
          "tsm_mobilenet_v2", "tsm_mobilenet_v2_online"}


@pytest.mark.parametrize("name", [n if n in CI_ZOO else pytest.param(n, marks=pytest.mark.slow) for n in list_models()])
def test_zoo_model_rewrite_equals_the_original_in_float64(name):
    model, example = _zoo_case(name, torch.float64)
    gm = rewrite_3d(model, example)
    assert unsupported_nodes(gm) == []
    ops = _ops(gm)
    assert not [op for op in ops if "3d" in op], f"3D ops left: {[op for op in ops if '3d' in op]}"
    _assert_close(_outputs(gm, example), _outputs(model, example), 1e-10, name)
    if not name.startswith("tsm"):  # TSM is 2D already: nothing to rewrite
        assert sum(v for k, v in gm.meta["rewrite"].items() if k.startswith("conv3d")) > 0


@pytest.mark.parametrize("name", ["x3d_xs", "i3d_k400"])
def test_zoo_model_rewrite_matches_in_float32(name):
    model, example = _zoo_case(name, torch.float32)
    gm = rewrite_3d(model, example)
    _assert_close(_outputs(gm, example), _outputs(model, example), 1e-4, name)


def test_x3d_frames_layout_permutes_only_the_input_and_folds_every_batch_norm():
    model, example = _zoo_case("x3d_xs", torch.float32)
    bns = sum(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    gm = rewrite_3d(model, example)
    ops = _ops(torch.export.export(gm, example).module())  # the ATen graph that gets lowered
    # NCTHW -> frames once at the input; every layer then hands frames to the next
    assert ops["aten.permute.default"] == 1
    assert ops["aten.batch_norm.default"] == 0
    assert gm.meta["rewrite"]["batch_norm folded"] == bns == 83
    assert gm.meta["rewrite"]["conv3d 3x3x3 depthwise"] == 26
    # one Conv2d per Conv3d (temporal taps interleaved row-wise), no 5-D weights kept
    assert ops["aten.conv2d.default"] == sum(isinstance(m, nn.Conv3d) for m in model.modules()) == 116
    assert all(p.dim() == 4 for n, p in gm.named_parameters() if n.startswith("_rewrite") and p.dim() > 1)
    assert not [n for n, p in gm.named_parameters() if p.dim() == 5]


def test_i3d_minus_inf_pads_become_edge_pads_before_its_max_pools():
    model, example = _zoo_case("i3d_k400", torch.float64)
    gm = rewrite_3d(model, example)
    counts = gm.meta["rewrite"]
    assert counts["pad (edge)"] >= 3  # MaxPool3dSame's asymmetric -inf pads (stride-2 pools)
    assert counts["pad"] == 1  # the stem conv's asymmetric zero pad (TF "SAME", stride 2)
    assert counts["max_pool3d 3x3x3"] == 10  # nine inception branches and Mixed_4a's pool
    # no -inf constant is left for an int8 observer to see
    assert not [n for n in gm.graph.nodes if any(a == float("-inf") for a in n.args if isinstance(a, float))]


# ---- op variants on small modules (float64, N = 2 so batch handling is exercised) -------------

class Fn(nn.Module):
    def __init__(self, fn, *mods: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleList(mods)

    def forward(self, x):
        return self.fn(x, *self.mods)


def _check(module: nn.Module, shape=(2, 5, 7, 11, 10), rel: float = 1e-10, kinds: tuple[str, ...] = ()):
    torch.manual_seed(1)
    module = module.double().eval()
    x = torch.randn(shape, dtype=torch.float64)
    gm = rewrite_3d(module, (x,))
    assert unsupported_nodes(gm) == []
    _assert_close(_outputs(gm, (x,)), _outputs(module, (x,)), rel, type(module).__name__)
    for kind in kinds:
        assert any(k.startswith(kind) for k in gm.meta["rewrite"]), f"{kind} not in {gm.meta['rewrite']}"
    return gm


CONVS = [
    dict(kernel_size=(3, 3, 3), padding=1),
    dict(kernel_size=(3, 1, 1), padding=(1, 0, 0), stride=(2, 1, 1)),
    dict(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
    dict(kernel_size=(2, 2, 3), stride=(2, 2, 1), padding=0),
    dict(kernel_size=(5, 3, 3), padding=(2, 1, 1), stride=(3, 1, 2)),
    dict(kernel_size=(3, 3, 3), padding=(2, 1, 1), dilation=(2, 1, 1)),
    dict(kernel_size=(3, 3, 3), padding=2, dilation=(1, 2, 2)),  # dilated in H: the per-tap sum
    dict(kernel_size=(3, 3, 3), padding="same"),
    dict(kernel_size=(2, 4, 3), padding="same"),  # asymmetric "same" pads
    dict(kernel_size=(3, 3, 3), padding=1, groups=5),  # depthwise
    dict(kernel_size=(1, 1, 1), stride=(2, 2, 2)),
]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("kw", CONVS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_conv3d_variants_with_and_without_a_batch_norm_to_fold(kw, bias):
    out = 5 if kw.get("groups") else 6
    conv = nn.Conv3d(5, out, bias=bias, **kw)
    _check(Fn(lambda x, c: c(x), conv), kinds=("conv3d",))
    bn = nn.BatchNorm3d(out)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    gm = _check(Fn(lambda x, c, b: torch.relu(b(c(x))), conv, bn), kinds=("conv3d", "batch_norm folded"))
    assert "aten.batch_norm.default" not in _ops(gm)


def test_batch_norm_that_cannot_be_folded_runs_on_frames():
    conv, bn = nn.Conv3d(5, 4, 3, padding=1), nn.BatchNorm3d(4)
    with torch.no_grad():
        bn.running_var.uniform_(0.5, 2)
    def fn(x, c, b):
        y = c(x)
        return b(y) + y

    gm = _check(Fn(fn, conv, bn), kinds=("batch_norm",))
    assert _ops(gm)["aten.batch_norm.default"] == 1  # the conv output has two readers: no fold


POOLS = [
    lambda x: F.max_pool3d(x, 3, 1, 1),
    lambda x: F.max_pool3d(x, (2, 3, 3), (2, 2, 2), (1, 1, 0), ceil_mode=True),
    lambda x: F.max_pool3d(x, (3, 2, 2), (1, 2, 2), (0, 1, 1), dilation=(2, 1, 1)),
    lambda x: F.avg_pool3d(x, (2, 3, 3), 1),
    lambda x: F.avg_pool3d(x, (3, 3, 3), (2, 2, 2), 1, count_include_pad=False),
    lambda x: F.avg_pool3d(x, (3, 3, 3), (2, 2, 2), 1, ceil_mode=True, count_include_pad=True),
    lambda x: F.avg_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1), count_include_pad=False),
    lambda x: F.adaptive_avg_pool3d(x, 1),
    lambda x: F.adaptive_avg_pool3d(x, (7, 1, 5)),
    lambda x: x.mean((2, 3, 4)),
    lambda x: x.mean((-3, -2, -1), keepdim=True),
    lambda x: x.mean((3, 4), keepdim=True),
    lambda x: x.mean(2),
]


@pytest.mark.parametrize("i", range(len(POOLS)))
def test_pool_and_mean_variants(i):
    _check(Fn(lambda x: POOLS[i](x)))


def test_minus_inf_pad_before_max_pool_is_replaced_by_edge_padding():
    gm = _check(Fn(lambda x: F.max_pool3d(F.pad(x, (0, 1, 1, 1, 0, 1), value=float("-inf")), 3, 2)),
                kinds=("pad (edge)",))
    assert not any(float("-inf") in n.args for n in gm.graph.nodes if n.op == "call_function")


def test_minus_inf_pad_feeding_anything_else_keeps_its_value():
    x = torch.randn(1, 2, 3, 4, 4)
    gm = rewrite_3d(Fn(lambda x: F.pad(x, (1, 1, 0, 0, 1, 0), value=float("-inf")).amax(2)), (x,))
    assert "pad (edge)" not in gm.meta["rewrite"]
    assert torch.equal(gm(x), F.pad(x, (1, 1, 0, 0, 1, 0), value=float("-inf")).amax(2))


@pytest.mark.parametrize("mode", ["constant", "replicate"])
def test_five_d_pads_become_concatenations(mode):
    gm = _check(Fn(lambda x: torch.sigmoid(F.pad(torch.relu(x), (1, 2, 0, 1, 2, 0), mode=mode))), kinds=("pad",))
    assert "aten.pad.default" not in _ops(gm) and "aten.constant_pad_nd.default" not in _ops(gm)


def test_cat_slice_and_broadcasts_follow_the_frames_layout():
    conv = nn.Conv3d(5, 5, 3, padding=1)
    gate = nn.Conv3d(5, 5, 1)

    def fn(x, c, g):
        y = torch.relu(c(x))
        y = y * torch.sigmoid(g(y.mean((2, 3, 4), keepdim=True)))  # an SE gate, broadcast over T, H, W
        y = torch.cat([y, y[:, :, 1:3]], dim=2)  # along time
        return torch.cat([y, -y], dim=1)[:, 2:7]

    _check(Fn(fn, conv, gate))


def test_a_3d_op_the_rewrite_does_not_cover_is_named_with_its_module_path():
    class Head(nn.Module):
        def forward(self, x):
            return F.adaptive_avg_pool3d(x, (2, 3, 3))  # 5 -> 2 windows overlap: no exact 2D form here

    model = nn.Sequential(nn.Conv3d(3, 4, 1), Head())
    with pytest.raises(RewriteError) as err:
        rewrite_3d(model, (torch.randn(1, 3, 5, 6, 6),))
    assert "adaptive_avg_pool3d" in str(err.value) and "1 (Head)" in str(err.value)
    assert "--target openvino" in err.value.hint


def test_ops_xnnpack_does_not_take_become_ones_it_does():
    def fn(x):  # (2, 5, 1, 4, 4): one frame, as a stream step sees it
        y = torch.zeros_like(x) + torch.full_like(x, 2.0) * x
        y = y.cumsum(2) + y.sum(2, keepdim=True) + y.mean(2, keepdim=True)
        frames = y[:, :, 0]  # 4-D
        pooled = frames.mean((2, 3))  # no keepdim
        steps = torch.arange(1, 6, dtype=x.dtype)
        return (pooled * steps).reshape(2, 5, 1).mean(1) + frames.mean(1).sum()

    gm = _check(Fn(fn), shape=(2, 5, 1, 4, 4))
    counts = gm.meta["rewrite"]
    assert counts["constant block"] == 2 and counts["constant"] == 1
    assert counts["size-1 reduction"] == 3 and counts["mean keepdim"] == 1 and counts["mean as pool"] == 2
    left = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
    assert not {"aten.zeros_like.default", "aten.full_like.default", "aten.cumsum.default",
                "aten.arange.start"} & left


def test_tsm_shift_zeros_become_shared_constant_blocks():
    model, example = _zoo_case("tsm_mobilenet_v2", torch.float32)
    gm = rewrite_3d(model, example)
    assert gm.meta["rewrite"]["constant block"] == 20  # ten shift points, two zero ends each
    fulls = [n for n in gm.graph.nodes if n.target is torch.full]
    assert 0 < len(fulls) <= 10 and all(not n.all_input_nodes for n in fulls)  # shared, read nothing
