"""The live demo (apps/demo_cam): top-5 actions over a camera, a video file or a stream, in a window.

The picture with the top-5 labels and probability bars, the capture fps,
decision rate, inference latency and dropped frames, and the model, target
and precision. Keys: q or Esc quit, space pause, s screenshot, + and -
double or halve the hop. Without --model it runs i3d_k400 exported to
OpenVINO int8 into the edgevc cache, exporting it first if it is not there
(about a minute, once). The same as python apps/demo_cam/main.py (which
needs no torch) of the source checkout edgevc runs from.

  edgevc demo                                   # camera 0
  edgevc demo --source clip.mp4 --loop
  edgevc demo --source clip.mp4 --headless --output annotated.mp4 --json
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

NAME = "demo"
HELP = "the live demo: top-5 actions over a camera, file or stream in a window (apps/demo_cam)"


def apps_dir() -> Path | None:
    """``apps/`` of the source checkout this edgevc runs from (the demo is not part of the wheel), or None."""
    apps = Path(__file__).resolve().parents[3] / "apps"
    return apps if (apps / "demo_cam" / "main.py").is_file() else None


def add_arguments(p: argparse.ArgumentParser) -> None:
    apps = apps_dir()
    if apps is None:  # an install without the source tree: no options; run() explains
        return
    spec = importlib.util.spec_from_file_location("_edgevc_demo_options", apps / "demo_cam" / "options.py")
    options = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(options)  # type: ignore[union-attr]
    options.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from edgevc.errors import EdgevcError

    apps = apps_dir()
    if apps is None:
        raise EdgevcError("edgevc demo runs apps/demo_cam from a source checkout of edgevc, and this install has none",
                          hint="clone the edgevc repository, pip install -e '.[openvino]' in it, and run edgevc demo "
                               "(or python apps/demo_cam/main.py) there")
    if args.model is None:
        from edgevc.export.default import ensure_default_artifact

        args.model = str(ensure_default_artifact(lambda msg: print(f"edgevc demo: {msg}", file=sys.stderr, flush=True)))
    if str(apps) not in sys.path:
        sys.path.insert(0, str(apps))
    from demo_cam.main import run as run_demo

    return run_demo(args)
