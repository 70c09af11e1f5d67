"""Record benchmark training runs (issue #6) into ``benchmarks/results/train_<model>.{json,md}``.

A run is what ``edgevc train`` wrote into its ``out`` folder (``train.json``: the recipe, the per-epoch
history, the final held-out evaluation, the wall times, the weights' sha256). This script copies the
figures (not the weights) next to the machine they were measured on, so the committed table says what
was run, how long it took and what it reached. Reproduce a run, then record it::

    edgevc data make-bench
    torchrun --standalone --nproc-per-node 2 -m edgevc train recipes/bench_tsm_mobilenet_v2.yaml
    python benchmarks/train_results.py runs/bench_tsm_mobilenet_v2 --recipe recipes/bench_tsm_mobilenet_v2.yaml

The acceptance figures (>= 95% held-out video top-1, within 25 minutes on 2 cores) are checked here and in
``tests/test_benchmark_records.py``, which reads the committed JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgevc.report.machine import machine_info  # noqa: E402

TARGET_TOP1 = 0.95
BUDGET_S = 25 * 60
RECIPE_KEYS = ("model", "clip", "optim", "train")  # what the run used, compared with the recipe file by a test
EPOCH_KEYS = ("epoch", "loss", "train_top1", "lr", "steps", "seconds", "crop", "test_video_top1")


def record(run: Path, recipe: str, note: str = "", wall_seconds: float | None = None) -> dict:
    """``wall_seconds``: for a run whose train.json predates ``wall_seconds``, measured from outside
    (torchrun's first log line to train.json's mtime); otherwise train + final evaluation is all there is."""
    d = json.loads((run / "train.json").read_text())
    total = d.get("wall_seconds") or wall_seconds or d["train_seconds"] + d["eval_seconds"]
    out = {
        "model": d["model"], "recipe": recipe,
        "command": (f"torchrun --standalone --nproc-per-node {d['world_size']} -m edgevc train {recipe}"
                    if d["world_size"] > 1 else f"edgevc train {recipe}"),
        "world_size": d["world_size"], "threads_per_process": d["threads"],
        "video_top1": d["final"]["video_top1"], "clip_top1": d["final"]["clip_top1"],
        "videos": d["final"]["videos"], "clips_per_video": d["final"]["clips_per_video"],
        "confusion": d["final"]["confusion"], "labels": d["final"]["labels"],
        "train_seconds": d["train_seconds"], "eval_seconds": d["eval_seconds"], "total_seconds": round(total, 2),
        "epochs": [{k: h[k] for k in EPOCH_KEYS if k in h} for h in d["history"]],
        "weights_sha256": d["weights_sha256"],
        "recipe_sections": {k: d["recipe"][k] for k in RECIPE_KEYS if k in d.get("recipe", {})},
        "acceptance": {"video_top1_min": TARGET_TOP1, "seconds_max": BUDGET_S,
                       "met": d["final"]["video_top1"] >= TARGET_TOP1 and total <= BUDGET_S},
        "machine": machine_info(), "note": note,
    }
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"## {r['model']}: `{r['command']}`", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; {r['world_size']} process(es) x "
             f"{r['threads_per_process']} thread(s).", "",
             "| epoch | crop | steps | loss | train top-1 (augmented) | held-out top-1 | lr | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {e['epoch']} | {e.get('crop', '-')} | {e['steps']} | {e['loss']:.3f} | {e['train_top1']:.3f} | "
              f"{_pct(e.get('test_video_top1'))} | {e['lr']:.2e} | {e['seconds']:.0f} |" for e in r["epochs"]]
    acc = r["acceptance"]
    lines += ["", f"Held-out video top-1 **{r['video_top1']:.4f}** ({r['videos']} videos x {r['clips_per_video']} "
              f"clips), clip top-1 {r['clip_top1']:.4f}; train {r['train_seconds']:.0f} s, final evaluation "
              f"{r['eval_seconds']:.0f} s, {r['total_seconds'] / 60:.1f} min in all. "
              f"Target >= {acc['video_top1_min']:.0%} within {acc['seconds_max'] // 60} min: "
              f"{'met' if acc['met'] else 'NOT met'}."]
    if r["note"]:
        lines += ["", r["note"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the run folder (holds train.json)")
    ap.add_argument("--recipe", required=True, help="the recipe that made it (for the command line)")
    ap.add_argument("--note", default="")
    ap.add_argument("--wall-seconds", type=float, default=None,
                    help="the run's wall time, for a train.json without wall_seconds")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    r = record(args.run, args.recipe, args.note, args.wall_seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"train_{r['model']}.json").write_text(json.dumps(r, indent=1) + "\n")
    (args.out / f"train_{r['model']}.md").write_text(markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    main()
