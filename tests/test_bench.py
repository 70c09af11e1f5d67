"""``edgevc bench``: interleaving, percentiles, the table and JSON, the Pareto front, cached exports,
accuracy on a labelled split, and one real run through the CLI (x3d_xs, OpenVINO and ONNX, 4x112²)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgevc.bench.cells import Cell, _cached_failure, cell_dir, configs, failures_of, peak_kind
from edgevc.bench.measure import Latency, Subject, interleave, paired_speedup, schedule
from edgevc.bench.table import (
    COLUMNS,
    FAIL,
    OK,
    ROW_KEYS,
    BenchReport,
    BenchRow,
    markdown_table,
    pareto_front,
    speedup_note,
)
from edgevc.spec import AggSpec, ClipSpec

REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    """A clock that each timed call advances by the subject's cost (no real sleeping)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _subject(name: str, cost_s: float, clock: FakeClock, calls: list[str], fail_at: int | None = None) -> Subject:
    def call(clip: np.ndarray) -> np.ndarray:
        calls.append(name)
        if fail_at is not None and calls.count(name) == fail_at:
            raise RuntimeError(f"{name} broke\nsecond line")
        clock.t += cost_s
        return np.zeros((1, 3))

    return Subject(name, call)


# ---- interleaving and statistics ---------------------------------------------------------------

def test_schedule_is_round_robin_over_the_subjects():
    assert schedule(3, 2) == [0, 1, 2, 0, 1, 2]
    assert schedule(1, 3) == [0, 0, 0]


def test_interleave_warms_up_then_times_a_b_c_a_b_c_and_keeps_every_raw_sample():
    clock, calls = FakeClock(), []
    subs = [_subject("A", 0.010, clock, calls), _subject("B", 0.020, clock, calls), _subject("C", 0.005, clock, calls)]
    out = interleave(subs, [np.zeros(1)], repeats=4, warmup=1, clock=clock, sleep=lambda s: None)
    assert calls == ["A", "B", "C"] * 5                      # 1 warm-up round + 4 timed rounds
    assert out.order == ["A", "B", "C"] * 4 and out.rounds == 4
    assert subs[0].samples_ms == pytest.approx([10.0] * 4)
    assert subs[1].samples_ms == pytest.approx([20.0] * 4)
    assert subs[2].samples_ms == pytest.approx([5.0] * 4)


def test_interleave_cycles_through_the_clips_round_by_round():
    seen = []
    sub = Subject("A", lambda clip: seen.append(int(clip[0])))
    interleave([sub], [np.array([0]), np.array([1]), np.array([2])], repeats=5, warmup=0, sleep=lambda s: None)
    assert seen == [0, 1, 2, 0, 1]


def test_a_failing_subject_is_dropped_with_its_first_line_and_the_others_go_on():
    clock, calls = FakeClock(), []
    subs = [_subject("A", 0.01, clock, calls), _subject("B", 0.01, clock, calls, fail_at=3)]
    interleave(subs, [np.zeros(1)], repeats=5, warmup=1, clock=clock, sleep=lambda s: None)
    assert subs[1].error == "RuntimeError: B broke"
    assert len(subs[0].samples_ms) == 5 and len(subs[1].samples_ms) == 1   # B failed in timed round 2


def test_the_time_budget_stops_after_a_whole_round_once_the_minimum_is_done():
    clock, calls = FakeClock(), []
    subs = [_subject("A", 1.0, clock, calls), _subject("B", 1.0, clock, calls)]
    out = interleave(subs, [np.zeros(1)], repeats=50, warmup=0, budget_s=7.0, min_rounds=3, clock=clock,
                     sleep=lambda s: None)
    assert out.rounds == 4 and "budget" in out.stopped       # 2 s per round: over 7 s after round 4
    assert len(subs[0].samples_ms) == len(subs[1].samples_ms) == 4


def test_latency_percentiles_use_linear_interpolation():
    lat = Latency.of([float(i) for i in range(1, 101)])
    assert (lat.count, lat.p50_ms, lat.p90_ms, lat.p99_ms, lat.min_ms) == (100, 50.5, 90.1, 99.01, 1.0)
    assert Latency.of([]) is None


