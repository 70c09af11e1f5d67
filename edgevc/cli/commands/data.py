"""Make the temporal benchmark, list a dataset, or measure the order-blind baselines on it.

  edgevc data make-bench [--recipe R.yaml] [--root DIR]   generate (or find) the benchmark, print where
  edgevc data baseline [--recipe R.yaml] [--features pixels|mobilenet_v2]
                                                         single-frame and order-blind mean baselines

Without --recipe the benchmark's default configuration is used; with one, its data.bench section.
"""

from __future__ import annotations

import argparse
import json
import sys

from edgevc.cli.parser import add_json_flag

NAME = "data"
HELP = "make the temporal benchmark and measure its order-blind baselines"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("make-bench", "baseline"), help="what to do")
    p.add_argument("--recipe", help="take the benchmark configuration from this recipe's data.bench")
    p.add_argument("--root", help="folder holding generated benchmarks (default: the edgevc cache)")
    p.add_argument("--features", choices=("pixels", "mobilenet_v2"), default="pixels",
                   help="baseline features (mobilenet_v2 needs torch and its offline weights)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random frame choice (baseline)")
    add_json_flag(p)


def _bench(args: argparse.Namespace):
    from edgevc.data.synth import BenchConfig, make_bench

    cfg, root = BenchConfig(), args.root
    if args.recipe:
        from edgevc.train.recipe import load_recipe

        data = load_recipe(args.recipe).data
        cfg, root = data.bench, root or data.root
    return make_bench(cfg, root=root, report=lambda m: print(m, file=sys.stderr, flush=True))


def run(args: argparse.Namespace) -> int:
    from edgevc.data.lists import folder_list

    bench = _bench(args)
    train = folder_list(bench.split_dir("train"), bench.labels)
    test = folder_list(bench.split_dir("test"), bench.labels)
    if args.action == "make-bench":
        info = {"root": str(bench.root), "labels": list(bench.labels), "train": len(train), "test": len(test),
                "config": bench.config.to_dict()}
        if args.json:
            print(json.dumps(info))
        else:
            print(f"benchmark  {bench.root}")
            print(f"classes    {', '.join(bench.labels)}")
            print(f"videos     {len(train)} train, {len(test)} test "
                  f"({bench.config.frames} frames, {bench.config.size}x{bench.config.size}, {bench.config.fps} fps)")
        return 0
    from edgevc.data.baselines import run_baselines

    results = run_baselines(train, test, features=args.features, seed=args.seed)
    if args.json:
        print(json.dumps([r.to_dict() for r in results]))
    else:
        print(f"{'baseline':<14}{'features':<14}{'train top-1':>12}{'test top-1':>12}{'chance':>8}")
        for r in results:
            print(f"{r.name:<14}{r.features:<14}{r.train_top1:>12.3f}{r.test_top1:>12.3f}{r.chance:>8.3f}")
    return 0
