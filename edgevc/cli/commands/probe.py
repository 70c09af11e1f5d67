"""Print a video's codec, size (as displayed), fps, frame count, duration and rotation."""

from __future__ import annotations

import argparse
import json

from edgevc.cli.parser import add_json_flag

NAME = "probe"
HELP = "codec, size, fps, frames, duration and rotation of a video file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a video file")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from edgevc.video import probe

    info = probe(args.file)
    if args.json:
        print(json.dumps(info.to_dict()))
    else:
        fields = info.to_dict()
        width = max(map(len, fields))
        for key, value in fields.items():
            print(f"{key:>{width}}: {value}")
    return 0