def test_paired_speedup_is_the_median_of_per_round_ratios():
    assert paired_speedup([10, 20, 30], [5, 5, 10]) == pytest.approx(3.0)   # ratios 2, 4, 3
    assert paired_speedup([], [1.0]) is None


# ---- table, JSON, Pareto front, notes -----------------------------------------------------------

def test_pareto_front_minimises_both_or_maximises_y():
    assert pareto_front([1, 2, 3], [0.5, 0.9, 0.8], maximize_y=True) == [0, 1]
    assert pareto_front([1, 2, 3, 1.5], [30, 10, 5, 40]) == [0, 1, 2]       # (1.5, 40) is beaten by (1, 30)
    assert pareto_front([2, 2], [1, 1]) == [0, 1]                           # ties dominate neither


def _rows() -> list[BenchRow]:
    ref = BenchRow("pytorch", "fp32", OK, "reference", variant="eager", runs_as="f32", p50_ms=100.0, p90_ms=110.0,
                   p99_ms=120.0, gflops=50.0, speedup_vs_torch=1.0, top1_agreement=1.0, max_abs_diff=0.0)
    ov = BenchRow("openvino", "int8", OK, runs_as="int8+f32", peak_kind="int8", p50_ms=25.0, p90_ms=26.0,
                  p99_ms=30.0, gflops=200.0, speedup_vs_torch=4.0, top1_agreement=0.97, parity_clips=32,
                  rel_l2=0.05, rel_l2_limit=0.25, max_abs_diff=0.3, size_mb=3.5, gmacs=2.5, peak_share=0.2)
    bad = BenchRow("coreml", "int8", FAIL, "prediction needs macOS; Linux: structural checks 5/5 passed")
    return [ref, ov, bad]


def test_markdown_table_has_a_cell_per_column_and_the_failure_reason():
    text = markdown_table(_rows())
    lines = text.splitlines()
    assert len(lines) == 2 + 3
    assert all(line.count("|") == len(COLUMNS) + 1 for line in lines)
    assert "❌ prediction needs macOS; Linux: structural checks 5/5 passed" in lines[4]
    assert "| 4.00x |" in lines[3] and "97.0% of 32" in lines[3] and "5.00e-02 (≤0.25)" in lines[3]
    assert "20 of int8" in lines[3]


def test_json_rows_lead_with_the_issue_keys_and_keep_the_raw_samples(tmp_path):
    rows = _rows()
    rows[1].samples_ms = [25.0, 24.0, 26.5]
    report = BenchReport("x3d_s", {"num_frames": 13, "size": 160, "hop": 39}, 2, {"cpu": "test"}, None, rows)
    data = json.loads(report.save_json(tmp_path / "b.json").read_text())
    assert [list(r)[:len(ROW_KEYS)] for r in data["rows"]] == [list(ROW_KEYS)] * 3
    assert data["rows"][1]["samples_ms"] == [25.0, 24.0, 26.5]
    assert data["rows"][2]["status"] == FAIL and data["rows"][2]["ok"] is False


def test_speedup_note_says_reached_or_gives_the_best_ratio_and_why():
    rows = _rows()
    peak = {"fp32": 100.0, "bf16": 800.0, "int8": 400.0}
    note = speedup_note(rows, peak)
    assert "openvino int8, 4.00x" in note and "under the 5x target" in note
    assert "50% of the fp32 GEMM peak" in note and "4.0x the fp32 one" in note and "near 8.0x" in note
    rows[1].speedup_vs_torch = 6.5
    assert speedup_note(rows, peak).endswith("(target ≥ 5x: reached)")
    rows[1].status = FAIL
    assert speedup_note(rows, peak).startswith("no int8 artifact passed")


# ---- cells: verify.json configurations, cached failures -----------------------------------------

def _check(figure: str, value: float, limit: float | None, passed: bool | None, bound: str = "max") -> dict:
    return {"figure": figure, "value": value, "limit": limit, "bound": bound, "enforced": limit is not None,
            "passed": passed, "note": ""}


