"""The training/device contract: JSON round trips and strict, field-naming validation."""

from __future__ import annotations

import json

import pytest

from edgevc.spec import SCHEMA_VERSION, AggSpec, ArtifactMeta, ClipSpec, PreprocSpec, SpecError, TensorSpec


def make_meta(**over) -> ArtifactMeta:
    kw = dict(
        model="x3d_xs", labels=("a", "b", "c"), clip=ClipSpec(4, stride=12, fps=30.0, hop=2),
        preproc=PreprocSpec(crop=(160, 160), resize_short=182, mean=(0.45,) * 3, std=(0.225,) * 3),
        agg=AggSpec(method="ema", alpha=0.3), input_name="video", input_shape=(1, 3, 4, 160, 160),
        output_name="logits", params=3_794_274, macs_per_clip=605_256_512, precision="int8",
        target="openvino", model_file="model.xml", files={"model.xml": "a" * 64, "model.bin": "b" * 64},
        weights_sha256="c" * 64,
    )
    kw.update(over)
    return ArtifactMeta(**kw)


def test_meta_round_trips_through_json_and_disk(tmp_path):
    meta = make_meta(state=(TensorSpec("state_0", (1, 8, 2, 4, 4)),), profile="intel-cpu-openvino-int8")
    assert ArtifactMeta.from_json(meta.to_json()) == meta
    meta.save(tmp_path)
    assert ArtifactMeta.load(tmp_path) == meta
    data = json.loads((tmp_path / "edgevc.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["clip"]["stride"] == 12


@pytest.mark.parametrize(
    "path, value, field, words",
    [
        (("clip", "strde"), 3, "clip.strde", "did you mean 'stride'"),
        (("clip", "stride"), 0, "clip.stride", "1..256"),
        (("clip", "stride"), "2", "clip.stride", "expected an integer"),
        (("clip", "stride"), True, "clip.stride", "expected an integer"),
        (("clip", "mode"), "dense", "clip.mode", "'strided' | 'uniform' | 'segment'"),
        (("clip", "fps"), -5, "clip.fps", "0 < fps"),
        (("preproc", "crop"), [224], "preproc.crop", "[height, width]"),
        (("preproc", "std"), [1, 0, 1], "preproc.std", "positive"),
        (("preproc", "value_range"), [1, -1], "preproc.value_range", "low < high"),
        (("preproc", "resize_short"), 100, "preproc.resize_short", "smaller than the crop"),
        (("agg", "method"), "median", "agg.method", "'mean' | 'max' | 'ema' | 'window'"),
        (("agg", "alpha"), 1.5, "agg.alpha", "0 < alpha <= 1"),
        (("schema_version",), 99, "schema_version", "re-export"),
        (("labels",), "abc", "labels", "expected a list"),
        (("weights_sha256",), "xyz", "weights_sha256", "64 lowercase hex"),
        (("files",), {"../etc/passwd": "a" * 64}, "files.../etc/passwd", "relative path"),
        (("precision",), "int4", "precision", "'fp32'"),
        (("input_shape",), [1, 3, 224, 224], "input_shape", "5 dims"),
        (("bogus",), 1, "bogus", "unknown key"),
    ],
)
def test_invalid_field_is_named_with_what_is_allowed(path, value, field, words):
    data = json.loads(make_meta().to_json())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(SpecError) as err:
        ArtifactMeta.from_dict(data)
    assert err.value.field == field
    assert words in str(err.value)


def test_missing_required_key_is_named():
    data = json.loads(make_meta().to_json())
    del data["clip"]["num_frames"]
    with pytest.raises(SpecError, match="clip.num_frames.*required"):
        ArtifactMeta.from_dict(data)


def test_not_json_is_a_spec_error():
    with pytest.raises(SpecError, match="not valid JSON"):
        ArtifactMeta.from_json("{'model': 1}")


def test_constructor_validates_like_the_parser():
    with pytest.raises(SpecError, match="num_frames"):
        ClipSpec(0)
    with pytest.raises(SpecError, match="mode"):
        ClipSpec(8, mode="dense")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec, span, hop",
    [(ClipSpec(16, stride=2), 31, 15), (ClipSpec(8, mode="uniform", stride=4), 32, 16),
     (ClipSpec(8, mode="segment", stride=8, hop=5), 64, 5), (ClipSpec(1), 1, 1)],
)
def test_clip_span_and_default_hop(spec, span, hop):
    assert spec.span == span
    assert spec.stream_hop == hop
