"""YAML recipes: strict dataclasses, dotted-path errors with a did-you-mean, model defaults, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgevc.errors import EdgevcError
from edgevc.models import model_info
from edgevc.train.recipe import apply_overrides, load_recipe, recipe_from_dict

# training recipes; compress_*.yaml / tiny_compress.yaml are edgevc compress recipes (tests/test_compress.py)
RECIPES = sorted(p for p in (Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml")
                 if "compress" not in p.name)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_loads(path):
    recipe = load_recipe(path)
    assert recipe.model.name and recipe.train.epochs >= 1 and recipe.out


def test_the_benchmark_recipes_use_8_frames_at_112_and_flip_only_with_label_swaps():
    for name in ("bench_x3d_xs", "bench_tsm_mobilenet_v2"):
        r = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / f"{name}.yaml")
        assert r.clip.num_frames == 8 and r.preproc.crop == (112, 112) and r.data.kind == "bench"
        assert r.augment.hflip > 0 and {frozenset(p) for p in r.augment.hflip_swap} == {
            frozenset({"pan_left", "pan_right"}), frozenset({"rotate_cw", "rotate_ccw"})}


@pytest.mark.parametrize(("raw", "message"), [
    ({"model": {"name": "x3d_xs"}, "optimizer": {}}, "invalid field 'optimizer': unknown key; did you mean 'optim'?"),
    ({"model": {"name": "x3d_xs"}, "optim": {"lrr": 1}}, "invalid field 'optim.lrr': unknown key; did you mean 'lr'?"),
    ({"model": {"name": "x3d_xs"}, "data": {"bench": {"sise": 64}}},
     "invalid field 'data.bench.sise': unknown key; did you mean 'size'?"),
    ({"model": {"name": "x3d_xs"}, "augment": {"hflp": 0.5}},
     "invalid field 'augment.hflp': unknown key; did you mean 'hflip'?"),
    ({"model": {"name": "x3d_xs"}, "train": {"epochs": "ten"}}, "invalid field 'train.epochs': expected an integer"),
    ({"model": {"name": "x3d_xs"}, "train": {"bn": "fozen"}}, "invalid field 'train.bn'"),
    ({"model": {"name": "x3d_xs"}, "clip": {"num_frame": 8}}, "invalid field 'clip.num_frame': unknown key; did you"),
    ({"model": {"name": "x3d_xs", "pretraind": True}}, "invalid field 'model.pretraind'"),
    ({"model": {"name": "x3d_xs"}, "data": {"kind": "folder"}}, "invalid field 'data.train'"),
    ({"optim": {}}, "invalid field 'model': required key is missing"),
])
def test_a_bad_key_or_value_names_its_dotted_path(raw, message):
    with pytest.raises(EdgevcError) as err:
        recipe_from_dict(raw, source="r.yaml")
    assert str(err.value).startswith("r.yaml: ") and message in str(err.value)


def test_an_unknown_model_gets_a_suggestion():
    with pytest.raises(EdgevcError, match="unknown model 'x3d_sx'; did you mean"):
        recipe_from_dict({"model": {"name": "x3d_sx"}})


def test_clip_preproc_and_agg_start_from_the_model_and_recipe_keys_override():
    r = recipe_from_dict({"model": {"name": "tsm_mobilenet_v2"}, "preproc": {"crop": [112, 112], "resize_short": 128},
                          "clip": {"mode": "strided", "stride": 2}})
    info = model_info("tsm_mobilenet_v2")
    assert r.preproc.crop == (112, 112) and r.preproc.resize_short == 128
    assert r.preproc.mean == info.preproc.mean and r.preproc.std == info.preproc.std
    assert r.clip.num_frames == info.clip.num_frames and r.clip.mode == "strided" and r.clip.stride == 2
    assert r.agg == info.agg
    plain = recipe_from_dict({"model": {"name": "x3d_xs"}})
    assert plain.clip == model_info("x3d_xs").clip and plain.model.pretrained is False


def test_set_overrides_apply_by_dotted_path_and_parse_values_as_yaml(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model: {name: x3d_xs}\ntrain: {epochs: 3}\n")
    r = load_recipe(path, ["train.epochs=1", "optim.lr=0.01", "model.pretrained=false", "augment.scale=[0.5, 1.0]"])
    assert (r.train.epochs, r.optim.lr, r.augment.scale) == (1, 0.01, (0.5, 1.0))
    with pytest.raises(EdgevcError, match="'train.epoch': unknown key; did you mean 'epochs'"):
        load_recipe(path, ["train.epoch=1"])
    with pytest.raises(EdgevcError, match="expected KEY=VALUE"):
        apply_overrides({}, ["train.epochs"])


def test_a_missing_or_broken_recipe_file_is_a_clear_error(tmp_path):
    with pytest.raises(EdgevcError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(EdgevcError, match="not valid YAML"):
        load_recipe(tmp_path / "bad.yaml")


def test_a_recipe_round_trips_through_its_dict():
    r = load_recipe(RECIPES[0])
    again = recipe_from_dict(r.to_dict())
    assert again == r