def _verify(passed_variant: bool) -> dict:
    def row(name: str, inputs: str, precision: str, ok: bool) -> dict:
        rel = 0.05 if ok else 0.4
        return {"name": name, "inputs": inputs, "runtime_options": {} if name != "artifact" else
                {"INFERENCE_PRECISION_HINT": "f32"}, "runtime_info": {"inference_precision": precision},
                "figures": {"samples": 8, "max_abs": 0.2, "rel_l2": rel, "top1_agreement": 1.0,
                            "top1_agreement_decisive": 1.0},
                "checks": [_check("rel_l2", rel, 0.25, ok)], "passed": ok}
    rows = [row("artifact", "real", "f32", True), row("artifact", "random", "f32", True),
            row("default-precision", "real", "bf16", passed_variant),
            row("default-precision", "random", "bf16", True)]
    return {"passed": passed_variant, "numeric": "run", "rows": rows, "structural": []}


def test_configs_list_the_profile_row_then_its_variants_with_their_own_verdicts():
    cell = Cell("openvino", "int8", verify=_verify(passed_variant=False))
    cell.verify["failures"] = failures_of(cell.verify)
    got = configs(cell)
    assert [c.name for c in got] == ["artifact", "default-precision"]
    assert got[0].options == {"INFERENCE_PRECISION_HINT": "f32"} and got[0].runs_as == "int8+f32"
    assert got[0].passed and got[0].rel_l2_limit == 0.25 and got[0].real["rel_l2"] == 0.05
    assert got[1].runs_as == "int8+bf16" and not got[1].passed
    assert got[1].failures == ("default-precision/real: rel_l2 0.4 > 0.25",)
    assert [c.name for c in configs(cell, variants=False)] == ["artifact"]
    assert (peak_kind("int8+bf16"), peak_kind("bf16"), peak_kind("f32"), peak_kind("f16")) == \
        ("int8", "bf16", "fp32", "fp32")


def test_a_cached_artifact_whose_verification_failed_is_reported_not_exported_again(tmp_path):
    from runtime_toys import toy_meta

    meta = toy_meta(ClipSpec(num_frames=4, stride=2)).replace(target="openvino", precision="int8")
    out = cell_dir(tmp_path, "toy", "openvino", "int8", 4, 8)
    out.mkdir(parents=True)
    meta.save(out)
    (out / "model.bin").write_bytes(b"x" * 1000)
    (out / "verify.json").write_text(json.dumps(_verify(passed_variant=False)))
    cell = Cell("openvino", "int8")
    assert _cached_failure(cell, out, "toy", 4, 8, None)
    assert cell.reused and cell.size_bytes == 1000 and not cell.verified
    assert cell.failures() == ["default-precision/real: rel_l2 0.4 > 0.25"]
    assert not _cached_failure(Cell("openvino", "int8"), out, "toy", 8, 8, None)     # another input: not ours
    (out / "verify.json").write_text(json.dumps(_verify(passed_variant=True)))
    assert not _cached_failure(Cell("openvino", "int8"), out, "toy", 4, 8, None)     # passed: export reuses it


def test_a_precision_the_target_does_not_write_is_a_failed_cell_without_an_export(tmp_path):
    from edgevc.bench.cells import prepare_cell

    cell = prepare_cell("x3d_xs", "executorch", "fp16", 4, 112, tmp_path)
    assert cell.error == "executorch writes fp32, int8, not fp16" and cell.folder is None
    assert not any(tmp_path.iterdir())


# ---- accuracy on a labelled split ---------------------------------------------------------------

