"""The committed training records (benchmarks/results/train_*.json) agree with themselves and with the recipes.

They are written by benchmarks/train_results.py from a run's train.json; these checks catch a record edited by
hand or a recipe changed after its figures were measured: the accuracy is recomputed from the confusion matrix,
the time from the epochs, and the recipe named in the command must still train the same model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORDS = sorted((ROOT / "benchmarks" / "results").glob("train_*.json"))


def test_there_is_a_training_record():
    assert RECORDS, "benchmarks/results/train_*.json: no training run recorded"


@pytest.mark.parametrize("path", RECORDS, ids=[p.stem for p in RECORDS])
def test_training_record_is_consistent(path):
    from edgevc.train.recipe import load_recipe

    r = json.loads(path.read_text())
    confusion = r["confusion"]
    assert len(confusion) == len(r["labels"]) and all(len(row) == len(r["labels"]) for row in confusion)
    assert sum(map(sum, confusion)) == r["videos"]
    assert sum(confusion[i][i] for i in range(len(confusion))) / r["videos"] == pytest.approx(r["video_top1"])
    assert sum(e["seconds"] for e in r["epochs"]) <= r["train_seconds"] + 1.0
    # the whole run's wall time (set-up and evaluations included), or for older records train + final evaluation
    assert r["total_seconds"] >= r["train_seconds"] + r["eval_seconds"] - 0.01
    met = r["video_top1"] >= r["acceptance"]["video_top1_min"] and r["total_seconds"] <= r["acceptance"]["seconds_max"]
    assert r["acceptance"]["met"] == met
    assert r["machine"]["cores"] >= 1 and r["machine"]["cpu"]
    recipe = load_recipe(ROOT / r["recipe"])
    assert recipe.model.name == r["model"]
    if r["world_size"] > 1:
        assert f"--nproc-per-node {r['world_size']}" in r["command"]
    else:
        assert r["command"] == f"edgevc train {r['recipe']}"
    # the committed recipe still says what the run used (an edited recipe needs a new run and record)
    current = json.loads(json.dumps(recipe.to_dict()))
    for section, used in r.get("recipe_sections", {}).items():
        for key, value in used.items():
            assert current[section][key] == value, \
                f"{r['recipe']}: {section}.{key} is {current[section][key]!r}, the run used {value!r}"
    assert len(r["weights_sha256"]) == 64


COMPRESS = sorted((ROOT / "benchmarks" / "results").glob("compress_*.json"))


@pytest.mark.parametrize("path", COMPRESS, ids=[p.stem for p in COMPRESS])
def test_compression_record_is_consistent(path):
    """Each drop is fp32 - int8 of the variants' own accuracies, and the README quotes the record's figures."""
    r = json.loads(path.read_text())
    acc = {(v["target"], v["variant"]): v["accuracy"]["video_top1"] for v in r["variants"] if v.get("accuracy")}
    for row in r["table"]:
        t = row["target"]
        assert row["fp32_top1"] == acc[(t, "fp32")] and row["ptq_top1"] == acc[(t, "ptq")]
        assert row["qat_top1"] == acc[(t, "qat")]
        for v in ("ptq", "qat"):
            assert row[f"{v}_drop_pt"] == round((row["fp32_top1"] - row[f"{v}_top1"]) * 100, 2)
        assert row["qat_within_limit"] == (row["qat_drop_pt"] <= r["qat_drop_limit_pt"])
    for name, q in r["qat"].items():
        assert q["stats"]["steps"] >= 1 and q["stats"]["seconds"] > 0, name
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    assert f"results/{path.stem}" in readme or f"results/{path.stem.split('_executorch')[0]}*" in readme


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks" / "results").glob("reverify_*_qat.json")),
                         ids=lambda p: p.stem)
def test_qat_reverification_record_is_consistent(path):
    """The QAT artifact checked against both references: each verdict follows from its own figures."""
    r = json.loads(path.read_text())
    reports = r["reports"]
    assert set(reports) == {"trained_fp32", "qat_weights_fp32"}
    for rep in reports.values():
        enforced = [c for row in rep["rows"] for c in row["checks"] if c["enforced"]]
        assert enforced and rep["passed"] == all(c["passed"] for c in enforced)
        for c in enforced:
            assert c["passed"] == (c["value"] <= c["limit"] if c["bound"] == "max" else c["value"] >= c["limit"])
    real = {k: next(row for row in rep["rows"] if row["inputs"] == "real")["figures"] for k, rep in reports.items()}
    assert real["qat_weights_fp32"]["rel_l2"] < real["trained_fp32"]["rel_l2"]
    assert real["trained_fp32"]["samples"] == real["qat_weights_fp32"]["samples"] >= 16
