"""Soak: the full 10-minute Big Buck Bunny through ``edgevc run`` with an int8 edge model, as a device runs it.

``edgevc run ARTIFACT --source bbb.mp4 --json --live`` runs in a subprocess
(x3d_xs, OpenVINO int8 by default): the file is played at its own pace (24
fps, 596 s), like a camera that does not wait, with the producer/consumer
loop that drops frames when the model is slower ("keep the newest").
Meanwhile this script

- reads the decisions as they are printed (the video time each one
  reached, its latency);
- samples the resident memory (``VmRSS`` in ``/proc/<pid>/status``) of that
  process every ``--interval`` seconds.

Why a subprocess: it measures what a user runs, and its memory is the
runtime's alone (not this script's, not pytest's and its torch imports); a
leak anywhere on the path (decoder, preprocessing, backend, printing) shows
up, and a hang or a crash ends the soak with a failure instead of a stuck
benchmark.

It reports: frames decoded / processed / dropped (processed + dropped must
equal decoded), decisions, the RSS over the first and the last minute of
video (median and max; growth = the difference of the medians) and per
minute, the latency p50 / p99 of the first and second
half of the decisions, and the machine. Results go to
``benchmarks/results/soak.{json,md}``. ``--mode file`` classifies every
frame as fast as it decodes instead (no drops, no pacing). Usage::

    python benchmarks/soak.py                  # about 11 minutes: the film's length
    python benchmarks/soak.py --mode file      # as fast as it goes (about 1.5 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BBB_FRAMES = 14_315  # the full film, 24 fps (DATA.md)
LIMITS = {"rss_growth_mb": 10.0, "p99_ratio": 1.5, "p99_slack_ms": 5.0}


def ensure_artifact(model: str, precision: str, root: Path, threads: int) -> Path:
    """``root/<model>-openvino-<precision>`` (shared with stream_throughput.py), exported first if missing."""
    out = root / f"{model}-openvino-{precision}"
    if not (out / "edgevc.json").is_file():
        from edgevc.export.driver import export_model  # the torch side, only when an export is needed

        print(f"exporting {model} -> openvino {precision} into {out}", flush=True)
        export_model(model, "openvino", precision, out=out, threads=threads)
    return out


def rss_kb(pid: int) -> int | None:
    """Resident memory of a process in kB (``VmRSS``), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    v = np.asarray(values)
    return {"count": len(v), "p50_ms": round(float(np.percentile(v, 50)), 3),
            "p99_ms": round(float(np.percentile(v, 99)), 3), "max_ms": round(float(v.max()), 3)}


def soak(artifact: Path, video: Path, mode: str = "live", threads: int = 2, interval: float = 0.5,
         timeout: float | None = None, max_frames: int | None = None) -> dict:
    """Run ``edgevc run`` on ``video`` and watch it; returns the figures (see the module docstring)."""
    from edgevc.video import probe

    expected = probe(video).frames  # the frames the file holds (packets counted)
    expected = min(expected, max_frames) if max_frames else expected
    cmd = [sys.executable, "-m", "edgevc", "run", str(artifact), "--source", str(video), "--json",
           "--threads", str(threads)] + (["--live"] if mode == "live" else [])
    cmd += ["--max-frames", str(max_frames)] if max_frames else []
    timeout = timeout or (2 * 600 + 300 if mode == "live" else 900)
    load_before = round(os.getloadavg()[0], 2)
    samples: list[tuple[float, int]] = []      # (wall s, RSS kB)
    decisions: list[tuple[float, float, float]] = []  # (wall s, video t s, latency ms)
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                kb = rss_kb(proc.pid)
                if kb is not None:
                    samples.append((time.monotonic() - t0, kb))
                done.wait(interval)

        killed: list[bool] = []
        watchdog = threading.Timer(timeout, lambda: (killed.append(True), proc.kill()))
        sampler = threading.Thread(target=sample, daemon=True)
        watchdog.start()
        sampler.start()
        summary = None
        try:
            for line in proc.stdout:  # type: ignore[union-attr]
                item = json.loads(line)
                if "summary" in item:
                    summary = item["summary"]
                else:
                    decisions.append((time.monotonic() - t0, item["t"][1], item["latency_ms"]))
            rc = proc.wait()
        finally:
            done.set()
            watchdog.cancel()
            sampler.join()
        wall = time.monotonic() - t0
        err.seek(0)
        stderr = err.read()
    figures = _figures(cmd, rc, bool(killed), wall, stderr, summary, samples, decisions, mode, expected)
    return {"source": str(video), "loadavg_1m_before": load_before, **figures}


def _by_video_time(samples: list[tuple[float, int]], decisions: list[tuple[float, float, float]]
                   ) -> list[tuple[float, int]]:
    """RSS samples as (video time the stream had reached, kB), between its first and its last decision."""
    if not decisions:
        return []
    walls = np.asarray([d[0] for d in decisions])
    out = []
    for w, kb in samples:
        k = int(np.searchsorted(walls, w, side="right")) - 1
        if 0 <= k and w <= walls[-1]:
            out.append((decisions[k][1], kb))
    return out


def _window(rss: list[tuple[float, int]], lo: float, hi: float) -> dict:
    kb = [v for t, v in rss if lo <= t < hi]
    if not kb:
        return {"samples": 0, "median": None, "max": None}
    return {"samples": len(kb), "median": round(float(np.median(kb)) / 1024, 2), "max": round(max(kb) / 1024, 2)}