def test_video_accuracy_aggregates_clips_and_matches_classes_by_name(tmp_path):
    from edgevc.bench.accuracy import evaluate_rows
    from edgevc.data.synth import write_mp4
    from edgevc.spec import PreprocSpec

    for label, level in (("dark", 30), ("bright", 220)):
        (tmp_path / label).mkdir()
        for i in range(2):
            write_mp4(tmp_path / label / f"{i}.mp4", np.full((12, 32, 32, 3), level + 5 * i, np.uint8), fps=25.0)
    clip = ClipSpec(num_frames=4, stride=2, fps=25.0)
    preproc = PreprocSpec(crop=(16, 16), resize_short=16, mean=(0.5,) * 3, std=(0.25,) * 3)
    labels = ("other", "bright", "dark")                     # the model's output order differs from the folders'

    def by_brightness(x: np.ndarray) -> np.ndarray:           # right: bright -> 1, dark -> 2
        return np.array([[0.0, float(x.mean()), -float(x.mean())]])

    def always_other(x: np.ndarray) -> np.ndarray:
        return np.array([[1.0, 0.0, 0.0]])

    acc, about = evaluate_rows({"good": by_brightness, "bad": always_other}, tmp_path, clip, preproc,
                               AggSpec(), labels, num_clips=2)
    assert acc["good"].video_top1 == 1.0 and acc["good"].clips == 8 and acc["bad"].video_top1 == 0.0
    assert about["videos"] == 4 and about["classes"] == 2
    acc, _ = evaluate_rows({"good": by_brightness}, tmp_path, clip, preproc, AggSpec(), ("a", "b"), num_clips=1)
    assert acc["good"].startswith("the split's classes (bright, dark) are not among the model's 2 labels")


# ---- the command ---------------------------------------------------------------------------------

def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgevc", "bench", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def test_unknown_targets_and_precisions_are_one_clear_error_before_any_export(tmp_path):
    from edgevc.bench.runner import resolve_precisions, resolve_targets
    from edgevc.errors import EdgevcError, UnknownNameError

    with pytest.raises(UnknownNameError, match="did you mean 'openvino'"):
        resolve_targets(["openvin"])
    with pytest.raises(EdgevcError, match="unknown precision 'int4'"):
        resolve_precisions(["int4"])
    assert resolve_targets(["all"]) == ["coreml", "executorch", "onnx", "openvino"]


def test_bench_x3d_xs_on_openvino_and_onnx_prints_the_table_and_writes_json_and_png(tmp_path):
    """The real thing, small: exports (cached in tmp), verification, peak, interleaved timing, outputs."""
    t0 = time.perf_counter()
    js, png = tmp_path / "bench.json", tmp_path / "bench.png"
    res = _cli("x3d_xs", "--targets", "openvino,onnx", "--precisions", "fp32", "--frames", "4", "--size", "112",
               "--threads", "2", "--repeats", "5", "--warmup", "1", "--verify-clips", "4", "--random-clips", "2",
               "--timing-clips", "2", "--cache", str(tmp_path / "cache"), "--json", str(js), "--plot", str(png))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Machine: " in res.stdout and "GEMM peak" in res.stdout
    table = [line for line in res.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 4          # header + pytorch, openvino (f32 hint), openvino (default precision), onnx
    data = json.loads(js.read_text())
    rows = data["rows"]
    assert [(r["target"], r["precision"], r["variant"]) for r in rows] == [
        ("pytorch", "fp32", "eager"), ("openvino", "fp32", "artifact"), ("openvino", "fp32", "default-precision"),
        ("onnx", "fp32", "artifact")]
    for r in rows:
        assert set(ROW_KEYS) <= set(r)
        assert r["status"] == OK, r["reason"]
        assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
        assert r["speedup_vs_torch"] > 0 and r["gflops"] > 0 and len(r["samples_ms"]) == 5
        assert r["gmacs"] == pytest.approx(rows[0]["gmacs"]) and r["hop"] == 18
        assert r["speedup_vs_torch"] == pytest.approx(rows[0]["p50_ms"] / r["p50_ms"], rel=1e-2)
    assert rows[1]["max_abs_diff"] < 1e-4 and rows[1]["top1_agreement"] == 1.0 and rows[3]["max_abs_diff"] < 1e-4
    assert rows[1]["size_mb"] > 1 and data["peak"]["fp32"] > 0 and data["machine"]["cores"] >= 1
    assert data["timing"]["order"][:4] == ["pytorch eager fp32", "openvino fp32 artifact",
                                           "openvino fp32 default-precision", "onnx fp32 artifact"]
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 600
    print(f"bench CLI run: {time.perf_counter() - t0:.1f} s")
