"""An exact rewrite of a video model's 3D ops into 2D ops, so that ExecuTorch (XNNPACK) can run it.

XNNPACK convolves and pools in 1D and 2D only, and ExecuTorch's portable
kernels reject 5-D convolution input and have no 3D pooling: a Conv3d model
lowers without error, then fails at its first call. :func:`rewrite_3d`
rewrites the model's exported ATen graph (so functional calls such as
``F.avg_pool3d`` or ``F.pad`` are caught as well as modules) into 2D ops
that compute the same numbers:

- **conv3d** becomes a sum over the ``kt`` temporal taps of a Conv2d applied
  to whole frames, ``y[t] = b + sum_k conv2d(x[t*st + k*dt - pt], W[:, :, k])``.
  Temporal zero padding is built with ``torch.cat`` (``F.pad`` on 5-D tensors
  lowered but failed at load in INT8 graphs); a temporal stride takes every
  ``st``-th frame with a reshape and a channel slice. Groups (depthwise),
  spatial stride, padding and dilation stay on the Conv2d. A BatchNorm that
  is the conv's only consumer is folded into the taps' weights and bias.
- **batch_norm** on 5-D input becomes batch_norm on the frames.
- **max_pool3d / avg_pool3d** become a 2D pool over (H, W), then a pool over
  time: a ``(kt, 1)`` 2D pool on the frames viewed as ``(N, 1, T, C*H*W)``.
  Both are separable, including ``count_include_pad=False`` (the count of
  valid cells of a box is the product of the counts per axis).
- **mean** over (T, H, W) (global pooling), over (H, W) or over T, and
  ``adaptive_avg_pool3d`` to 1x1x1 or to a size dividing the input.
- **pad** on 5-D: ``torch.cat`` of constant frames, rows and columns. A
  ``-inf`` pad whose only consumers are max pools is replaced by edge
  replication, which is exact: every window that reaches into the pad also
  covers the edge value it replicates (checked: dilation 1, pad < kernel),
  and it keeps INT8 observers finite.

A few ops XNNPACK does not take become ones it does, exactly: a mean
without ``keepdim`` or over other axes (a ``keepdim`` mean or a ``(R, 1)``
average pool), ``zeros_like`` and friends (shared constant blocks that
neither read their input nor split the delegate), ``arange`` with static
bounds (a constant), and a sum, mean or cumsum over axes of size 1 (a
stream step's single frame: a reshape).

The rewritten graph carries a 5-D tensor ``(N, C, T, H, W)`` as its
"frames" ``(N*T, C, H, W)`` (frame ``t`` of clip ``n`` at row ``n*T + t``).
Element-wise ops, ``cat`` and ``slice`` follow the frames form when an input
has one, so consecutive layers hand frames to each other and the permutes
back to 5-D appear only where the graph leaves this set of ops. Example:
X3D's ``relu(bn(conv3d(x)))`` becomes ``relu(conv2d_0(f0) + conv2d_1(f1) +
conv2d_2(f2))`` on frames, with the BatchNorm folded into the taps.

The result equals the original within float rounding (about 1e-6 relative;
``tests/test_rewrite.py`` checks every zoo model).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.proxy import GraphAppendingTracer, Proxy

from edgevc.errors import EdgevcError

aten = torch.ops.aten
Shape = tuple[int, ...]
_META_KEYS = ("nn_module_stack", "stack_trace", "source_fn_stack")
# ops ExecuTorch cannot run on 5-D input; any left after the rewrite is an error
UNSUPPORTED_3D = {
    aten.conv3d.default: "Conv3d", aten.conv3d.padding: "Conv3d", aten.max_pool3d.default: "MaxPool3d",
    aten.avg_pool3d.default: "AvgPool3d", aten.adaptive_avg_pool3d.default: "AdaptiveAvgPool3d",
    aten.adaptive_max_pool3d.default: "AdaptiveMaxPool3d", aten.max_pool3d_with_indices.default: "MaxPool3d",
    aten.batch_norm.default: "BatchNorm3d", aten.convolution.default: "Conv3d",
}
_POINTWISE_EXTRA = {aten.hardswish.default, aten.hardswish_.default, aten.hardsigmoid.default,
                    aten.hardsigmoid_.default}


class RewriteError(EdgevcError):
    """A 3D op the rewrite does not cover (named with its module path and the workaround)."""


def rewrite_3d(model: nn.Module, example: tuple[torch.Tensor, ...]) -> fx.GraphModule:
    """``model`` exported with ``torch.export`` and its 3D ops rewritten into 2D ones (see module docstring).

    Returns a ``GraphModule`` that takes the same inputs and gives the same
    outputs; ``gm.meta["rewrite"]`` counts the rewritten ops by kind.
    Raises :class:`RewriteError` if a 3D op is left that ExecuTorch cannot run.
    """
    with torch.no_grad():
        gm = torch.export.export(model.eval(), tuple(example), strict=False).module()
    rewriter = _Rewriter(gm)
    rewriter.run()
    left = unsupported_nodes(gm)
    if left:
        where = "; ".join(f"aten.{n.target.__name__.split('.')[0]} at {module_path(n)}" for n in left[:5])
        raise RewriteError(f"ExecuTorch cannot run {len(left)} 3D op(s) the rewrite does not cover: {where}",
                           hint="use a plain Conv3d/BatchNorm3d/MaxPool3d/AvgPool3d (zeros padding, "
                                "eval mode) or x.mean((2, 3, 4)) there, or export with --target openvino/onnx")
    gm.meta["rewrite"] = dict(rewriter.counts)
    return gm


def unsupported_nodes(gm: fx.GraphModule) -> list[fx.Node]:
    """Nodes ExecuTorch cannot execute: 3D convolution and pooling, BatchNorm on 5-D input."""
    out = []
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target in UNSUPPORTED_3D:
            if node.target in (aten.batch_norm.default, aten.convolution.default) and _rank(node.args[0]) != 5:
                continue
            out.append(node)
    return out


def module_path(node: fx.Node) -> str:
    """``features.3.conv (Conv3dSame)``: the innermost module that called ``node``'s op."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "<model>"
    path, cls = list(stack.values())[-1]
    name = cls.__name__ if isinstance(cls, type) else str(cls).rsplit(".", 1)[-1].strip("'>")
    return f"{path or '<model>'} ({name})"


