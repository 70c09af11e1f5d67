"""The webcam demo's frames per second on real 720p video, headless, for the default and the fastest edge model.

Runs ``apps/demo_cam`` in-process (the same code as ``python apps/demo_cam/main.py
--headless``) on Big Buck Bunny 720p (``edgevc.assets.fetch("bbb_720p")``, 132
frames at 25 fps; ``--clip bbb_full`` for the 10-minute film) for:

- the default artifact (i3d_k400, OpenVINO int8, ``edgevc.runtime.defaults``);
- the fastest edge model, x3d_xs OpenVINO int8 (random init: its speed, not its labels);

in three modes:

- ``mp4``: every frame classified, drawn and encoded into the annotated mp4
  (``--output``), as fast as it decodes: the demo's throughput;
- ``no-mp4``: the same without the mp4 (what drawing + encoding cost);
- ``realtime``: the file played at its own 25 fps with the live loop (keep the
  newest frame, ``--realtime --output``), as a camera would deliver it: the
  frames the classifier had to drop, the decision rate and latency.

Reports fps (source frames per second of wall time, median of repeats), the
split of wall time (decode, preprocess, infer, overlay, encode), and the
machine (CPU, cores, load before the run, versions). Results go to
``benchmarks/results/demo_fps.{json,md}``. Run on a quiet machine::

    python benchmarks/demo_fps.py                  # both models, 3 modes, 3 repeats
    python benchmarks/demo_fps.py --repeats 1      # a smoke test
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "apps"))
sys.path.insert(0, str(HERE))

from stream_throughput import ensure_artifact, machine, verification  # noqa: E402

from edgevc.export.default import ensure_default_artifact  # noqa: E402

MODES = {"mp4": ["--output", "{out}"], "no-mp4": [], "realtime": ["--realtime", "--output", "{out}"]}


def run_once(model, video: Path, mode: str, threads: int, max_frames: int | None, tmp: Path) -> dict:
    from demo_cam.app import DemoApp
    from demo_cam.main import build_parser

    argv = ["--headless", "--source", str(video), "--threads", str(threads)]
    argv += [a.format(out=tmp / f"demo-{mode}.mp4") for a in MODES[mode]]
    if max_frames:
        argv += ["--max-frames", str(max_frames)]
    result = DemoApp(model, build_parser().parse_args(argv), out=io.StringIO()).run()
    s = result.stats
    parts = {"decode": s.decode_s, "preprocess": s.preprocess_s + s.assemble_s, "infer": s.infer_s,
             "overlay": result.render_s, "encode": result.encode_s}
    parts["other"] = max(0.0, s.wall_s - sum(parts.values()))
    return {"mode": mode, "fps": round(s.frames_read / s.wall_s, 2), "stats": s.to_dict(),
            "demo": result.demo_dict(), "split": {k: round(v / s.wall_s, 3) for k, v in parts.items()}}


def markdown(rows: list[dict], info: dict) -> str:
    lines = [
        "# Webcam demo frames per second (headless, apps/demo_cam)", "",
        f"Machine: {info['cpu']}, {info['cores_available']} cores available, load before "
        f"{info['loadavg_before'][0]:.2f}; Python {info['python']}; {info['date']}.", "",
        "fps = source frames per second of wall time (median of repeats). mp4: every frame classified, drawn and "
        "encoded; no-mp4: the same without the video; realtime: played at the clip's 25 fps, keeping the newest "
        "frame (dropped = frames the classifier never saw; its stages overlap in threads, so their shares can add up "
        "to more than 100%).", "",
        "| model | mode | source | frames | fps (median) | dropped | decisions/s | latency p50 | infer ms/call | "
        "decode | preprocess | infer | overlay | encode | export verified |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, sp = r["stats"], r["split"]
        lines.append(
            f"| {r['model']} | {r['mode']} | {Path(s['source']).name} | {s['frames_read']} | {r['fps_median']:.1f} | "
            f"{s['frames_dropped']} | {s['decisions_per_s']} | {s['latency']['p50_ms']} ms | "
            f"{s['infer_ms_per_call']} | "
            f"{sp['decode']:.0%} | {sp['preprocess']:.0%} | {sp['infer']:.0%} | {sp['overlay']:.0%} | "
            f"{sp['encode']:.0%} | { {True: 'yes', False: 'NO', None: '-'}[r['verify_passed']]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["default", "x3d_xs"],
                   help="'default' (the demo's artifact) and/or zoo models exported to openvino int8")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--clip", default="bbb_720p", help="an edgevc.assets name or a video path")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--artifacts", type=Path, default=Path(os.environ.get("EDGEVC_CACHE", Path.home() / ".cache"
                                                                          / "edgevc")) / "bench-artifacts")
    p.add_argument("--out", type=Path, default=HERE / "results" / "demo_fps")
    args = p.parse_args(argv)

    from edgevc import runtime
    from edgevc.assets import fetch

    video = Path(args.clip) if Path(args.clip).is_file() else fetch(args.clip)
    info = machine()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            folder = (ensure_default_artifact(threads=args.threads) if name == "default" else
                      ensure_artifact(name, "openvino", "int8", args.artifacts, args.threads))
            model = runtime.load(folder, threads=args.threads)
            for mode in args.modes:  # repeats interleaved with nothing else: one model, one mode at a time
                runs = [run_once(model, video, mode, args.threads, args.max_frames, Path(tmp))
                        for _ in range(args.repeats)]
                fps = [r["fps"] for r in runs]
                row = sorted(runs, key=lambda r: r["fps"])[len(runs) // 2]
                row.update(model=model.meta.model, artifact=str(folder), fps_median=statistics.median(fps),
                           fps_all=fps, verify_passed=verification(folder))
                rows.append(row)
                s = row["stats"]
                print(f"{row['model']} {mode}: {row['fps_median']:.1f} fps (runs {fps}); dropped "
                      f"{s['frames_dropped']}, {s['decisions']} decisions, infer {s['infer_ms_per_call']} ms/call; "
                      f"split {row['split']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": info, "clip": str(video), "results": rows},
                                                        indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(rows, info))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
