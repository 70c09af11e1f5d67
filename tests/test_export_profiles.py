"""Device profiles: every YAML in targets/ is valid and points at a real target; strict keys; resolution."""

from __future__ import annotations

import json

import pytest

from edgevc.errors import EdgevcError, SpecError, UnknownNameError
from edgevc.export import available_targets, get_target
from edgevc.export.profiles import Profile, Tolerances, list_profiles, load_profile, profiles_dir, resolve

DEVICE_PROFILES = ("rpi5-xnnpack-int8", "android-xnnpack-int8", "jetson-orin-onnx-fp16", "iphone-coreml-fp16",
                   "intel-cpu-openvino-int8")


def test_the_issue_s_device_profiles_and_a_default_per_target_precision_exist():
    names = list_profiles()
    assert set(DEVICE_PROFILES) <= set(names)
    for target in ("onnx", "openvino"):
        for precision in get_target(target).precisions:
            assert f"{target}-{precision}" in names


@pytest.mark.parametrize("name", list_profiles())
def test_every_profile_loads_and_names_a_target_that_writes_its_precision(name):
    _, prof = load_profile(name)
    assert prof.backend in available_targets(), f"{name}: backend {prof.backend} is not a target module"
    assert prof.precision in get_target(prof.backend).precisions
    if prof.precision == "int8":
        assert prof.calib_clips >= 32
        assert prof.tolerances.top1_agreement_decisive is not None
        assert prof.tolerances.top1_agreement_decisive >= 0.95
    if prof.precision == "fp32":
        assert prof.tolerances.max_abs is not None and prof.tolerances.max_abs <= 1e-4  # the issue's limit


@pytest.mark.parametrize("name", list_profiles())
def test_known_gaps_name_registered_models(name):
    from edgevc.models import list_models

    _, prof = load_profile(name)
    for gap in prof.known_gaps:
        assert gap.model in list_models(), f"{name}: known gap for unknown model {gap.model}"
        assert gap.reason.strip()


def test_openvino_profiles_verify_with_the_f32_hint_and_report_the_default_as_its_own_row():
    for name in ("openvino-fp32", "openvino-int8", "intel-cpu-openvino-int8"):
        _, prof = load_profile(name)
        assert prof.runtime_options == {"INFERENCE_PRECISION_HINT": "f32"}
        assert [v.name for v in prof.variants] == ["default-precision"]
        assert prof.variants[0].runtime_options == {}


def test_unknown_key_names_the_field_and_suggests_the_close_one(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("backend: onnx\nprecision: fp32\ntolerances: {max_ab: 1.0e-4}\n")
    with pytest.raises(SpecError) as err:
        load_profile(bad)
    assert "bad.yaml: tolerances.max_ab" in str(err.value)
    assert "did you mean 'max_abs'" in str(err.value)


def test_an_unknown_export_option_is_refused_with_the_close_one(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("backend: openvino\nprecision: int8\ntolerances: {}\n"
                   "export_options: {fast_bias_correction: false, accuracy_control_rel_l3: 0.03}\n")
    with pytest.raises(SpecError) as err:
        load_profile(bad)
    assert "export_options.accuracy_control_rel_l3" in str(err.value)
    assert "did you mean 'accuracy_control_rel_l2'" in str(err.value)


def test_wrong_precision_and_out_of_range_limits_are_rejected(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("backend: onnx\nprecision: int4\ntolerances: {}\n")
    with pytest.raises(SpecError, match="precision"):
        load_profile(p)
    with pytest.raises(SpecError, match="top1_agreement"):
        Tolerances(top1_agreement=1.5)
    with pytest.raises(SpecError, match="rel_l2_floor_multiple"):
        Tolerances(rel_l2=1e-4, rel_l2_floor_multiple=0.5)


def test_a_target_name_takes_its_target_precision_profile():
    res = resolve("openvino", "int8")
    assert (res.target, res.precision, res.profile_name) == ("openvino", "int8", "openvino-int8")
    assert resolve("onnx").precision == "fp32"  # the target's first precision


def test_a_device_profile_fixes_backend_and_precision():
    res = resolve("intel-cpu-openvino-int8")
    assert (res.target, res.precision, res.profile_name) == ("openvino", "int8", "intel-cpu-openvino-int8")
    with pytest.raises(EdgevcError, match="fixes precision int8"):
        resolve("intel-cpu-openvino-int8", "fp32")


def test_unknown_target_gets_did_you_mean_and_the_list():
    with pytest.raises(UnknownNameError) as err:
        resolve("openvin")
    assert "did you mean 'openvino'" in str(err.value)
    assert "onnx" in err.value.hint and "rpi5-xnnpack-int8" in err.value.hint


def test_a_precision_the_target_cannot_write_is_refused():
    with pytest.raises(EdgevcError, match="does not export precision 'fp16'"):
        resolve("executorch", "fp16")


def test_limits_pick_untrained_and_random_tolerances():
    _, prof = load_profile("openvino-int8")
    assert prof.limits(trained=True, inputs="real") == prof.tolerances
    assert prof.limits(trained=False, inputs="real") == prof.untrained_tolerances
    assert prof.limits(trained=True, inputs="random").rel_l2 is None
    plain = Profile("onnx", "fp32", Tolerances(max_abs=1e-4))
    assert plain.limits(False, "random") == plain.limits(True, "real") == Tolerances(max_abs=1e-4)


def test_profiles_dir_follows_the_environment(tmp_path, monkeypatch):
    (tmp_path / "mine.yaml").write_text("backend: onnx\nprecision: fp32\ntolerances: {rel_l2: 0.001}\n")
    monkeypatch.setenv("EDGEVC_TARGETS", str(tmp_path))
    assert profiles_dir() == tmp_path
    assert list_profiles() == ["mine"]
    assert resolve("mine").profile.tolerances.rel_l2 == 0.001


def test_targets_command_lists_every_target_and_profile_from_the_registries(capsys):
    from edgevc.cli.main import main

    assert main(["targets", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in data["targets"]] == available_targets()
    onnx = next(t for t in data["targets"] if t["name"] == "onnx")
    assert onnx["precisions"] == ["fp32", "fp16", "int8"] and onnx["missing"] == []
    assert [p["name"] for p in data["profiles"]] == list_profiles()
    rpi = next(p for p in data["profiles"] if p["name"] == "rpi5-xnnpack-int8")
    assert (rpi["backend"], rpi["precision"], rpi["threads"]) == ("executorch", "int8", 4)
    assert main(["targets"]) == 0
    table = capsys.readouterr().out
    assert "intel-cpu-openvino-int8" in table and "ready" in table