def _rank(arg: Any) -> int:
    val = arg.meta.get("val") if isinstance(arg, fx.Node) else None
    return val.dim() if isinstance(val, torch.Tensor) else -1


def _triple(v: Sequence[int] | int, default: Sequence[int] | None = None) -> tuple[int, int, int]:
    if isinstance(v, int):
        return (v, v, v)
    v = list(v) or list(default or ())
    return (v[0],) * 3 if len(v) == 1 else (v[0], v[1], v[2])


class _Tracer(GraphAppendingTracer):
    """Appends nodes to the graph; each new node inherits the module path of the node it replaces."""

    def __init__(self, graph: fx.Graph) -> None:
        super().__init__(graph)
        self.origin: fx.Node | None = None

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        if self.origin is not None:
            node.meta.update({k: self.origin.meta[k] for k in _META_KEYS if k in self.origin.meta})
        return node


class _Rewriter:
    """Walks the graph once in order, replacing each op that has a rule (see ``_RULES``)."""

    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm = gm
        self.graph = gm.graph
        self.tracer = _Tracer(self.graph)
        self.frames: dict[fx.Node, fx.Node] = {}  # 5-D node -> its frames form
        self.consts: dict[tuple[Any, ...], fx.Node] = {}  # (shape, value, dtype) -> a shared ``full``
        self.counts: Counter[str] = Counter()
        self._params = 0

    def run(self) -> None:
        for node in list(self.graph.nodes):
            if getattr(node, "_erased", False) or node.op != "call_function":
                continue
            rule = _rule_for(node)
            if rule is None:
                continue
            self.tracer.origin = node
            with self.graph.inserting_before(node):
                rule(self, node)
        self.tracer.origin = None
        self.graph.eliminate_dead_code()
        _drop_unused_attrs(self.gm)
        self.gm.recompile()

    # -- building blocks ---------------------------------------------------------------------------
    def p(self, node: fx.Node) -> Proxy:
        return Proxy(node, self.tracer)

    @staticmethod
    def shape(node: fx.Node) -> Shape:
        return tuple(int(d) for d in node.meta["val"].shape)

    def value(self, node: Any) -> torch.Tensor | None:
        """The constant tensor behind a ``get_attr`` node (None for anything computed)."""
        if not isinstance(node, fx.Node) or node.op != "get_attr":
            return None
        obj: Any = self.gm
        for part in node.target.split("."):
            obj = getattr(obj, part)
        return obj.detach() if isinstance(obj, torch.Tensor) else None

    def param(self, tensor: torch.Tensor) -> Proxy:
        """A new constant of the graph (a parameter if floating point, else a buffer)."""
        name = f"_rewrite_{self._params}"
        self._params += 1
        value = tensor.detach().clone().contiguous()
        if value.is_floating_point():
            self.gm.register_parameter(name, nn.Parameter(value, requires_grad=False))
        else:
            self.gm.register_buffer(name, value)
        return self.tracer.create_proxy("get_attr", name, (), {})

    def full(self, like: fx.Node) -> Callable[[Shape, float], Proxy]:
        """A maker of constant blocks of ``like``'s dtype: one ``full`` node per (shape, value), at the top.

        They run outside the XNNPACK delegate (a memset each), so sharing them
        across layers keeps the non-delegated node count low.
        """
        dtype = like.meta["val"].dtype

        def make(shape: Shape, value: float) -> Proxy:
            key = (tuple(shape), float(value), dtype)
            if key not in self.consts:
                first = next(n for n in self.graph.nodes if n.op not in ("placeholder", "get_attr"))
                with self.graph.inserting_before(first):
                    self.consts[key] = self.graph.call_function(torch.full, (list(shape), float(value)),
                                                                {"dtype": dtype})
            return self.p(self.consts[key])

        return make

    def to_frames(self, node: fx.Node) -> Proxy:
        """The frames form (N*T, C, H, W) of a 5-D node, built once and shared."""
        if node not in self.frames:  # created before the current node, so every later reader sees it
            n, c, t, h, w = self.shape(node)
            x = self.p(node)
            f = x.reshape(n, c, h, w) if t == 1 else x.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w)
            self.frames[node] = f.node
        return self.p(self.frames[node])

    def replace(self, node: fx.Node, new: Proxy, framed: bool, kind: str | None = None) -> None:
        """Replace ``node`` by ``new`` (its frames form when ``framed``) and erase it."""
        val = node.meta["val"]
        if framed:
            n, c, t, h, w = val.shape
            if t == 1:
                canon = new.reshape(n, c, 1, h, w)
            else:
                canon = new.reshape(n, t, c, h, w).permute(0, 2, 1, 3, 4).contiguous()
            self.frames[canon.node] = new.node
            out = canon.node
        else:
            out = new.node
        out.meta["val"] = val
        node.replace_all_uses_with(out)
        self.graph.erase_node(node)
        if kind:
            self.counts[kind] += 1


