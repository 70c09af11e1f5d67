"""Streaming throughput: decode + preprocess + inference on real 720p video, and where the time goes.

For each model (default: x3d_xs and tsm_mobilenet_v2, OpenVINO int8) the
script runs ``edgevc.runtime`` the way ``edgevc run`` does -- PyAV decode,
resample to the model's fps, preprocess each used frame once, infer every
``hop`` frames with hop = half the clip span -- over Big Buck Bunny 720p
(``edgevc.assets.fetch("bbb_720p")``, 132 frames; ``--clip bbb_full`` for
the 10-minute film), with every frame processed (no drops), and reports:

- frames per second of source video sustained end to end (the target is
  >= 30 fps on this 2-core machine);
- the split of wall time: decode (PyAV, incl. RGB conversion), preprocess
  (antialiased resize + crop + normalise), assemble, inference, aggregation;
- inference ms per call and GFLOP/s achieved (2 FLOPs per MAC);
- the machine: CPU model, cores available, load average before the run,
  versions.

Artifacts are exported first if ``--artifacts DIR/<model>-<target>-<precision>``
does not hold one (this needs the torch side: ``pip install 'edgevc[export]'``).
Results go to ``benchmarks/results/stream_throughput.{json,md}``.

Run it on a quiet machine (nothing else running): on two vCPUs any other
job halves the figures. Usage::

    python benchmarks/stream_throughput.py                       # 720p clip, both models, 3 repeats
    python benchmarks/stream_throughput.py --clip bbb_full --max-frames 3000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    versions = {}
    for mod in ("numpy", "av", "openvino", "onnxruntime"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 -- a missing runtime is simply not listed
            pass
    return {"cpu": cpu, "cores_available": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
            "loadavg_before": list(os.getloadavg()), "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def ensure_artifact(model: str, target: str, precision: str, root: Path, threads: int) -> Path:
    """The artifact folder, exported (and verified) first if it is not there (needs edgevc[export])."""
    out = root / f"{model}-{target}-{precision}"
    if (out / "edgevc.json").is_file():
        return out
    from edgevc.export.driver import export_model  # the torch side, only when an export is needed

    print(f"exporting {model} -> {target} {precision} into {out}", flush=True)
    result = export_model(model, target, precision, out=out, threads=threads)
    if not result.ok:  # the speed is still measured; the results record the verification
        print(f"WARNING: {model} failed verification ({out / 'verify.json'}); timing it anyway", flush=True)
    return out


def verification(artifact: Path) -> bool | None:
    path = artifact / "verify.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data.get("passed") if isinstance(data, dict) else None


def run_once(artifact: Path, video: Path, threads: int, max_frames: int | None) -> dict:
    from edgevc import runtime
    from edgevc.runtime.live import run_all
    from edgevc.runtime.sources import open_frames
    from edgevc.runtime.stats import summarize
    from edgevc.runtime.stream import StreamingClassifier

    model = runtime.load(artifact, threads=threads)
    hop = max(1, model.meta.clip.span // 2)  # half the clip's span
    clf = StreamingClassifier(model, hop=hop)
    src = open_frames(video)
    t0 = time.perf_counter()
    try:
        decisions = run_all(src, clf, max_frames=max_frames)
    finally:
        src.close()
    wall = time.perf_counter() - t0
    stats = summarize(clf.counters, model.meta, wall, str(video), "file", threads=threads)
    out = stats.to_dict()
    out.update(hop=hop, clip=model.meta.clip.to_dict(), crop=list(model.meta.preproc.crop),
               source_fps=round(stats.frames_read / wall, 2), decisions_top1=[d.label for d in decisions[:3]])
    return out


def split(r: dict) -> dict:
    """Share of wall time per stage (the rest is the loop, resampling and bookkeeping)."""
    parts = {k: r[f"{k}_s"] for k in ("decode", "preprocess", "assemble", "infer", "aggregate")}
    parts["other"] = max(0.0, r["wall_s"] - sum(parts.values()))
    return {k: round(v / r["wall_s"], 3) for k, v in parts.items()}


def markdown(results: list[dict], info: dict, target_fps: float) -> str:
    lines = [
        "# Streaming throughput (decode + preprocess + inference)", "",
        f"Machine: {info['cpu']}, {info['cores_available']} cores available, load before "
        f"{info['loadavg_before'][0]:.2f}; Python {info['python']}; {info['date']}.", "",
        f"Every frame processed (no drops), hop = half the clip span, median of repeats. Target: "
        f">= {target_fps:.0f} source frames/s.", "",
        "| model | target | source | frames | fps (median) | decode | preprocess | infer | other | "
        "infer ms/call | GFLOP/s | export verified | meets target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r["split"]
        lines.append(
            f"| {r['model']} | {r['target']} {r['precision']} | {Path(r['source']).name} | {r['frames_read']} | "
            f"{r['fps_median']:.1f} | {s['decode']:.0%} | {s['preprocess']:.0%} | {s['infer']:.0%} | "
            f"{s['other'] + s['assemble'] + s['aggregate']:.0%} | {r['infer_ms_per_call']} | {r['gflops_per_s']} | "
            f"{ {True: 'yes', False: 'NO', None: '-'}[r.get('verify_passed')]} | "
            f"{'yes' if r['fps_median'] >= target_fps else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["x3d_xs", "tsm_mobilenet_v2"])
    p.add_argument("--target", default="openvino")
    p.add_argument("--precision", default="int8")
    p.add_argument("--clip", default="bbb_720p", help="an edgevc.assets name or a video path")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--target-fps", type=float, default=30.0)
    p.add_argument("--artifacts", type=Path, default=Path(os.environ.get("EDGEVC_CACHE", Path.home() / ".cache"
                                                                          / "edgevc")) / "bench-artifacts")
    p.add_argument("--out", type=Path, default=HERE / "results" / "stream_throughput")
    args = p.parse_args(argv)

    from edgevc.assets import fetch

    video = Path(args.clip) if Path(args.clip).is_file() else fetch(args.clip)
    info = machine()
    results = []
    for name in args.models:
        artifact = ensure_artifact(name, args.target, args.precision, args.artifacts, args.threads)
        runs = [run_once(artifact, video, args.threads, args.max_frames) for _ in range(args.repeats)]
        fps = [r["source_fps"] for r in runs]
        best = sorted(runs, key=lambda r: r["source_fps"])[len(runs) // 2]  # the median run
        best.update(fps_median=statistics.median(fps), fps_all=fps, split=split(best),
                    verify_passed=verification(artifact))
        results.append(best)
        s = best["split"]
        print(f"{name}: {best['fps_median']:.1f} frames/s (runs {fps}); decode {s['decode']:.0%}, "
              f"preprocess {s['preprocess']:.0%}, infer {s['infer']:.0%} "
              f"({best['infer_ms_per_call']} ms/call, {best['gflops_per_s']} GFLOP/s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results, info, args.target_fps))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")
    return 0 if all(r["fps_median"] >= args.target_fps for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
