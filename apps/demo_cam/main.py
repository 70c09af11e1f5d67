"""edgevc webcam demo: live action labels over a camera, a video file or a stream URL.

    python apps/demo_cam/main.py                                  # camera 0, the default model
    python apps/demo_cam/main.py --source clip.mp4 --loop
    python apps/demo_cam/main.py --model ARTIFACT --source rtsp://camera/stream
    python apps/demo_cam/main.py --source clip.mp4 --headless --output out.mp4 --json

The window shows the picture, the top-5 labels with probability bars
(aggregated over the stream as the artifact's aggregation spec says), the
capture fps and decision rate, the inference latency and dropped frames,
and the model, target and precision. Keys: q or Esc quit, space pause,
s screenshot, + and - double or halve the hop.

Without --model it runs the built-in default (i3d_k400, OpenVINO int8,
in the edgevc cache), exporting it on first use (that one step needs the
torch side: pip install 'edgevc[export]'). Everything else is torch-free.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``demo_cam`` importable from apps/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo_cam.app import DemoApp, print_summary  # noqa: E402
from demo_cam.options import add_arguments  # noqa: E402
from edgevc import runtime  # noqa: E402
from edgevc.errors import EdgevcError  # noqa: E402
from edgevc.runtime.defaults import default_artifact_dir, default_artifact_ready, export_argv  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demo_cam", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def resolve_artifact(model: str | None) -> Path:
    """``--model``, or the default artifact, exported first (in a subprocess: the torch side) if missing."""
    if model is not None:
        return Path(model)
    folder = default_artifact_dir()
    if default_artifact_ready(folder):
        return folder
    argv = export_argv(folder)
    print(f"demo: first use: exporting the default model into {folder} (edgevc {' '.join(argv)}; "
          "about a minute)", file=sys.stderr, flush=True)
    proc = subprocess.run([sys.executable, "-m", "edgevc", *argv], stdout=sys.stderr)
    if not default_artifact_ready(folder):
        raise EdgevcError(f"could not build the default artifact in {folder} (export exit code {proc.returncode})",
                          hint=f"the export needs the torch side: pip install 'edgevc[export]' && edgevc "
                               f"{' '.join(argv)}; or pass --model ARTIFACT")
    if proc.returncode != 0:  # exported, but a parity figure is over its limit (edgevc demo does the same)
        print(f"demo: warning: the default artifact failed a parity check ({folder / 'verify.json'}); "
              "running it anyway", file=sys.stderr, flush=True)
    return folder


def check_args(args: argparse.Namespace) -> None:
    if args.threads is not None and args.threads < 1:
        raise EdgevcError(f"--threads must be at least 1, got {args.threads}")
    if args.hop is not None and args.hop < 1:
        raise EdgevcError(f"--hop must be at least 1, got {args.hop}")
    if args.max_frames is not None and args.max_frames < 1:
        raise EdgevcError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.output and not Path(args.output).resolve().parent.is_dir():
        raise EdgevcError(f"--output '{args.output}': its folder does not exist")


def run(args: argparse.Namespace) -> int:
    """Run the demo with parsed options; user errors raise :class:`EdgevcError`."""
    check_args(args)
    model = runtime.load(resolve_artifact(args.model), threads=args.threads)
    result = DemoApp(model, args).run()
    print_summary(result, args.json)
    if result.interrupted:
        return 130
    if result.stats.frames_read == 0:
        raise EdgevcError(f"'{args.source}' gave no frame")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except EdgevcError as err:
        print(f"demo: error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"  hint: {err.hint}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