def _drop_unused_attrs(gm: fx.GraphModule) -> None:
    """Delete parameters and buffers no ``get_attr`` reads any more (the 5-D weights), so exports skip them."""
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    for name, _ in list(gm.named_parameters()) + list(gm.named_buffers()):
        if name in used:
            continue
        owner, _, leaf = name.rpartition(".")
        mod = gm.get_submodule(owner) if owner else gm
        mod._parameters.pop(leaf, None)
        mod._buffers.pop(leaf, None)


# ---- frames helpers (proxies plus static shapes (N, C, T, H, W)) ---------------------------------

def _pad_frames(f: Proxy, s: Shape, pads: Sequence[tuple[int, int]], value: float | None,
                full: Callable[[Shape, float], Proxy]) -> tuple[Proxy, Shape]:
    """Pad frames in (T, H, W) by ``pads`` with ``value`` (None: replicate the edge), using ``torch.cat``.

    ``full(shape, value)`` gives the constant blocks (shared between layers).
    """
    n, c, t, h, w = s
    (tb, te), (hb, he), (wb, we) = pads

    def edges(x: Proxy, dim: int, size: int, whole: tuple[int, ...], b: int, e: int) -> Proxy:
        if value is None:
            first, last = x.narrow(dim, 0, 1), x.narrow(dim, size - 1, 1)
            return torch.cat([first] * b + [x] + [last] * e, dim)
        parts = []
        if b:
            parts.append(full(whole[:dim] + (b,) + whole[dim + 1:], value))
        parts.append(x)
        if e:
            parts.append(full(whole[:dim] + (e,) + whole[dim + 1:], value))
        return torch.cat(parts, dim)

    if tb or te:
        if n == 1:
            f = edges(f, 0, t, (t, c, h, w), tb, te)
        else:
            f = edges(f.reshape(n, t, c, h, w), 1, t, (n, t, c, h, w), tb, te).reshape(n * (t + tb + te), c, h, w)
        t += tb + te
    if hb or he:
        f = edges(f, 2, h, (n * t, c, h, w), hb, he)
        h += hb + he
    if wb or we:
        f = edges(f, 3, w, (n * t, c, h, w), wb, we)
        w += wb + we
    return f, (n, c, t, h, w)


