"""The demo's command-line options, shared by ``apps/demo_cam/main.py`` and ``edgevc demo``."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="ARTIFACT",
                   help="an artifact folder written by 'edgevc export' (default: i3d_k400 OpenVINO int8 from "
                        "the edgevc cache, exported on first use)")
    p.add_argument("--source", default="0", help="a camera index (0, 1, ...), a video file or a stream URL (default 0)")
    p.add_argument("--headless", action="store_true", help="no window: process the source as fast as it comes")
    p.add_argument("--realtime", action="store_true",
                   help="headless: play a file at its own pace and keep the newest frame, as a camera would deliver "
                        "it (the window always does)")
    p.add_argument("--output", metavar="MP4", help="write the annotated video, one output frame per input frame")
    p.add_argument("--json", action="store_true",
                   help="print each decision as a JSON line (the 'edgevc run --json' schema) and a final summary")
    p.add_argument("--loop", action="store_true", help="play a file again from the start when it ends")
    p.add_argument("--hop", type=int, default=None,
                   help="frames (at the model's fps) between decisions (default: the artifact's; keys + and -)")
    p.add_argument("--topk", type=int, default=None, help="labels shown (default: the artifact's, 5)")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: the backend's)")
    p.add_argument("--decoder", choices=("auto", "pyav", "opencv"), default="auto")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N source frames")
    p.add_argument("--retries", type=int, default=10,
                   help="reconnection attempts for a lost camera or stream, with backoff 0.5, 1, 2 .. 8 s (default 10)")
    p.add_argument("--gui", choices=("auto", "tk", "opencv"), default="auto",
                   help="the window toolkit (default: Tk, else an OpenCV build with a GUI)")
    p.add_argument("--screenshots", metavar="DIR", default=".", help="where the s key saves PNGs (default: .)")
