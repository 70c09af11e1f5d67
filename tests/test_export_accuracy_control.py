"""NNCF accuracy control (the OpenVINO int8 profile's ``accuracy_control_rel_l2``) on a small OpenVINO model.

CI checks the mechanism here, in seconds: I3D's takes about two minutes, and a trained x3d_xs over ten
(NNCF ranks every quantizer group by compiling the model once per group); those run in the slow tests.
The limit is set from the plain-PTQ error measured in the same test, so some ops must return to float.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("nncf")
ov = pytest.importorskip("openvino")

from edgevc.errors import EdgevcError  # noqa: E402
from edgevc.export.support import nncf_quantize  # noqa: E402


class _Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv3d(3, 16, 3, padding=1)
        self.b = torch.nn.Conv3d(16, 16, 3, padding=1)
        self.c = torch.nn.Conv3d(16, 16, 1)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        y = torch.relu(self.c(torch.relu(self.b(torch.relu(self.a(x))))))
        return self.head(y.mean((2, 3, 4)))


def _setup():
    torch.manual_seed(0)
    net = _Small().eval()
    with torch.no_grad():  # heavy-tailed weights: int8 rounding hurts some layers more than others
        for m in (net.a, net.b, net.c):
            m.weight.mul_(torch.randn_like(m.weight).abs() ** 2 + 0.5)
    rng = np.random.default_rng(0)
    clips = [(rng.standard_normal((1, 3, 4, 12, 12)) * rng.uniform(0.5, 3)).astype(np.float32) for _ in range(8)]
    model = ov.convert_model(torch.export.export(net, (torch.from_numpy(clips[0]),), strict=False))
    return model, clips


def _rel_l2(a: ov.Model, b: ov.Model, clips) -> float:
    core = ov.Core()
    ca, cb = (core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}) for m in (a, b))
    errs = [np.linalg.norm(cb(x)[0] - ca(x)[0]) / np.linalg.norm(ca(x)[0]) for x in clips]
    return float(np.mean(errs))


def test_accuracy_control_returns_the_most_sensitive_ops_to_float_until_the_limit_holds():
    model, clips = _setup()
    ptq = _rel_l2(model, nncf_quantize(model.clone(), lambda: iter(clips), ["x"], {}), clips)
    limit = round(ptq / 2, 5)
    info: dict = {}
    out = nncf_quantize(model.clone(), lambda: iter(clips), ["x"], {"accuracy_control_rel_l2": limit}, info)
    ac = info["accuracy_control"]
    print(f"plain PTQ {ptq:.4f}; {ac}")
    assert ac["limit"] == limit and ac["clips"] == 8 and ac["ptq_rel_l2"] == pytest.approx(ptq, rel=0.05)
    assert 0 < ac["reverted_to_float"] == len(ac["reverted"]) < ac["quantized_ops"]
    assert ac["rel_l2"] <= limit + 1e-6 and ac["rel_l2"] == pytest.approx(_rel_l2(model, out, clips), rel=1e-3)
    assert f"returned to float -> {ac['rel_l2']}" in ac["answer"]
    kinds = [op.get_type_name() for op in out.get_ops()]
    assert "FakeQuantize" in kinds  # the rest stays int8


def test_accuracy_control_within_the_limit_changes_nothing_and_says_so():
    model, clips = _setup()
    info: dict = {}
    nncf_quantize(model.clone(), lambda: iter(clips), ["x"], {"accuracy_control_rel_l2": 0.9}, info)
    ac = info["accuracy_control"]
    assert ac["reverted"] == [] and "within the limit 0.9: nothing returned to float" in ac["answer"]


def test_accuracy_control_refuses_onnx_and_multi_input_models_with_a_hint():
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    clips = [np.ones((1, 3), np.float32)]
    with pytest.raises(EdgevcError, match="not available for ONNX") as err:
        nncf_quantize(onnx_model, lambda: iter(clips), ["x"], {"accuracy_control_rel_l2": 0.03})
    assert "export to OpenVINO" in err.value.hint
    model, clips = _setup()
    with pytest.raises(EdgevcError, match="one input"):
        nncf_quantize(model, lambda: iter([(c, c) for c in clips]), ["x", "s"], {"accuracy_control_rel_l2": 0.03})