def _take_frames(f: Proxy, s: Shape, start: int, count: int, step: int) -> Proxy:
    """Frames ``start, start + step, ...`` (``count`` of them) of each clip: (N*count, C, H, W).

    A step > 1 reshapes ``step * count`` frames to (count, step*C, H, W) and
    keeps the first C channels: contiguous slices only (XNNPACK slices with
    stride 1). The caller padded enough frames at the end.
    """
    n, c, t, h, w = s
    if start == 0 and count == t and step == 1:
        return f
    if n == 1:
        sel = f[start:start + step * count]
    else:
        sel = f.reshape(n, t, c, h, w)[:, start:start + step * count].reshape(n * step * count, c, h, w)
    if step > 1:
        sel = sel.reshape(n * count, step * c, h, w)[:, :c]
    return sel


def _time_pool(f: Proxy, s: Shape, kind: str, k: int, stride: int, pad: int, dil: int, ceil: bool,
               count_pad: bool, t_out: int) -> Proxy:
    """A pool over time only: a (k, 1) 2D pool of the frames viewed as (N, 1, T, C*H*W)."""
    n, c, t, h, w = s
    if k == 1 and stride == 1 and pad == 0:
        return f
    v = f.reshape(n, 1, t, c * h * w)
    if kind == "max":
        v = F.max_pool2d(v, (k, 1), (stride, 1), (pad, 0), (dil, 1), ceil_mode=ceil)
    else:
        v = F.avg_pool2d(v, (k, 1), (stride, 1), (pad, 0), ceil_mode=ceil, count_include_pad=count_pad)
    return v.reshape(n * t_out, c, h, w)


# ---- rules: each replaces one node (or leaves it) -------------------------------------------------

