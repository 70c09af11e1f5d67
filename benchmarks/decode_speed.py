"""Decoding speed (frames per second) on the 720p Big Buck Bunny clip, PyAV vs OpenCV, with and without
the default model's preprocessing. Writes benchmarks/results/decode_speed.json and prints a Markdown table.

    .venv/bin/python benchmarks/decode_speed.py [--repeats 5]

Run on a quiet machine: repeats are interleaved (A B A B ...) and medians reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from edgevc.assets import fetch
from edgevc.report.machine import machine_info
from edgevc.sampling import preprocess_frame
from edgevc.spec import PreprocSpec
from edgevc.video import open_source

OUT = Path(__file__).parent / "results" / "decode_speed.json"


def one_pass(path: Path, decoder: str, preproc: PreprocSpec | None) -> tuple[int, float]:
    reader = open_source(path, decoder=decoder)
    t = time.perf_counter()
    n = 0
    for frame in reader:
        if preproc is not None:
            preprocess_frame(frame.rgb, preproc)
        n += 1
    dt = time.perf_counter() - t
    reader.close()
    return n, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--asset", default="bbb_720p")
    args = ap.parse_args()
    path = fetch(args.asset)
    cases = {
        "pyav decode": ("pyav", None),
        "opencv decode": ("opencv", None),
        "pyav decode + preprocess 112² (short side 128)": ("pyav", PreprocSpec(crop=(112, 112), resize_short=128)),
        "pyav decode + preprocess 224² (short side 256)": ("pyav", PreprocSpec(crop=(224, 224), resize_short=256)),
    }
    samples: dict[str, list[float]] = {k: [] for k in cases}
    frames = {}
    one_pass(path, "pyav", None)  # warm-up
    for _ in range(args.repeats):
        for name, (decoder, pre) in cases.items():
            n, dt = one_pass(path, decoder, pre)
            frames[name] = n
            samples[name].append(n / dt)
    rows = [{"case": k, "frames": frames[k], "fps_median": round(statistics.median(v), 1),
             "fps_samples": [round(x, 1) for x in v]} for k, v in samples.items()]
    result = {"clip": args.asset, "file": path.name, "resolution": "1280x720", "rows": rows,
              "machine": machine_info(), "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| case ({args.asset}, 1280x720) | frames/s (median of {args.repeats}) |\n|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['fps_median']} |")
    m = result["machine"]
    print(f"\nmachine: {m['cpu']}, {m['cores']} cores, load {m['loadavg_1m']}")


if __name__ == "__main__":
    main()