def _figures(cmd, rc, hung, wall, stderr, summary, samples, decisions, mode, expected) -> dict:
    from edgevc.report.machine import machine_info

    rss = _by_video_time(samples, decisions)
    end = decisions[-1][1] if decisions else 0.0
    first, last = _window(rss, 0.0, 60.0), _window(rss, max(0.0, end - 60.0), end + 1.0)
    per_minute = {m: _window(rss, 60.0 * m, 60.0 * (m + 1))["median"] for m in range(int(end // 60) + 1)}
    growth = None if first["median"] is None or last["median"] is None else round(last["median"] - first["median"], 2)
    lat = [d[2] for d in decisions]
    half = len(lat) // 2
    a, b = _percentiles(lat[:half]), _percentiles(lat[half:])
    s = summary or {}
    read, processed, dropped = s.get("frames_read"), s.get("frames_processed"), s.get("frames_dropped")
    checks = {
        "exit_ok": rc == 0 and summary is not None,
        "all_frames_decoded": read == expected,
        "frames_accounted": read is not None and processed + dropped == read,
        "rss_growth_ok": growth is not None and growth <= LIMITS["rss_growth_mb"],
        "p99_stable": a["p99_ms"] is not None and b["p99_ms"] is not None
        and b["p99_ms"] <= LIMITS["p99_ratio"] * a["p99_ms"] + LIMITS["p99_slack_ms"],
    }
    return {
        "command": " ".join(["edgevc", *cmd[3:]]), "mode": mode, "frames_expected": expected, "exit_code": rc,
        "hung": hung, "wall_s": round(wall, 1),
        "stderr_tail": stderr[-2000:], "frames_decoded": read, "frames_processed": processed,
        "frames_dropped": dropped, "decisions": len(decisions), "clips_skipped": s.get("clips_skipped"),
        "video_s": round(end, 2),
        "rss_mb": {"first_minute": first, "last_minute": last, "growth_first_to_last_minute": growth,
                   "peak": round(max(kb for _, kb in samples) / 1024, 2) if samples else None,
                   "median_per_minute": per_minute},
        "latency_first_half": a, "latency_second_half": b,
        "summary": summary, "limits": LIMITS, "checks": checks, "passed": all(checks.values()),
        "rss_samples": len(samples), "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def markdown(r: dict) -> str:
    m, rss, a, b = r["machine"], r["rss_mb"], r["latency_first_half"], r["latency_second_half"]
    per_min = ", ".join(f"{k}: {v}" for k, v in rss["median_per_minute"].items())
    f, la = rss["first_minute"], rss["last_minute"]
    lines = [
        f"# Soak: {Path(r['source']).name} through `edgevc run`", "",
        f"`{r['command']}` ({r['mode']} mode), {r['date']}; {m['cpu']}, {m['cores']} cores, load average "
        f"{r['loadavg_1m_before']} before the run and {m['loadavg_1m']} after; Python {m['python']}, "
        f"OpenVINO {m['versions'].get('openvino', '-')}, PyAV {m['versions'].get('av', '-')}.", "",
        "| figure | value | limit |", "|---|---|---|",
        f"| frames decoded / processed / dropped | {r['frames_decoded']} / {r['frames_processed']} / "
        f"{r['frames_dropped']} | processed + dropped = decoded = {r['frames_expected']} |",
        f"| decisions (clips skipped) | {r['decisions']} ({r['clips_skipped']}) | |",
        f"| video covered / wall time | {r['video_s']} s / {r['wall_s']} s | |",
        f"| RSS first minute: median / max | {f['median']} / {f['max']} MB ({f['samples']} samples) | |",
        f"| RSS last minute: median / max | {la['median']} / {la['max']} MB ({la['samples']} samples) | |",
        f"| RSS growth, first to last minute (medians) | {rss['growth_first_to_last_minute']} MB | "
        f"<= {LIMITS['rss_growth_mb']} MB |",
        f"| RSS peak | {rss['peak']} MB | |",
        f"| latency p50 / p99, first half | {a['p50_ms']} / {a['p99_ms']} ms ({a['count']} decisions) | |",
        f"| latency p50 / p99, second half | {b['p50_ms']} / {b['p99_ms']} ms ({b['count']} decisions) | "
        f"p99 <= {LIMITS['p99_ratio']} x first half + {LIMITS['p99_slack_ms']} ms |",
        f"| checks passed | {', '.join(k for k, v in r['checks'].items() if v)} | "
        f"all: **{'pass' if r['passed'] else 'FAIL'}** |",
        "", f"RSS (MB), median over each minute of video: {per_min}.", "",
        "The minutes are the video's: an RSS sample belongs to the minute the decisions had reached when it "
        "was taken (startup before the first decision and shutdown after the last are left out).", "",
        "Latency runs from a frame's arrival (live: its capture by the decoding thread) to the decision.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="x3d_xs")
    p.add_argument("--precision", default="int8")
    p.add_argument("--mode", choices=("live", "file"), default="live")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--interval", type=float, default=0.5, help="seconds between RSS samples")
    p.add_argument("--artifacts", type=Path, default=Path(os.environ.get("EDGEVC_CACHE", Path.home() / ".cache"
                                                                          / "edgevc")) / "bench-artifacts")
    p.add_argument("--out", type=Path, default=HERE / "results" / "soak")
    args = p.parse_args(argv)

    from edgevc.assets import fetch

    artifact = ensure_artifact(args.model, args.precision, args.artifacts, args.threads)
    result = soak(artifact, fetch("bbb_full"), mode=args.mode, threads=args.threads, interval=args.interval)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