def _conv_pads(padding: Any, kernel: Shape, dilation: Shape) -> list[tuple[int, int]]:
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * 3
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return [(tot // 2, tot - tot // 2) for tot in totals]
    return [(p, p) for p in _triple(padding)]


def _sole_batch_norm(rw: _Rewriter, node: fx.Node) -> fx.Node | None:
    """The eval-mode BatchNorm that is ``node``'s only consumer, with constant statistics, if any."""
    users = list(node.users)
    if len(users) != 1 or users[0].target is not aten.batch_norm.default or users[0].args[0] is not node:
        return None
    bn = users[0]
    if bn.args[5] or any(a is not None and rw.value(a) is None for a in bn.args[1:5]):
        return None
    return bn


def _conv_args(node: fx.Node) -> tuple[Any, ...]:
    """(input, weight, bias, stride, padding, dilation, groups) of a conv3d node, defaults filled in."""
    args = list(node.args) + [None, [1], [0], [1], 1][len(node.args) - 2:]
    return tuple(args[:7])


def _conv3d(rw: _Rewriter, node: fx.Node) -> None:
    x, w_node, b_node, stride, padding, dilation, groups = _conv_args(node)
    if _rank(x) != 5:
        return
    weight, bias = rw.value(w_node), rw.value(b_node)
    if weight is None or (b_node is not None and bias is None):
        return _conv3d_dynamic(rw, node)
    _, _, kt, kh, kw = weight.shape
    (st, sh, sw), (dt, dh, dw) = _triple(stride), _triple(dilation)
    pads = _conv_pads(padding, (kt, kh, kw), (dt, dh, dw))
    bn = _sole_batch_norm(rw, node)
    if bn is not None:
        weight, bias = _fold_bn(rw, bn, weight, bias)
    s = rw.shape(x)
    t_out = rw.shape(node)[2]
    need = (kt - 1) * dt + (st * t_out if st > 1 else t_out)
    tpad = (pads[0][0], max(pads[0][1], need - pads[0][0] - s[2]))
    symmetric = pads[1][0] == pads[1][1] and pads[2][0] == pads[2][1]
    space = [(0, 0), (0, 0)] if symmetric else pads[1:]
    f, s2 = _pad_frames(rw.to_frames(x), s, [tpad, *space], 0.0, rw.full(x))
    conv_pad = (pads[1][0], pads[2][0]) if symmetric else (0, 0)
    taps = [_take_frames(f, s2, k * dt, t_out, st) for k in range(kt)]
    b = rw.param(bias) if bias is not None else None
    if kt == 1:
        y = F.conv2d(taps[0], rw.param(weight[:, :, 0]), b, (sh, sw), conv_pad, (dh, dw), groups)
    elif dh == 1:  # one conv over the taps interleaved row by row (one int8 rounding, not kt + adds)
        n, c, _, h, w = s2
        rows = torch.cat([tap.reshape(n * t_out, c, h, 1, w) for tap in taps], 3).reshape(n * t_out, c, h * kt, w)
        w2d = weight.permute(0, 1, 3, 2, 4).reshape(weight.shape[0], weight.shape[1], kh * kt, kw)
        y = F.conv2d(rows, rw.param(w2d), b, (sh * kt, sw), (conv_pad[0] * kt, conv_pad[1]), (1, dw), groups)
    else:  # dilated in H: the plain sum over taps
        y = b
        for k, tap in enumerate(taps):
            yk = F.conv2d(tap, rw.param(weight[:, :, k]), b if k == 0 else None, (sh, sw), conv_pad, (dh, dw),
                          groups)
            y = yk if y is None or k == 0 else y + yk
    if bn is not None:
        rw.replace(bn, y, framed=True, kind="batch_norm folded")
        rw.graph.erase_node(node)
    else:
        rw.replace(node, y, framed=True)
    rw.counts[f"conv3d {kt}x{kh}x{kw}{' depthwise' if groups > 1 else ''}"] += 1


def _conv3d_dynamic(rw: _Rewriter, node: fx.Node) -> None:
    """A conv whose weight is computed in the graph: the same taps, slicing the weight at run time."""
    x, w_node, b_node, stride, padding, dilation, groups = _conv_args(node)
    _, _, kt, kh, kw = rw.shape(w_node)
    (st, sh, sw), (dt, dh, dw) = _triple(stride), _triple(dilation)
    pads = _conv_pads(padding, (kt, kh, kw), (dt, dh, dw))
    s, t_out = rw.shape(x), rw.shape(node)[2]
    need = (kt - 1) * dt + (st * t_out if st > 1 else t_out)
    f, s2 = _pad_frames(rw.to_frames(x), s, [(pads[0][0], max(pads[0][1], need - pads[0][0] - s[2])),
                                              *pads[1:]], 0.0, rw.full(x))
    w = rw.p(w_node)
    y = None
    for k in range(kt):
        yk = F.conv2d(_take_frames(f, s2, k * dt, t_out, st), w.select(2, k),
                      rw.p(b_node) if k == 0 and b_node is not None else None, (sh, sw), 0, (dh, dw), groups)
        y = yk if y is None else y + yk
    rw.replace(node, y, framed=True, kind="conv3d (computed weight)")


def _fold_bn(rw: _Rewriter, bn: fx.Node, weight: torch.Tensor,
             bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    gamma, beta, mean, var = (rw.value(a) for a in bn.args[1:5])
    eps = float(bn.args[7])
    scale = torch.rsqrt(var.double() + eps) * (gamma.double() if gamma is not None else 1.0)
    b0 = bias.double() if bias is not None else torch.zeros_like(mean, dtype=torch.float64)
    shift = (b0 - mean.double()) * scale + (beta.double() if beta is not None else 0.0)
    w = weight.double() * scale.view(-1, 1, 1, 1, 1)
    return w.to(weight.dtype), shift.to(weight.dtype)


def _batch_norm(rw: _Rewriter, node: fx.Node) -> None:
    x = node.args[0]
    if _rank(x) != 5 or node.args[5]:
        return
    args = [rw.p(a) if isinstance(a, fx.Node) else a for a in node.args[1:]]
    rw.replace(node, aten.batch_norm.default(rw.to_frames(x), *args), framed=True, kind="batch_norm")


def _pool_args(node: fx.Node) -> tuple[Shape, Shape, Shape]:
    kernel = _triple(node.args[1])
    stride = _triple(node.args[2] if len(node.args) > 2 else [], kernel)
    padding = _triple(node.args[3] if len(node.args) > 3 else 0)
    return kernel, stride, padding


def _max_pool3d(rw: _Rewriter, node: fx.Node) -> None:
    x = node.args[0]
    if _rank(x) != 5:
        return
    (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = _pool_args(node)
    dt, dh, dw = _triple(node.args[4] if len(node.args) > 4 else 1)
    ceil = bool(node.args[5]) if len(node.args) > 5 else False
    n, c, t, h, w = rw.shape(x)
    out = rw.shape(node)
    f = rw.to_frames(x)
    if (kh, kw, sh, sw, ph, pw) != (1, 1, 1, 1, 0, 0):
        f = F.max_pool2d(f, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode=ceil)
    f = _time_pool(f, (n, c, t, out[3], out[4]), "max", kt, st, pt, dt, ceil, True, out[2])
    rw.replace(node, f, framed=True, kind=f"max_pool3d {kt}x{kh}x{kw}")


def _avg_pool3d(rw: _Rewriter, node: fx.Node) -> None:
    x = node.args[0]
    args = list(node.args) + [None] * 7
    if _rank(x) != 5 or args[6] is not None:  # divisor_override is not separable
        return
    (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = _pool_args(node)
    ceil = bool(args[4]) if args[4] is not None else False
    count_pad = bool(args[5]) if args[5] is not None else True
    _avg_pool(rw, node, x, (kt, kh, kw), (st, sh, sw), (pt, ph, pw), ceil, count_pad)


def _avg_pool(rw: _Rewriter, node: fx.Node, x: fx.Node, k: Shape, s: Shape, p: Shape, ceil: bool,
              count_pad: bool) -> None:
    n, c, t, h, w = rw.shape(x)
    out = rw.shape(node)
    f = rw.to_frames(x)
    if (k[1], k[2], s[1], s[2], p[1], p[2]) != (1, 1, 1, 1, 0, 0):
        f = F.avg_pool2d(f, k[1:], s[1:], p[1:], ceil_mode=ceil, count_include_pad=count_pad)
    f = _time_pool(f, (n, c, t, out[3], out[4]), "avg", k[0], s[0], p[0], 1, ceil, count_pad, out[2])
    rw.replace(node, f, framed=True, kind=f"avg_pool3d {k[0]}x{k[1]}x{k[2]}")


def _adaptive_avg_pool3d(rw: _Rewriter, node: fx.Node) -> None:
    x = node.args[0]
    if _rank(x) != 5:
        return
    size, out = rw.shape(x)[2:], rw.shape(node)[2:]
    if any(i % o for i, o in zip(size, out, strict=True)):
        return  # uneven adaptive windows: left for the unsupported-op error
    k = tuple(i // o for i, o in zip(size, out, strict=True))
    if out == (1, 1, 1):
        return _global_mean(rw, node, x, keepdim=True)
    _avg_pool(rw, node, x, k, k, (0, 0, 0), False, True)


def _global_mean(rw: _Rewriter, node: fx.Node, x: fx.Node, keepdim: bool) -> None:
    """Mean over (T, H, W): a mean over (H, W) per frame (XNNPACK's global pool), then a pool over time."""
    n, c, t, h, w = rw.shape(x)
    f = rw.to_frames(x)
    if h * w > 1:
        f = f.mean((2, 3), keepdim=True)
    if t > 1:
        f = F.avg_pool2d(f.reshape(n, 1, t, c), (t, 1)).reshape(n, c, 1, 1)
    if keepdim:
        rw.replace(node, f, framed=True, kind="global mean")
    else:
        rw.replace(node, f.reshape(n, c), framed=False, kind="global mean")


def _mean(rw: _Rewriter, node: fx.Node) -> None:
    """Means XNNPACK takes: over (H, W) of 4-D with keepdim; others become that or a (R, 1) average pool."""
    x, rank = node.args[0], _rank(node.args[0])
    if rank < 1 or len(node.args) < 2 or not node.args[1] or node.kwargs.get("dtype") is not None:
        return
    dims = sorted({d % rank for d in node.args[1]})
    keepdim = bool(node.args[2]) if len(node.args) > 2 else False
    shape = rw.shape(x)
    if all(shape[d] == 1 for d in dims):
        return _size_one(rw, node)
    if rank == 5 and _mean_5d(rw, node, x, dims, keepdim):
        return
    if rank == 4 and dims == [2, 3]:
        if not keepdim:  # XNNPACK's global average pooling wants keepdim
            rw.replace(node, rw.p(x).mean((2, 3), keepdim=True).reshape(rw.shape(node)), framed=False,
                       kind="mean keepdim")
        return
    if dims != list(range(dims[0], dims[-1] + 1)):
        return
    a, r, b = math.prod(shape[:dims[0]]), math.prod(shape[dims[0]:dims[-1] + 1]), math.prod(shape[dims[-1] + 1:])
    y = F.avg_pool2d(rw.p(x).reshape(a, 1, r, b), (r, 1)).reshape(rw.shape(node))
    rw.replace(node, y, framed=False, kind="mean as pool")


def _mean_5d(rw: _Rewriter, node: fx.Node, x: fx.Node, dims: list[int], keepdim: bool) -> bool:
    n, c, t, h, w = rw.shape(x)
    if dims == [2, 3, 4]:
        _global_mean(rw, node, x, keepdim)
    elif dims == [3, 4] and keepdim:
        rw.replace(node, rw.to_frames(x).mean((2, 3), keepdim=True), framed=True, kind="spatial mean")
    elif dims == [2]:
        f = F.avg_pool2d(rw.to_frames(x).reshape(n, 1, t, c * h * w), (t, 1)).reshape(n, c, h, w)
        rw.replace(node, f, framed=keepdim, kind="temporal mean")
    else:
        return False
    return True


def _size_one(rw: _Rewriter, node: fx.Node) -> None:
    """A sum, mean or cumsum over dimensions of size 1 is a reshape (a stream step's T = 1)."""
    x, dims = node.args[0], node.args[1]
    dims = [dims] if isinstance(dims, int) else list(dims or [])
    shape = rw.shape(x)
    if not dims or not node.meta["val"].is_floating_point() or node.kwargs.get("dtype") is not None:
        return
    if any(shape[d % len(shape)] != 1 for d in dims):
        return
    rw.replace(node, rw.p(x).reshape(rw.shape(node)), framed=False, kind="size-1 reduction")


def _fill_like(rw: _Rewriter, node: fx.Node) -> None:
    """``zeros_like(x)`` and friends: a shared constant block, so it neither reads ``x`` nor splits the delegate."""
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor) or not val.is_floating_point():
        return
    target = node.target
    if target in (aten.zeros_like.default, aten.new_zeros.default):
        value = 0.0
    elif target is aten.ones_like.default:
        value = 1.0
    elif target is aten.full_like.default:
        value = node.args[1]
    else:  # new_full
        value = node.args[2]
    if not isinstance(value, (int, float)):
        return
    rw.replace(node, rw.full(node)(rw.shape(node), float(value)), framed=False, kind="constant block")


def _constant(rw: _Rewriter, node: fx.Node) -> None:
    """An op without tensor inputs (``arange`` of static bounds): computed now, kept as a constant."""
    if node.all_input_nodes:
        return
    rw.replace(node, rw.param(node.target(*node.args, **node.kwargs)), framed=False, kind="constant")


def _pad(rw: _Rewriter, node: fx.Node) -> None:
    x, pad = node.args[0], list(node.args[1])
    mode = node.args[2] if len(node.args) > 2 and node.target is aten.pad.default else "constant"
    value = node.args[-1] if len(node.args) > (3 if node.target is aten.pad.default else 2) else 0.0
    value = 0.0 if value is None else float(value)
    if _rank(x) != 5 or mode not in ("constant", "replicate") or len(pad) > 6 or any(p < 0 for p in pad):
        return
    pad = pad + [0] * (6 - len(pad))
    pads = [(pad[4], pad[5]), (pad[2], pad[3]), (pad[0], pad[1])]  # (T, H, W)
    fill: float | None = value
    if mode == "replicate" or (math.isinf(value) and value < 0 and _max_pools_only(rw, node, pads)):
        fill = None
    f, _ = _pad_frames(rw.to_frames(x), rw.shape(x), pads, fill, rw.full(x))
    rw.replace(node, f, framed=True, kind="pad" if fill is not None else "pad (edge)")


def _max_pools_only(rw: _Rewriter, node: fx.Node, pads: list[tuple[int, int]]) -> bool:
    """Every user is a max_pool3d for which edge padding equals -inf padding (dilation 1, pad < kernel)."""
    for user in node.users:
        if user.target is not aten.max_pool3d.default or user.args[0] is not node:
            return False
        kernel, _, padding = _pool_args(user)
        dil = _triple(user.args[4] if len(user.args) > 4 else 1)
        ceil = bool(user.args[5]) if len(user.args) > 5 else False
        if ceil or dil != (1, 1, 1) or padding != (0, 0, 0):
            return False
        if any(b > k - 1 or e > k - 1 for (b, e), k in zip(pads, kernel, strict=True)):
            return False
    return True


def _pointwise(rw: _Rewriter, node: fx.Node) -> None:
    """An element-wise op on 5-D tensors, when an input already has a frames form: run it on frames."""
    out = node.meta.get("val")
    if not isinstance(out, torch.Tensor) or out.dim() != 5:
        return
    tensors = [a for a in node.args if isinstance(a, fx.Node)]
    if not any(a in rw.frames for a in tensors):
        return
    target = node.target
    if target._schema.is_mutable:  # relu_ and friends: out of place, if nothing else reads the input
        if len(node.args[0].users) > 1:
            return
        target = getattr(getattr(aten, target.__name__.split(".")[0].rstrip("_")), target._overloadname)
    n, c, t, h, w = out.shape
    args = []
    for a in node.args:
        if not isinstance(a, fx.Node):
            args.append(a)
            continue
        sa = rw.shape(a)
        if len(sa) == 0:
            args.append(rw.p(a))
        elif sa == tuple(out.shape):
            args.append(rw.to_frames(a))
        elif len(sa) == 5 and sa[2] == 1 and (sa[0] == 1 or t == 1):  # broadcast over time, e.g. an SE gate
            args.append(rw.p(a).reshape(sa[0], sa[1], sa[3], sa[4]))
        else:
            return
    rw.replace(node, target(*args, **node.kwargs), framed=True)


def _dropout(rw: _Rewriter, node: fx.Node) -> None:
    if len(node.args) > 2 and not node.args[2]:  # eval mode: the identity
        node.replace_all_uses_with(node.args[0])
        rw.graph.erase_node(node)


def _cat(rw: _Rewriter, node: fx.Node) -> None:
    tensors, dim = node.args[0], (node.args[1] if len(node.args) > 1 else 0) % 5
    if _rank(node) != 5 or not any(a in rw.frames for a in tensors) or dim == 0:
        return
    n, c, t, h, w = rw.shape(node)
    parts = [rw.to_frames(a) for a in tensors]
    if dim == 2 and n > 1:
        parts = [p.reshape(n, rw.shape(a)[2], c, h, w) for p, a in zip(parts, tensors, strict=True)]
        y = torch.cat(parts, 1).reshape(n * t, c, h, w)
    else:
        y = torch.cat(parts, {1: 1, 2: 0, 3: 2, 4: 3}[dim])
    rw.replace(node, y, framed=True)


def _slice(rw: _Rewriter, node: fx.Node) -> None:
    x = node.args[0]
    args = list(node.args) + [0, None, None, 1][len(node.args) - 1:]
    dim, start, end, step = args[1] % 5, args[2], args[3], args[4]
    if _rank(x) != 5 or x not in rw.frames or step != 1 or dim == 0:
        return
    n, c, t, h, w = rw.shape(x)
    size = rw.shape(x)[dim]
    start, end, _ = slice(start, end).indices(size)
    length = max(end - start, 0)
    f = rw.to_frames(x)
    if dim == 2:
        y = f[start:end] if n == 1 else f.reshape(n, t, c, h, w)[:, start:end].reshape(n * length, c, h, w)
    else:
        y = f.narrow({1: 1, 3: 2, 4: 3}[dim], start, length)
    rw.replace(node, y, framed=True)


_RULES: dict[Any, Callable[[_Rewriter, fx.Node], None]] = {
    aten.conv3d.default: _conv3d, aten.conv3d.padding: _conv3d, aten.batch_norm.default: _batch_norm,
    aten.max_pool3d.default: _max_pool3d, aten.avg_pool3d.default: _avg_pool3d,
    aten.adaptive_avg_pool3d.default: _adaptive_avg_pool3d, aten.mean.dim: _mean,
    aten.pad.default: _pad, aten.constant_pad_nd.default: _pad, aten.dropout.default: _dropout,
    aten.cat.default: _cat, aten.slice.Tensor: _slice, aten.cumsum.default: _size_one,
    aten.sum.dim_IntList: _size_one, aten.arange.start: _constant, aten.arange.start_step: _constant,
    aten.arange.default: _constant, aten.zeros_like.default: _fill_like, aten.ones_like.default: _fill_like,
    aten.full_like.default: _fill_like, aten.new_zeros.default: _fill_like, aten.new_full.default: _fill_like,
}


def _rule_for(node: fx.Node) -> Callable[[_Rewriter, fx.Node], None] | None:
    rule = _RULES.get(node.target)
    if rule is not None:
        return rule
    target = node.target
    if isinstance(target, torch._ops.OpOverload) and (torch.Tag.pointwise in target.tags
                                                      or target in _POINTWISE_EXTRA):
        return _pointwise
    return None
