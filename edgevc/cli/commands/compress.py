"""Quantize a trained network to int8 for each target, by PTQ and by QAT, and measure top-1 through the artifacts.

For each target of the recipe: the fp32 export, the target's post-training
int8 and a quantization-aware-trained int8 (NNCF for openvino/onnx, PT2E with
the XNNPACK quantizer for executorch), each verified against the fp32 network
and measured with edgevc.runtime on the held-out split. Writes the artifacts,
compress.json and compress.md to --out (default: the recipe's 'out'); exits 1
when an artifact could not be made. Examples: "edgevc compress
recipes/compress_x3d_xs.yaml"; "edgevc compress recipes/tiny_compress.yaml
--targets openvino --set qat.steps=2 --json".
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from edgevc.cli.parser import add_json_flag

NAME = "compress"
HELP = "int8 by PTQ and by quantization-aware training per target, top-1 measured through the artifacts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="a YAML compress recipe (see recipes/compress_*.yaml)")
    p.add_argument("--out", help="output folder (default: the recipe's 'out', else runs/compress)")
    p.add_argument("--targets", metavar="LIST", help="comma-separated targets, replacing the recipe's "
                   "(openvino, onnx, executorch)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field by its dotted path, e.g. qat.steps=20 (repeatable)")
    p.add_argument("--force", action="store_true", help="replace the artifacts of an existing --out folder")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from edgevc.compress import compress, load_compress_recipe

    overrides = list(args.overrides)
    if args.targets:
        overrides.append(f"targets=[{', '.join(t.strip() for t in args.targets.split(',') if t.strip())}]")
    recipe = load_compress_recipe(args.recipe, overrides)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if args.json else print
    command = shlex.join(["edgevc", *sys.argv[1:]]) if sys.argv[1:2] == ["compress"] else None
    result = compress(recipe, out=args.out, force=args.force, log=log, command=command)
    if args.json:
        print(json.dumps(result.to_dict(), default=str))
    else:
        print(result.table())
        print(f"written: {result.out}/compress.json, {result.out}/compress.md")
    return 1 if any(v.error for v in result.variants) else 0
