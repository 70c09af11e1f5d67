"""The ``edgevc`` command: help, version, did-you-mean, JSON output, one clear error and a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys

from edgevc import __version__


def edgevc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgevc", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_help_and_version():
    out = edgevc("--help")
    assert out.returncode == 0 and "probe" in out.stdout and "sample" in out.stdout
    assert edgevc("--version").stdout.strip() == f"edgevc {__version__}"


def test_unknown_subcommand_and_option_get_did_you_mean(arm_wrestling):
    out = edgevc("prob", arm_wrestling)
    assert out.returncode == 2 and "did you mean 'probe'" in out.stderr and "Traceback" not in out.stderr
    out = edgevc("probe", arm_wrestling, "--jsn")
    assert out.returncode == 2 and "did you mean '--json'" in out.stderr


def test_probe_json_reports_the_acceptance_figures(arm_wrestling):
    out = edgevc("probe", arm_wrestling, "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert (info["width"], info["height"], info["fps"], info["frames"]) == (340, 256, 28.0, 280)


def test_corrupted_file_is_one_clear_message_and_non_zero_exit(edge_cases, tmp_path):
    out = edgevc("sample", edge_cases / "corrupted.mp4", "--frames", "4")
    assert out.returncode == 1
    assert "corrupted.mp4" in out.stderr and "last good frame" in out.stderr and "Traceback" not in out.stderr
    missing = edgevc("probe", tmp_path / "missing.mp4")
    assert missing.returncode == 1 and "not found" in missing.stderr and "Traceback" not in missing.stderr


def test_sample_streams_a_real_clip_as_the_spec_says(arm_wrestling):
    out = edgevc("sample", arm_wrestling, "--frames", "8", "--stride", "4", "--hop", "20", "--size", "64", "--json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    clips, summary = lines[:-1], lines[-1]["summary"]
    assert summary["frames"] == 280 and summary["clips"] == len(clips) == 13  # starts 0, 20, ..., 240 (span 29)
    assert clips[1]["indices"] == [20, 24, 28, 32, 36, 40, 44, 48]
    assert clips[0]["shape"] == [1, 3, 8, 64, 64]


def test_zoo_and_flops_commands_report_numbers_as_json():
    flops = json.loads(edgevc("flops", "r2plus1d_18", "--json").stdout)
    assert abs(flops["gmacs_per_clip"] - 40.52) / 40.52 < 0.02 and flops["input"] == [1, 3, 16, 112, 112]
    assert set(flops) >= {"model", "input", "params", "gmacs_per_clip", "gflops_per_clip", "gmacs_per_frame"}
    assert flops["gflops_per_clip"] == 2 * flops["gmacs_per_clip"] or \
        abs(flops["gflops_per_clip"] - 2 * flops["gmacs_per_clip"]) < 1e-3
    zoo = json.loads(edgevc("models", "--json").stdout)
    names = {r["model"] for r in zoo}
    assert {"i3d_k400", "x3d_xs", "movinet_a0_stream", "tsm_mobilenet_v2", "s3d"} <= names
    bad = edgevc("flops", "x3d_sx")
    assert bad.returncode == 2 and "did you mean 'x3d_s" in bad.stderr
