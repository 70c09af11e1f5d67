"""int8 of I3D on OpenVINO: plain PTQ vs NNCF accuracy control, against PyTorch fp32 on 3 x 32 real clips.

What it measures, per variant (plain PTQ; accuracy control with a limit of 0.05 and of 0.03 on the logits'
mean relative L2 error; and the fp32 model run in OpenVINO's default precision, bf16 on a CPU with AMX or
AVX-512 BF16, as the reference point of "what any reduced precision does"):

- the logits' relative L2 error against PyTorch fp32 (mean over clips), with the f32 hint so only the
  quantization is measured;
- how many of the clips' top-1 labels change, and PyTorch's probability margin (top-1 minus top-2) on each
  changed clip: a near-tie flips under any perturbation;
- latency per clip at the default precision (what a device gets) and with the f32 hint, median of 8 runs.

The variants quantize through :func:`edgevc.export.support.nncf_quantize`, the code the export runs, on the
same 32 calibration clips (phase 0 of the four real videos); the three verification sets are other windows of
the same videos (phases 0.5 -- the export's own verification set -- 0.25 and 0.75). Results go to
``benchmarks/results/int8_accuracy_control.{json,md}``. About 25 minutes on 2 cores (PyTorch references
for 96 clips, then one accuracy-control search per limit)::

    python benchmarks/int8_accuracy_control.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgevc.report.machine import machine_info  # noqa: E402

MODEL = "i3d_k400"
BASE = {"fast_bias_correction": False, "range_estimator": "minmax"}
VARIANTS = {
    "plain PTQ": BASE,
    "accuracy control 0.05": {**BASE, "accuracy_control_rel_l2": 0.05},
    "accuracy control 0.03": {**BASE, "accuracy_control_rel_l2": 0.03},
}
SETS = {"phase 0.5 (the export's verification set)": 0.5, "phase 0.25": 0.25, "phase 0.75": 0.75}


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def compare(got: np.ndarray, ref: np.ndarray) -> dict:
    p = np.sort(softmax(ref), 1)
    margin = p[:, -1] - p[:, -2]
    flipped = np.where(got.argmax(1) != ref.argmax(1))[0]
    rel = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)
    return {"clips": len(ref), "rel_l2": round(float(rel.mean()), 5), "rel_l2_worst": round(float(rel.max()), 5),
            "top1_flipped": len(flipped), "flipped_margins": [round(float(margin[i]), 4) for i in flipped],
            "decisive_clips": int((margin >= 0.1).sum()),
            "decisive_flipped": int(sum(margin[i] >= 0.1 for i in flipped))}


def latency(core, model, x: np.ndarray, config: dict, runs: int = 8) -> float:
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 2, **config})
    req = compiled.create_infer_request()
    for _ in range(2):
        req.infer([x])
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        req.infer([x])
        times.append(time.perf_counter() - t)
    return round(float(np.median(times)) * 1000, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()

    import openvino as ov
    import torch

    from edgevc.export import calib as C
    from edgevc.export.driver import export_model
    from edgevc.export.support import nncf_quantize
    from edgevc.models import create
    from edgevc.spec import ArtifactMeta

    torch.set_num_threads(2)
    load_start = machine_info()["loadavg_1m"]
    cache = Path.home() / ".cache" / "edgevc" / "bench" / "artifacts" / f"{MODEL}-openvino-fp32-32x224"
    export_model(MODEL, "openvino", "fp32", out=cache, if_missing=True, log=None)
    meta = ArtifactMeta.load(cache)
    core = ov.Core()
    fp32 = core.read_model(cache / meta.model_file)
    name = fp32.inputs[0].get_any_name()
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}

    def run(model, clips, config) -> np.ndarray:
        compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 2, **config})
        return np.concatenate([compiled({name: x})[0] for x in clips])

    sets = {k: list(C.RealClips(meta.clip, meta.preproc, 32, phase=v)) for k, v in SETS.items()}
    net = create(MODEL, pretrained=True).eval()
    with torch.no_grad():
        refs = {k: np.concatenate([net(torch.from_numpy(x)).numpy() for x in clips]) for k, clips in sets.items()}
    calib = list(C.RealClips(meta.clip, meta.preproc, 32, phase=0.0))
    x = sets[next(iter(SETS))][0]

    rows = []
    models = {"fp32 in the default precision (bf16 here)": (fp32, {}, {})}
    for label, options in VARIANTS.items():
        t = time.perf_counter()
        info: dict = {}
        q = nncf_quantize(fp32, lambda: iter(calib), [name], {**options, "threads": 2}, info)
        models[label] = (q, f32, {"quantize_seconds": round(time.perf_counter() - t, 1), **info})
    for label, (model, config, extra) in models.items():
        figures = {k: compare(run(model, clips, config), refs[k]) for k, clips in sets.items()}
        total = {"clips": sum(f["clips"] for f in figures.values()),
                 "top1_flipped": sum(f["top1_flipped"] for f in figures.values()),
                 "decisive_flipped": sum(f["decisive_flipped"] for f in figures.values()),
                 "rel_l2": round(float(np.mean([f["rel_l2"] for f in figures.values()])), 5)}
        ac = extra.get("accuracy_control", {})
        rows.append({"variant": label, "parity_runs_as": "f32 hint" if config else "default precision",
                     "sets": figures, "total": total,
                     "ms_default_precision": latency(core, model, x, {}), "ms_f32_hint": latency(core, model, x, f32),
                     "reverted_to_float": ac.get("reverted_to_float"), "quantized_ops": ac.get("quantized_ops"),
                     "quantize_seconds": extra.get("quantize_seconds")})
        print(json.dumps(rows[-1]["total"] | {"variant": label, "ms": rows[-1]["ms_default_precision"]}), flush=True)
    machine = machine_info()
    machine["loadavg_1m_start"] = load_start
    result = {"model": MODEL, "input": list(meta.input_shape), "calibration_clips": len(calib), "rows": rows,
              "machine": machine}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "int8_accuracy_control.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"## {MODEL} int8 on OpenVINO: plain PTQ vs accuracy control ({len(calib)} calibration clips)", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, flags {' '.join(machine['flags'])}; "
             f"load {load_start} at the start, {machine['loadavg_1m']} at the end; 2 threads.", "",
             "| variant | ops in float | rel. L2 (mean) | top-1 flipped | of them decisive | margins of the flips "
             "| ms/clip default | ms/clip f32 hint |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        margins = sorted(m for f in r["sets"].values() for m in f["flipped_margins"])
        ops = "-" if r["quantized_ops"] is None else f"{r['reverted_to_float']} of {r['quantized_ops']}"
        lines.append(f"| {r['variant']} | {ops} | {r['total']['rel_l2']:.3f} | {r['total']['top1_flipped']} of "
                     f"{r['total']['clips']} | {r['total']['decisive_flipped']} | {margins} | "
                     f"{r['ms_default_precision']} | {r['ms_f32_hint']} |")
    lines += ["", "Parity against PyTorch fp32 with the f32 hint (the bf16 row: at the default precision); "
              "a decisive clip is one where PyTorch's top-1 beats its top-2 by >= 0.1 in probability."]
    (args.out / "int8_accuracy_control.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
