"""Re-verify a compress run's ExecuTorch QAT artifact against both references (issue #6).

``edgevc compress`` used to verify a QAT artifact against the trained fp32 network; it now verifies it
against the network it was made from (the PT2E QAT weights in fp32). This script runs the export's own
verification on the same 16 verification videos both ways, on an existing run, and records the two
reports, so the change is measured rather than asserted::

    edgevc compress recipes/compress_tsm_mobilenet_v2.yaml --targets executorch \
        --out runs/compress_tsm_mobilenet_v2_et_obs
    python benchmarks/reverify_qat.py runs/compress_tsm_mobilenet_v2_et_obs recipes/compress_tsm_mobilenet_v2.yaml

Writes ``results/reverify_<model>_executorch_qat.json``. The artifact is copied to a scratch folder first
(verification writes verify.json): the run is left as it was.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch

    from edgevc.compress.pipeline import _setup
    from edgevc.compress.recipe import load_compress_recipe
    from edgevc.export.driver import run_verification
    from edgevc.export.profiles import resolve
    from edgevc.models import create
    from edgevc.report.machine import machine_info
    from edgevc.spec import ArtifactMeta

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="an edgevc compress output folder with executorch-qat/ and qat_xnnpack.pt")
    ap.add_argument("recipe", help="the compress recipe of that run")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    torch.set_num_threads(2)
    recipe = load_compress_recipe(args.recipe, ["targets=[executorch]"])
    ctx = _setup(recipe, args.run, print)
    qat = create(recipe.model.name, pretrained=args.run / "qat_xnnpack.pt", num_classes=len(ctx.labels),
                 **recipe.model.kwargs).eval()
    meta = ArtifactMeta.load(args.run / "executorch-qat")
    reports = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "executorch-qat"
        shutil.copytree(args.run / "executorch-qat", folder)
        for name, ref in (("trained_fp32", ctx.model), ("qat_weights_fp32", qat)):
            rep = run_verification(folder, ref, meta, resolve("executorch", "int8"), True, recipe.verify.clips,
                                   recipe.verify.random_clips, 2, {}, {}, sources=ctx.verify_videos)
            print(f"against {name}: passed {rep.passed}\n{rep.table()}")
            reports[name] = json.loads((folder / "verify.json").read_text())
    out = args.out / f"reverify_{recipe.model.name}_executorch_qat.json"
    out.write_text(json.dumps({"run": str(args.run), "recipe": args.recipe, "artifact_sha256": meta.files,
                               "command": " ".join(["python", "benchmarks/reverify_qat.py", *sys.argv[1:]]),
                               "reports": reports, "machine": machine_info()}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
