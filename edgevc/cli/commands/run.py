"""Classify a video file, a camera or a stream URL with an exported artifact, one decision per clip.

Everything that decides what the model sees and says (clip length, stride,
reference fps, preprocessing, aggregation, labels) comes from the
artifact's edgevc.json. Decisions are printed as they come: with --json,
one JSON line each ({"frames": [first, last], "t": [start_s, end_s],
"topk": [{"label", "score"}], "latency_ms"}) and a final {"summary": {...}}
line; otherwise one readable line each and a summary table. --live runs
the producer/consumer loop that drops frames (keeping the newest) when the
model is slower than the source; files are then played at their own pace.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from edgevc.cli.parser import add_json_flag

NAME = "run"
HELP = "classify a file, camera or stream with an exported artifact (torch-free)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifact", help="an artifact folder written by 'edgevc export'")
    p.add_argument("--source", required=True, help="a video file, a camera index (0, 1, ...) or a stream URL")
    p.add_argument("--hop", type=int, default=None,
                   help="frames (at the model's fps) between decisions (default: the artifact's clip hop)")
    p.add_argument("--topk", type=int, default=None, help="labels per decision (default: the artifact's)")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: the backend's)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a backend option, repeatable; VALUE is read as JSON when it parses (e.g. "
                        "device=CPU, INFERENCE_PRECISION_HINT=f32, providers='[\"CPUExecutionProvider\"]')")
    p.add_argument("--live", action="store_true",
                   help="drop frames (keep the newest) when inference is slower than the source")
    p.add_argument("--no-pace", action="store_true",
                   help="with --live and a file: feed frames as fast as they decode instead of at their timestamps")
    p.add_argument("--decoder", choices=("auto", "pyav", "opencv"), default="auto")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many source frames")
    p.add_argument("--retries", type=int, default=5, help="reconnection attempts for a stream URL (default 5)")
    p.add_argument("--keep-partial", action="store_true",
                   help="classify the frames before a decoding error instead of failing")
    add_json_flag(p)


def _line(d) -> str:
    best = d.topk[0]
    rest = ", ".join(f"{p.label} {p.score:.3f}" for p in d.topk[1:3])
    return (f"frames {d.frames[0]:5d}-{d.frames[1]:<5d} t {d.t[0]:6.2f}-{d.t[1]:6.2f} s  "
            f"{best.label} {best.score:.3f}" + (f"  ({rest})" if rest else "") + f"  {d.latency_ms:.1f} ms")


def parse_options(items: list[str]) -> dict:
    """``["KEY=VALUE", ...]`` -> a dict; a VALUE that parses as JSON is taken as that (numbers, lists)."""
    from edgevc.errors import EdgevcError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EdgevcError(f"--option '{item}' is not KEY=VALUE", hint="e.g. --option INFERENCE_PRECISION_HINT=f32")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from edgevc import runtime
    from edgevc.errors import EdgevcError, VideoError
    from edgevc.runtime.live import run_all, run_live
    from edgevc.runtime.sources import open_frames
    from edgevc.runtime.stats import summarize
    from edgevc.runtime.stream import StreamingClassifier

    if args.threads is not None and args.threads < 1:
        raise EdgevcError(f"--threads must be at least 1, got {args.threads}")
    model = runtime.load(args.artifact, threads=args.threads, options=parse_options(args.option) or None)
    clf = StreamingClassifier(model, hop=args.hop, k=args.topk, newest_only=args.live)

    def event(msg: str) -> None:
        print(f"edgevc run: {msg}", file=sys.stderr, flush=True)

    source = open_frames(args.source, decoder=args.decoder, retries=args.retries, on_event=event,
                         keep_partial=args.keep_partial)

    def show(d) -> None:
        print(json.dumps(d.to_dict()) if args.json else _line(d), flush=True)

    if not args.json:
        m, c = model.meta, model.meta.clip
        print(f"{m.model} ({m.target}, {m.precision}): {c.num_frames} frames, {c.mode}, stride {c.stride}, "
              f"{c.fps or 'source'} fps, hop {clf.hop}; {'live, keep the newest' if args.live else 'every frame'}")
    t0 = time.perf_counter()
    interrupted, failure = False, None
    try:
        if args.live:
            run_live(source, clf, show, pace=not source.live and not args.no_pace, max_frames=args.max_frames,
                     keep=False)
        else:
            run_all(source, clf, show, max_frames=args.max_frames, keep=False)  # printed, then forgotten
    except KeyboardInterrupt:  # the usual way to stop a camera: still print the summary
        interrupted = True
        event("interrupted; summary of the frames so far")
    except VideoError as err:  # the source failed (a stream gone for good, a damaged file): summary, then the error
        failure = err
    finally:
        source.close()
    clf.counters.reconnects = source.reconnects
    if getattr(source, "stopped_early", None):
        event(f"'{args.source}': {source.stopped_early}; classified the frames before it")
    stats = summarize(clf.counters, model.meta, time.perf_counter() - t0, str(args.source),
                      "live" if args.live else "file", threads=args.threads)
    if args.json:
        print(json.dumps({"summary": stats.to_dict()}))
    else:
        print(stats.to_table())
    if failure is not None:
        raise failure
    if interrupted:
        return 130
    if stats.decisions == 0:
        raise EdgevcError(f"'{args.source}' gave no frame to classify")
    return 0
