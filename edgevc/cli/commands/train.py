"""Fine-tune a zoo model with a YAML recipe: AdamW, cosine schedule, checkpoints, video-level evaluation.

One process:   edgevc train recipes/bench_x3d_xs.yaml
N processes:   torchrun --nproc-per-node N -m edgevc train recipes/bench_x3d_xs.yaml
Resume:        edgevc train recipes/bench_x3d_xs.yaml --resume
Override:      edgevc train recipes/tiny_ci.yaml --set train.epochs=2 --set optim.lr=0.01

Writes checkpoint.pt, model.pt, labels.txt and train.json to --out (default: the recipe's 'out').
"""

from __future__ import annotations

import argparse
import json
import os

from edgevc.cli.parser import add_json_flag

NAME = "train"
HELP = "fine-tune a zoo model from a YAML recipe (torchrun for several processes)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="a YAML recipe (see recipes/)")
    p.add_argument("--out", help="output folder (default: the recipe's 'out', else runs/train)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field by its dotted path, e.g. train.epochs=2 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (epoch lines only)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from edgevc.train import load_recipe, train

    recipe = load_recipe(args.recipe, args.overrides)
    result = train(recipe, out=args.out, resume=args.resume, show_progress=not args.no_progress)
    if os.environ.get("RANK", "0") != "0":
        return 0
    final = result.final
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"model        {result.model}")
        print(f"video top-1  {final['video_top1']:.4f}  ({final['videos']} videos x {final['clips_per_video']} clips)")
        print(f"clip top-1   {final['clip_top1']:.4f}")
        print(f"time         train {result.train_seconds:.0f} s, eval {result.eval_seconds:.0f} s, "
              f"{result.world_size} process(es) x {result.threads} thread(s)")
        print(f"weights      {result.weights}")
    return 0
