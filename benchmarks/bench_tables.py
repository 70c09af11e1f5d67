"""The committed bench tables: ``edgevc bench`` for the zoo's edge models and i3d_k400, one run each.

For every model (default: x3d_xs, x3d_s, tsm_mobilenet_v2, movinet_a0,
r2plus1d_18, i3d_k400) the script runs::

    edgevc bench MODEL --targets all --precisions fp32,int8 --threads 2 \\
        --json results/bench_MODEL.json --plot results/bench_MODEL.png     > results/bench_MODEL.md

in a fresh process each (a crash or a leaked thread pool cannot touch the
next model), then writes ``results/bench_summary.md`` (per model: the
fastest passing row of each precision, its speed-up over PyTorch eager
fp32, its parity, and the int8 acceptance figures) and
``results/bench_all.png`` (every passing row of every model on the two
plots: latency vs GMACs and latency vs top-1 agreement, with the fronts).
Every JSON records the machine (CPU model, cores, ISA flags, load) and the
GEMM peak measured in the same run; the summary repeats the machine line.

x3d_xs, x3d_s and tsm_mobilenet_v2: an ``edgevc train`` run in
``runs/bench_MODEL`` (``recipes/bench_x3d_xs.yaml``,
``recipes/bench_tsm_mobilenet_v2.yaml``; no recipe trains x3d_s yet) is used
when it exists
(``--weights RUN_DIR --data bench``: the run's clip and trained head, and
video top-1 of every row on the temporal benchmark's held-out split);
otherwise the zoo model is benched (random init, or TSM's ImageNet
backbone) and its parity is the logits' relative L2 error against the
profile's limit.

Exports are cached in ``$EDGEVC_CACHE/bench/artifacts``, so a second run
only re-times. I3D at 32x224² costs about a second per PyTorch clip and
its ExecuTorch int8 export several minutes: the whole script takes most of
an hour on 2 cores. Run it on a quiet machine; compare ratios within one
run, not absolute times across runs. Usage::

    python benchmarks/bench_tables.py                          # every model
    python benchmarks/bench_tables.py --models x3d_xs x3d_s    # some
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODELS = ("x3d_xs", "x3d_s", "tsm_mobilenet_v2", "movinet_a0", "r2plus1d_18", "i3d_k400")
# edgevc train runs on the temporal benchmark (recipes/bench_MODEL.yaml): benched at the run's clip, with the
# benchmark's held-out split for the accuracy column
TRAINED = {m: REPO / "runs" / f"bench_{m}" for m in ("x3d_xs", "x3d_s", "tsm_mobilenet_v2")}


def bench_one(model: str, args: argparse.Namespace) -> dict | None:
    """One ``edgevc bench`` in its own process; its Markdown goes to results/bench_MODEL.md."""
    out = args.out
    js, png, md = (out / f"bench_{model}.{ext}" for ext in ("json", "png", "md"))
    cmd = [sys.executable, "-m", "edgevc", "bench", model, "--targets", args.targets, "--precisions",
           args.precisions, "--threads", str(args.threads), "--repeats", str(args.repeats), "--budget",
           str(args.budget), "--json", str(js), "--plot", str(png)]
    weights = TRAINED.get(model)
    if weights is not None and (weights / "train.json").is_file():
        cmd += ["--weights", str(weights), "--data", "bench"]
        print(f"{model}: using the benchmark-trained run {weights}", flush=True)
    print("$ " + " ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    md.write_text(res.stdout)
    print(res.stdout, flush=True)
    print(f"{model}: {time.perf_counter() - t0:.0f} s, exit {res.returncode}", flush=True)
    return json.loads(js.read_text()) if res.returncode == 0 and js.is_file() else None


def best_rows(report: dict) -> list[dict]:
    """The fastest passing row of each precision (the PyTorch reference first)."""
    rows = [r for r in report["rows"] if r["ok"] and r["p50_ms"] is not None]
    out = [r for r in rows if r["variant"] == "eager"]
    for precision in ("fp32", "fp16", "int8"):
        cands = [r for r in rows if r["precision"] == precision and r["variant"] != "eager"]
        if cands:
            out.append(min(cands, key=lambda r: r["p50_ms"]))
    return out


def summary(reports: list[dict]) -> str:
    from edgevc.bench.table import machine_line

    machines = {machine_line(r["machine"], r["threads"]) for r in reports}
    lines = ["# edgevc bench: summary", "",
             *(f"- machine ({', '.join(r['model'] for r in reports if machine_line(r['machine'], r['threads']) == m)}):"
               f" {m}." for m in sorted(machines)), "",
             "Fastest passing row of each precision per model; speed-up over PyTorch eager fp32 in the same run. "
             "Full tables: `results/bench_<model>.md` (every target x precision, ✅ or ❌ with the reason).", "",
             "| model | clip | row | runs as | p50 ms | ms/frame @hop | speed-up | max abs diff | rel L2 | "
             "top-1 agr. | accuracy | GFLOP/s | % peak |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for rep in reports:
        clip = f"{rep['clip']['num_frames']}x{rep['clip']['size']}²"
        for r in best_rows(rep):
            name = f"{r['target']} {r['precision']}" + ("" if r["variant"] in ("artifact", "eager")
                                                        else f" ({r['variant']})")

            def f(x: float | None, fmt: str) -> str:
                return "–" if x is None else format(x, fmt)

            lines.append(f"| {rep['model']} | {clip} | {name} | {r['runs_as']} | {f(r['p50_ms'], '.2f')} | "
                         f"{f(r['ms_per_frame'], '.3f')} | {f(r['speedup_vs_torch'], '.2f')}x | "
                         f"{f(r['max_abs_diff'], '.2e')} | {f(r['rel_l2'], '.2e')} | "
                         f"{f(r['top1_agreement'], '.1%')} | {f(r.get('accuracy'), '.1%')} | {f(r['gflops'], '.1f')} | "
                         f"{f(None if r['peak_share'] is None else 100 * r['peak_share'], '.0f')} |")
    lines += ["", "Notes (from each run):", ""]
    for rep in reports:
        lines.append(f"- **{rep['model']}**: {rep['notes'][0]}")
        lines += [f"  - {n}" for n in rep["notes"][1:2] if "top-1 agreement" in n]
    return "\n".join(lines) + "\n"


def with_earlier_runs(reports: list[dict], out: Path) -> list[dict]:
    """This run's reports plus the committed ``bench_MODEL.json`` of zoo models it did not run, in zoo order.

    Running some models (``--models x3d_xs``) refreshes their tables without dropping the others from the
    summary; each model's row keeps the machine line and date of its own run (in its JSON).
    """
    ran = {r["model"] for r in reports}
    earlier = [json.loads(p.read_text()) for m in MODELS if m not in ran and (p := out / f"bench_{m}.json").is_file()]
    order = {m: i for i, m in enumerate(MODELS)}
    return sorted(reports + earlier, key=lambda r: order.get(r["model"], len(order)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--targets", default="all")
    p.add_argument("--precisions", default="fp32,int8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--budget", type=float, default=600.0, help="seconds of timing per model (after exports)")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    reports, failed = [], []
    for model in args.models:
        rep = bench_one(model, args)
        (reports if rep is not None else failed).append(rep or model)
    if reports:
        from edgevc.bench.plot import plot_bench

        reports = with_earlier_runs(reports, args.out)

        (args.out / "bench_summary.md").write_text(summary(reports))
        plot_bench(reports, args.out / "bench_all.png", title="edgevc bench: every passing row of "
                   + ", ".join(r["model"] for r in reports))
        print(f"wrote {args.out / 'bench_summary.md'} and {args.out / 'bench_all.png'}")
    if failed:
        print(f"FAILED: {', '.join(failed)} (see the output above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
