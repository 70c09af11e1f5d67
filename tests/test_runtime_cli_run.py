"""``edgevc run``: JSON lines per decision then a summary, readable lines otherwise, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from runtime_toys import toy_model

import edgevc.runtime
from edgevc.cli.main import main
from edgevc.spec import ClipSpec

CLIP = ClipSpec(4, stride=3, fps=25.0, hop=10)


@pytest.fixture
def toy_load(monkeypatch):
    """``edgevc.runtime.load`` answering with a numpy toy model (no backend file needed)."""
    seen = {}

    def load(folder, threads=None, options=None, check_files=True):
        seen.update(folder=folder, threads=threads, **({"options": options} if options else {}))
        return toy_model(CLIP)

    monkeypatch.setattr(edgevc.runtime, "load", load)
    return seen


def test_json_prints_one_line_per_decision_then_the_summary(toy_load, arm_wrestling, capsys):
    assert main(["run", "ART", "--source", str(arm_wrestling), "--json", "--threads", "2", "--topk", "2",
                 "--max-frames", "120"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    decisions, summary = lines[:-1], lines[-1]["summary"]
    assert len(decisions) == 10 and toy_load == {"folder": "ART", "threads": 2}
    first = decisions[0]
    assert set(first) == {"frames", "t", "topk", "latency_ms"} and first["frames"] == [0, 11]
    assert first["t"] == [0.0, round(11 / 28, 4)] and len(first["topk"]) == 2
    assert decisions[1]["frames"][0] == 12  # slot 10 (t = 0.4 s at 25 fps) is source frame 12 (0.43 s)
    assert summary["frames_read"] == summary["frames_processed"] == 120 and summary["frames_dropped"] == 0
    assert summary["decisions"] == 10 and summary["latency"]["p50_ms"] > 0 and summary["threads"] == 2
    assert summary["model"] == "toy" and summary["mode"] == "file" and summary["gflops_per_s"] > 0


def test_human_output_has_a_line_per_decision_and_a_summary_table(toy_load, arm_wrestling, capsys):
    assert main(["run", "ART", "--source", str(arm_wrestling), "--hop", "25", "--max-frames", "84"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("toy (onnx, fp32): 4 frames, strided, stride 3, 25.0 fps, hop 25")
    lines = [x for x in out if x.startswith("frames ")]
    assert len(lines) == 3 and " ms" in lines[0] and "class_" in lines[0]
    table = "\n".join(out)
    assert "latency p50 / p90 / p99" in table and "84 read, 84 processed, 0 dropped" in table


def test_live_mode_runs_a_file_at_its_pace_and_accounts_for_frames(toy_load, arm_wrestling, capsys):
    assert main(["run", "ART", "--source", str(arm_wrestling), "--json", "--live", "--no-pace",
                 "--max-frames", "60"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])["summary"]
    assert summary["mode"] == "live" and summary["frames_read"] == 60
    assert summary["frames_processed"] + summary["frames_dropped"] == 60


def edgevc_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgevc", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_missing_and_invalid_artifacts_are_one_clear_message_and_a_non_zero_exit(tmp_path, arm_wrestling):
    out = edgevc_cli("run", tmp_path / "nothing", "--source", arm_wrestling)
    assert out.returncode == 1 and "artifact folder not found" in out.stderr and "edgevc export" in out.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "edgevc.json").write_text('{"model": "x"}')
    out = edgevc_cli("run", bad, "--source", arm_wrestling)
    assert out.returncode == 1 and "not a valid edgevc artifact" in out.stderr and "Traceback" not in out.stderr


def test_a_camera_that_cannot_open_fails_clearly(toy_load, capsys):
    assert main(["run", "ART", "--source", "57"]) == 1
    err = capsys.readouterr().err
    assert "camera 57 could not be opened" in err and "hint" in err


def test_run_needs_a_source_and_suggests_options():
    out = edgevc_cli("run", "ART")
    assert out.returncode == 2 and "--source" in out.stderr
    out = edgevc_cli("run", "ART", "--source", "x.mp4", "--hops", "3")
    assert out.returncode == 2 and "did you mean '--hop'" in out.stderr


def test_ctrl_c_still_prints_the_summary_of_the_frames_so_far(toy_load, monkeypatch, capsys):
    import numpy as np

    import edgevc.runtime.sources as sources
    from edgevc.video import Frame

    class Camera:
        live, reconnects = True, 0

        def __iter__(self):
            for i in range(30):
                yield Frame(i, i / 25, np.zeros((32, 32, 3), np.uint8))
            raise KeyboardInterrupt

        def close(self):
            pass

    monkeypatch.setattr(sources, "open_frames", lambda *a, **k: Camera())
    assert main(["run", "ART", "--source", "0", "--json"]) == 130
    out, err = capsys.readouterr()
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["frames_read"] == 30 and summary["decisions"] == 3 and "interrupted" in err


def test_backend_options_are_parsed_as_json_when_they_parse(toy_load, arm_wrestling, capsys):
    args = ["run", "ART", "--source", str(arm_wrestling), "--max-frames", "12", "--json",
            "--option", "INFERENCE_PRECISION_HINT=f32", "--option", "INFERENCE_NUM_STREAMS=1",
            "--option", 'providers=["CPUExecutionProvider"]']
    assert main(args) == 0
    assert toy_load["options"] == {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_STREAMS": 1,
                                   "providers": ["CPUExecutionProvider"]}
    assert main(["run", "ART", "--source", str(arm_wrestling), "--option", "f32"]) == 1
    assert "is not KEY=VALUE" in capsys.readouterr().err
