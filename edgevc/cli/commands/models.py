"""List the model zoo: params, GMACs per clip at the default input, default clip, offline weights."""

from __future__ import annotations

import argparse
import json

from edgevc.cli.parser import add_json_flag

NAME = "models"
HELP = "the model zoo as a table (params, GMACs per clip, default clip, pretrained offline)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_json_flag(p)


def rows() -> list[dict]:
    from edgevc.models import list_models, model_info

    out = []
    for name in list_models():
        info = model_info(name)
        c = info.clip
        out.append({
            "model": name, "family": info.family, "params": info.params, "gmacs_per_clip": round(info.macs / 1e9, 3),
            "input": list(info.input_shape),
            "clip": f"{c.num_frames}x{c.stride} {c.mode}" + (f" @{c.fps:g}fps" if c.fps else ""),
            "pretrained": ("yes" if info.labels else "backbone") if info.pretrained else "no",
            "stream": info.stream, "num_classes": info.num_classes,
        })
    return out


def run(args: argparse.Namespace) -> int:
    table = rows()
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print(f"{'model':<26}{'params':>12}{'GMACs/clip':>12}  {'input (N,C,T,H,W)':<22}{'clip':<22}pretrained")
    for r in table:
        shape = "x".join(str(d) for d in r["input"])
        print(f"{r['model']:<26}{r['params'] / 1e6:>11.2f}M{r['gmacs_per_clip']:>12.3f}  {shape:<22}{r['clip']:<22}"
              f"{r['pretrained']}")
    print("GMACs = multiply-adds (torch's FLOP counter / 2), at each model's default input. pretrained: 'yes' = "
          "classifier weights fetched offline; 'backbone' = ImageNet backbone only, head to train.")
    return 0
