"""Export a zoo model to an edge runtime, verified against PyTorch through the artifact's own runtime.

Writes an artifact folder: the model file(s), edgevc.json (the specs, labels
and sha256 of every file; also embedded in the model where the format allows)
and verify.json (parity figures). Exits 1 when a figure is over the target's
tolerance; the artifact stays for inspection. Examples: "edgevc export i3d_k400
--target openvino --precision int8"; "edgevc export x3d_xs --target
intel-cpu-openvino-int8 --frames 8 --size 112".
"""

from __future__ import annotations

import argparse
import json
import sys

from edgevc.cli.parser import add_json_flag

NAME = "export"
HELP = "export a model to openvino, onnx, executorch or coreml, verified against PyTorch"


def _target_help() -> str:
    from edgevc.export import available_targets
    from edgevc.export.profiles import list_profiles

    return (f"a target ({', '.join(available_targets())}) or a device profile "
            f"({', '.join(p for p in list_profiles() if p.count('-') > 1) or 'none'}), or a profile YAML path")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="a zoo model (edgevc models); default i3d_k400, or the model of the --weights run")
    p.add_argument("--target", "-t", default="openvino", help=_target_help())
    p.add_argument("--precision", "-p", choices=("fp32", "fp16", "int8"),
                   help="default: the profile's, else the target's first (fp32; fp16 for coreml)")
    p.add_argument("--weights", metavar="PATH",
                   help="an edgevc train run folder (its model.pt, labels and specs) or a torch state dict "
                   "(default: the entry's offline weights, "
                   "else random init with BatchNorm statistics from real clips)")
    p.add_argument("--frames", type=int, metavar="T", help="frames per clip (default: the model's clip spec)")
    p.add_argument("--size", type=int, metavar="S", help="square crop size (default: the model's)")
    p.add_argument("--calib", metavar="SOURCES", help="comma-separated videos or clip assets for int8 calibration "
                   "(default: arm_wrestling.mp4, bikes, bbb_720p, carphone)")
    p.add_argument("--calib-clips", type=int, metavar="N", help="calibration clips (default: the profile's, 32)")
    p.add_argument("--out", "-o", metavar="DIR", help="artifact folder (default: artifacts/MODEL-PROFILE)")
    p.add_argument("--force", action="store_true", help="replace an existing artifact folder")
    p.add_argument("--if-missing", action="store_true",
                   help="reuse an existing artifact in --out that matches this request instead of refusing")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the parity check")
    p.add_argument("--verify-clips", type=int, default=32, metavar="N", help="real clips to verify on (32)")
    p.add_argument("--random-clips", type=int, default=4, metavar="N", help="random clips to verify on (4)")
    p.add_argument("--threads", type=int, metavar="N", help="threads for PyTorch and the runtime "
                   "(default: the profile's)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from edgevc.export.driver import export_model

    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    result = export_model(
        args.model, args.target, args.precision, weights=args.weights, frames=args.frames, size=args.size,
        calib=args.calib, out=args.out, force=args.force, verify=args.verify, threads=args.threads,
        if_missing=args.if_missing, verify_clips=args.verify_clips, random_clips=args.random_clips,
        calib_clips=args.calib_clips, log=log,
    )
    if args.json:
        print(json.dumps(result.to_dict(), default=str))
    if not result.ok:
        print(f"edgevc export: parity over tolerance ({'; '.join(result.verify.failures())}); "
              f"the artifact is kept in {result.out} for inspection", file=sys.stderr)
        return 1
    return 0
