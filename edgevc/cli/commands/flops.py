"""Parameters, and multiply-adds and FLOPs per clip and per frame, of a zoo model.

Convention: torch's FlopCounterMode counts 2 FLOPs per multiply-add;
torchvision's and the papers' "GFLOPS" are multiply-adds (GMACs).
"""

from __future__ import annotations

import argparse
import json

from edgevc.cli.parser import add_json_flag

NAME = "flops"
HELP = "params, GMACs and GFLOPs per clip and per frame of a model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a zoo model (edgevc models)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default: the model's clip)")
    p.add_argument("--size", type=int, default=None, help="square crop size (default: the model's crop)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from edgevc.errors import EdgevcError
    from edgevc.models import create, model_info
    from edgevc.report.flops import count_flops

    info = model_info(args.model)
    _, c, t, h, w = info.input_shape
    t = args.frames or t
    h = w = args.size or h
    if t < 1 or h < 1:
        raise EdgevcError(f"--frames and --size must be positive, got {t} and {h}")
    try:
        rep = count_flops(lambda: create(args.model, pretrained=False), (1, c, t, h, w), name=args.model)
    except RuntimeError as err:
        raise EdgevcError(f"{args.model} does not run at {t}x{h}x{w}: {str(err).splitlines()[0][:200]}",
                          hint="try a larger --size or more --frames") from None
    if args.json:
        print(json.dumps(rep.to_dict()))
        return 0
    print(f"{args.model} at input {list(rep.input)}")
    print(f"  params          {rep.params:,} ({rep.params / 1e6:.2f} M)")
    print(f"  per clip        {rep.gmacs_per_clip:.3f} GMACs = {rep.gflops_per_clip:.3f} GFLOPs")
    print(f"  per frame       {rep.gmacs_per_frame:.4f} GMACs")
    print("  (1 multiply-add = 2 FLOPs; torchvision's and the papers' 'GFLOPS' are GMACs)")
    return 0
