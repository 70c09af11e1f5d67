"""Decode a real clip and sample it as a clip spec says: which frames, which timestamps, how long it took.

Streams the file frame by frame through the same numpy window and
preprocessing the device runs (resampled to the reference fps first when
one is set), and prints every clip the stream emits.
"""

from __future__ import annotations

import argparse
import json
import time

from edgevc.cli.parser import add_json_flag

NAME = "sample"
HELP = "stream a video through a clip spec and print the clips it yields, with timings"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a video file (or camera index / stream URL)")
    p.add_argument("--model", default=None, help="take the clip and preprocessing specs of a zoo model")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    p.add_argument("--mode", choices=("strided", "uniform", "segment"), default="strided")
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--fps", type=float, default=None, help="reference fps to resample to (default: as decoded)")
    p.add_argument("--hop", type=int, default=None, help="frames between clips (default: half the span)")
    p.add_argument("--size", type=int, default=112, help="crop size (short side is resized to it)")
    p.add_argument("--decoder", choices=("auto", "pyav", "opencv"), default="auto")
    p.add_argument("--max-frames", type=int, default=None)
    add_json_flag(p)


def _specs(args: argparse.Namespace):
    from edgevc.spec import ClipSpec, PreprocSpec

    if args.model:
        from edgevc.models import model_info  # torch side, only when a zoo model is named

        info = model_info(args.model)
        return info.clip, info.preproc
    clip = ClipSpec(num_frames=args.frames, mode=args.mode, stride=args.stride, fps=args.fps, hop=args.hop)
    return clip, PreprocSpec(crop=(args.size, args.size), resize_short=args.size)


def run(args: argparse.Namespace) -> int:
    from edgevc.sampling import StreamingWindow, assemble, preprocess_frame
    from edgevc.video import open_source, resample

    clip, preproc = _specs(args)
    window = StreamingWindow(clip)
    reader = open_source(args.source, decoder=args.decoder)
    t_decode = t_pre = 0.0
    frames_in, clips, pts_of = 0, [], []
    t0 = time.perf_counter()
    try:
        it = iter(reader) if clip.fps is None else resample(iter(reader), clip.fps)
        while True:
            t = time.perf_counter()
            frame = next(it, None)
            t_decode += time.perf_counter() - t
            if frame is None or (args.max_frames and frames_in >= args.max_frames):
                break
            frames_in += 1
            pts_of.append(frame.pts)
            t = time.perf_counter()
            out = window.push(preprocess_frame(frame.rgb, preproc))
            if out is not None:
                x = assemble(out.items, preproc)
            t_pre += time.perf_counter() - t
            if out is not None:
                clips.append({"indices": out.indices.tolist(), "t": [round(pts_of[out.first], 4),
                              round(pts_of[out.last], 4)], "shape": list(x.shape)})
        tail = window.flush()
        if tail is not None:
            clips.append({"indices": tail.indices.tolist(), "t": [round(pts_of[tail.first], 4),
                          round(pts_of[tail.last], 4)], "shape": list(assemble(tail.items, preproc).shape)})
    finally:
        reader.close()
    wall = time.perf_counter() - t0
    summary = {
        "source": str(args.source), "clip": clip.to_dict(), "preproc": preproc.to_dict(), "frames": frames_in,
        "clips": len(clips), "wall_s": round(wall, 4), "decode_s": round(t_decode, 4),
        "preprocess_s": round(t_pre, 4), "fps": round(frames_in / wall, 1) if wall else None,
    }
    if args.json:
        for c in clips:
            print(json.dumps(c))
        print(json.dumps({"summary": summary}))
        return 0
    print(f"clip spec: {clip.num_frames} frames, {clip.mode}, stride {clip.stride}, span {clip.span}, "
          f"hop {clip.stream_hop}, fps {clip.fps or 'as decoded'}; crop {list(preproc.crop)}")
    for i, c in enumerate(clips):
        idx = c["indices"]
        shown = idx if len(idx) <= 10 else idx[:4] + ["..."] + idx[-3:]
        print(f"clip {i:3d}: frames {shown}  t=[{c['t'][0]:.2f}s, {c['t'][1]:.2f}s]  input {c['shape']}")
    print(f"{frames_in} frames -> {len(clips)} clips in {wall:.2f} s ({summary['fps']} frames/s): "
          f"decode {t_decode:.2f} s, preprocess {t_pre:.2f} s")
    return 0
