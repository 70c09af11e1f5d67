"""Benchmark a model on every export target and precision against PyTorch eager fp32, in one interleaved run.

Exports what is missing (cached in $EDGEVC_CACHE/bench/artifacts by model,
target, precision and input), then times every artifact and PyTorch eager
fp32 on the same real clips, interleaved (A B C A B C ...) with the same
thread count, after a GEMM peak measurement. Prints a Markdown table on
stdout: one row per target x precision (and per runtime variant, such as
OpenVINO's default bf16 execution), each ✅ or ❌ with the reason; size,
GMACs, latency p50/p90/p99, clips/s, ms per frame at the streaming hop,
parity from the artifact's verify.json, accuracy with --data, speed-up over
PyTorch, GFLOP/s and share of the peak. Examples: "edgevc bench x3d_s
--targets all --precisions fp32,int8 --json out.json --plot out.png";
"edgevc bench artifacts/x3d_xs-openvino-int8" (one artifact).
"""

from __future__ import annotations

import argparse
import json
import sys

NAME = "bench"
HELP = "latency, parity and speed-up of every target x precision against PyTorch eager fp32"


def _csv(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a zoo model (edgevc models), or an artifact folder to bench alone")
    p.add_argument("--targets", type=_csv, default=("all",), metavar="all|LIST",
                   help="comma-separated export targets, or all (default: all registered targets)")
    p.add_argument("--precisions", type=_csv, default=("fp32", "int8"), metavar="LIST",
                   help="comma-separated among fp32, fp16, int8 (default: fp32,int8)")
    p.add_argument("--frames", type=int, metavar="T", help="frames per clip (default: the model's clip spec)")
    p.add_argument("--size", type=int, metavar="S", help="square crop size (default: the model's)")
    p.add_argument("--threads", type=int, default=2, metavar="N", help="threads for every framework (default 2)")
    p.add_argument("--clips", type=_csv, metavar="SOURCES",
                   help="comma-separated videos or clip assets to time on (default: the four real calibration "
                        "videos: arm_wrestling.mp4, bikes, bbb_720p, carphone)")
    p.add_argument("--data", metavar="BENCH_SPLIT",
                   help="a labelled split (root/<class>/<video>) for video top-1 accuracy, or 'bench' for the "
                        "temporal benchmark's test split")
    p.add_argument("--data-clips", type=int, default=3, metavar="K", help="clips per video for --data (3)")
    p.add_argument("--max-videos", type=int, metavar="N", help="score only the first N videos of --data")
    p.add_argument("--repeats", type=int, default=30, metavar="N", help="interleaved timed rounds (30)")
    p.add_argument("--warmup", type=int, default=3, metavar="N", help="untimed warm-up rounds (3)")
    p.add_argument("--budget", type=float, default=600.0, metavar="SECONDS",
                   help="stop timing after the round that passes this many seconds, once 3 rounds are done (600)")
    p.add_argument("--timing-clips", type=int, default=4, metavar="N", help="real clips cycled through (4)")
    p.add_argument("--verify-clips", type=int, default=32, metavar="N",
                   help="real clips a new export is verified on (32)")
    p.add_argument("--random-clips", type=int, default=4, metavar="N", help="random clips a new export is "
                   "verified on (4)")
    p.add_argument("--calib-clips", type=int, metavar="N", help="int8 calibration clips (default: the profile's)")
    p.add_argument("--weights", metavar="PATH",
                   help="trained weights for the exports and the PyTorch row: a torch state dict, or an edgevc "
                        "train run folder (its labels, clip and crop come along)")
    p.add_argument("--cache", metavar="DIR", help="where exports are cached (default: $EDGEVC_CACHE/bench/artifacts)")
    p.add_argument("--no-variants", dest="variants", action="store_false",
                   help="time only each artifact's profile configuration, not its variants (OpenVINO's default "
                        "precision)")
    p.add_argument("--no-peak", dest="peak", action="store_false", help="skip the GEMM peak measurement")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write the JSON report (every raw sample) to FILE; without FILE print it on stdout "
                        "instead of the table")
    p.add_argument("--plot", metavar="FILE.png", help="write the latency/GMACs and latency/accuracy plot")


def run(args: argparse.Namespace) -> int:
    from edgevc.bench.runner import BenchRequest, run_bench
    from edgevc.errors import EdgevcError

    for name in ("threads", "repeats", "timing_clips", "verify_clips", "data_clips"):
        if getattr(args, name) < 1:
            raise EdgevcError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        raise EdgevcError(f"--warmup must be 0 or more, got {args.warmup}")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise EdgevcError(f"--plot '{args.plot}' is not a .png path", hint="e.g. --plot bench.png")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    req = BenchRequest(
        model=args.model, targets=args.targets, precisions=args.precisions, frames=args.frames, size=args.size,
        threads=args.threads, clips=args.clips, data=args.data, data_clips=args.data_clips,
        max_videos=args.max_videos, repeats=args.repeats, warmup=args.warmup, budget_s=args.budget,
        timing_clips=args.timing_clips, verify_clips=args.verify_clips, random_clips=args.random_clips,
        calib_clips=args.calib_clips, weights=args.weights, cache=args.cache, variants=args.variants,
        peak=args.peak)
    report = run_bench(req, log=log)
    if args.json == "-":
        print(json.dumps(report.to_dict(), default=str, ensure_ascii=False))
    else:
        print(report.to_markdown(), flush=True)
        if args.json:
            log(f"edgevc bench: JSON (with every raw sample) written to {report.save_json(args.json)}")
    if args.plot:
        from edgevc.bench.plot import plot_bench

        log(f"edgevc bench: plot written to {plot_bench([report], args.plot)}")
    return 0
