"""``edgevc compress``: fp32, PTQ and QAT int8 artifacts of a trained network, measured through the runtime.

For every target of the recipe:

1. **fp32**: the trained network exported as it is (:func:`edgevc.export.driver.export_model`
   with a :class:`~edgevc.export.driver.PreparedModel`: the run's classes, clip,
   preprocessing and aggregation go into ``edgevc.json``);
2. **ptq**: the target's own int8 export (NNCF on the ``ov.Model`` / ONNX graph,
   PT2E + XNNPACKQuantizer for ExecuTorch), calibrated on ``ptq.calib_clips``
   clips of TRAINING videos (classes in turn), never the held-out split;
3. **qat**: quantization-aware fine-tuning with BatchNorm frozen, one run per
   flavour: NNCF (:mod:`edgevc.compress.nncf_qat`) for OpenVINO and ONNX, PT2E
   with the XNNPACK quantizer (:mod:`edgevc.compress.xnnpack_qat`) for ExecuTorch.

Each artifact goes through the export's verification against the network it
was made from, run in torch (on other training clips): the trained fp32
network for fp32 and PTQ, the QAT network for QAT (see
:meth:`_Context.prepared`); the row records which. It is then measured on the held-out split
through :func:`edgevc.runtime.load` (:mod:`edgevc.compress.evaluate`). A
failed export is recorded in its row and the others go on.

Files in ``out``: ``<target>-<fp32|ptq|qat>/`` (artifacts), ``qat_nncf.pt`` /
``qat_xnnpack.pt`` (the fine-tuned torch states; their sha256 is the QAT
artifacts' ``weights_sha256``), ``compress.json`` and ``compress.md``.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgevc.compress.evaluate import evaluate_artifact
from edgevc.compress.recipe import CompressRecipe, read_run
from edgevc.compress.report import CompressResult, VariantResult
from edgevc.data.lists import VideoList
from edgevc.errors import EdgevcError
from edgevc.export.driver import PreparedModel

NNCF_TARGETS = ("openvino", "onnx")
PTQ_METHOD = {"openvino": "NNCF PTQ of the ov.Model", "onnx": "NNCF PTQ of the ONNX graph (QDQ)",
              "executorch": "rewrite + PT2E XNNPACKQuantizer static int8"}


@dataclass
class _Context:
    """What every step shares: the recipe, the fp32 network, the splits, the chosen videos."""

    recipe: CompressRecipe
    model: torch.nn.Module
    labels: tuple[str, ...]
    train: VideoList
    test: VideoList
    weights: Path
    calib_videos: list[str]
    verify_videos: list[str]
    macs: int
    out: Path
    log: Callable[[str], None]

    def prepared(self, model: torch.nn.Module, quantized: bool, note: str) -> PreparedModel:
        """``model`` to export; verification compares the artifact with ``model`` itself run in torch.

        For fp32 and PTQ that is the trained fp32 network. For QAT it is the
        network QAT produced (NNCF: with its fake-quantizers; PT2E: its
        weights in fp32, which the target quantizes): the export is checked
        to say what the network it was given says, and what QAT changed
        against fp32 is the accuracy measured through both artifacts. (Against
        the trained fp32 network, a QAT artifact of a 100%-accurate model
        failed at 0.29 relative L2 with every top-1 agreeing: QAT's lower
        loss widens the margins, so logits move while answers stay.)
        """
        r = self.recipe
        return PreparedModel(model=model, clip=r.clip, preproc=r.preproc, labels=self.labels, agg=r.agg,
                             reference=model, quantized=quantized, macs_per_clip=self.macs, note=note)


def compress(recipe: CompressRecipe, out: str | Path | None = None, force: bool = False,
             log: Callable[[str], None] = print, command: str | None = None) -> CompressResult:
    """Run the recipe (see the module docstring); writes ``compress.json`` and ``compress.md`` to ``out``."""
    from edgevc.report.machine import machine_info

    t0 = time.monotonic()
    out = _prepare_out(Path(out or recipe.out or "runs/compress"), force)
    saved = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        ctx = _setup(recipe, out, log)
        result = CompressResult(
            model=recipe.model.name, labels=list(ctx.labels), weights=str(ctx.weights),
            weights_sha256=_sha(ctx.weights), recipe=recipe.to_dict(), split=_split(ctx),
            torch_fp32=_torch_fp32(recipe),
            machine=machine_info(packages=("numpy", "torch", "openvino", "onnxruntime", "executorch", "torchao",
                                           "nncf")), command=command, out=str(out))
        for target in recipe.targets:
            result.variants.append(_variant(ctx, target, "fp32", ctx.prepared(ctx.model, False, "fp32"), ctx.weights,
                                            "fp32 export of the trained network", TRAINED))
            result.variants.append(_variant(ctx, target, "ptq", ctx.prepared(ctx.model, False, "PTQ"), ctx.weights,
                                            PTQ_METHOD[target], TRAINED))
        for flavour, run_qat in (("nncf", _qat_nncf), ("xnnpack", _qat_xnnpack)):
            targets = [t for t in recipe.targets if (t in NNCF_TARGETS) == (flavour == "nncf")]
            if not targets:
                continue
            try:
                run_qat(ctx, result)
            except Exception as err:  # noqa: BLE001 -- recorded in the QAT rows; fp32 and PTQ stay reported
                ctx.log(f"qat {flavour} failed:\n{traceback.format_exc()}")
                result.variants += [VariantResult(target=t, variant="qat", precision="int8", method=f"QAT ({flavour})",
                                                  folder=str(out / f"{t}-qat"), error=_describe(err)) for t in targets]
        result.seconds = round(time.monotonic() - t0, 1)
        (out / "compress.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
        (out / "compress.md").write_text(result.markdown())
        return result
    finally:
        torch.set_num_threads(saved)


def _setup(recipe: CompressRecipe, out: Path, log: Callable[[str], None]) -> _Context:
    from edgevc.models import create
    from edgevc.report.flops import module_macs
    from edgevc.train.loop import resolve_data

    train, test = resolve_data(recipe.as_train_recipe(), log)
    labels = train.labels
    weights = recipe.source.weights_path()
    if not weights.is_file():
        raise EdgevcError(f"source: weights file not found: '{weights}'",
                          hint="train first (edgevc train RECIPE.yaml), or set source.weights")
    if recipe.source.run:
        run_labels = tuple(read_run(recipe.source.run).get("labels") or ())
        if run_labels and run_labels != tuple(labels):
            raise EdgevcError(f"the run was trained on labels {list(run_labels)[:4]}..., the data has "
                              f"{list(labels)[:4]}...", hint="compress with the data the run was trained on")
    model = create(recipe.model.name, pretrained=weights, num_classes=len(labels), **recipe.model.kwargs).eval()
    order = stratified(train, recipe.qat.seed)
    n_cal, n_ver = min(recipe.ptq.calib_clips, len(order)), recipe.verify.clips
    verify = (order[n_cal:] + order)[:n_ver]
    h, w = recipe.preproc.crop
    macs = module_macs(model, (1, 3, recipe.clip.num_frames, h, w))
    log(f"compress {recipe.model.name}: {len(train)} train / {len(test)} held-out videos, {len(labels)} classes; "
        f"weights {weights}; calibration on {n_cal} training videos, verification on {len(verify)} others; "
        f"targets {', '.join(recipe.targets)}")
    return _Context(recipe, model, tuple(labels), train, test, weights, order[:n_cal], verify, macs, out, log)


def stratified(videos: VideoList, seed: int) -> list[str]:
    """Every video path, classes in turn (each class shuffled by ``seed``): the first N cover all classes."""
    by_class: dict[int, list[str]] = {}
    for rec in videos.records:
        by_class.setdefault(rec.label, []).append(str(rec.path))
    rng = np.random.default_rng(seed)
    for paths in by_class.values():
        rng.shuffle(paths)
    longest = max((len(p) for p in by_class.values()), default=0)
    return [by_class[c][i] for i in range(longest) for c in sorted(by_class) if i < len(by_class[c])]


# The PTQ row is plain post-training quantization (the baseline QAT is compared with): the profile's
# accuracy control, which would return sensitive ops to float, is left out of it.
_PLAIN_PTQ = {"accuracy_control_rel_l2": None}


TRAINED = "the trained fp32 network in torch"


def _variant(ctx: _Context, target: str, variant: str, prepared: PreparedModel, weights: Path,
             method: str, verified_against: str) -> VariantResult:
    """Export one artifact with the driver (verified against ``prepared``'s network in torch), then measure it
    on the held-out split."""
    from edgevc.export.driver import export_model
    from edgevc.export.profiles import resolve

    r = ctx.recipe
    precision = "fp32" if variant == "fp32" else "int8"
    folder = ctx.out / f"{target}-{variant}"
    row = VariantResult(target=target, variant=variant, precision=precision, method=method, folder=str(folder),
                        verified_against=verified_against)
    ctx.log(f"--- {target} {variant} ({method})")
    try:
        res = export_model(r.model.name, target, precision, weights=weights, calib=ctx.calib_videos,
                           calib_clips=len(ctx.calib_videos), out=folder, force=True, verify=r.verify.enabled,
                           threads=r.threads, verify_clips=r.verify.clips, random_clips=r.verify.random_clips,
                           verify_sources=ctx.verify_videos, prepared=prepared, log=ctx.log,
                           export_options=_PLAIN_PTQ if variant == "ptq" else None)
    except Exception as err:  # noqa: BLE001 -- one failed artifact is a row of the report, not the end of the run
        row.error = _describe(err)
        ctx.log(f"{target} {variant}: export failed: {row.error}")
        return row
    row.size_bytes, row.export_seconds = model_bytes(folder), round(res.export_seconds, 2)
    if res.verify is not None:
        row.verify_passed, row.verify_failures = res.verify.passed, list(res.verify.failures())
    options = (resolve(target, precision).profile.runtime_options or {}) if r.eval.runtime_options == "profile" else {}
    try:
        row.accuracy = evaluate_artifact(folder, ctx.test, r.eval.clips_per_video, r.threads, dict(options))
    except Exception as err:  # noqa: BLE001 -- the artifact exists but does not run: a row of the report
        row.error = f"evaluation failed: {_describe(err)}"
        ctx.log(f"{target} {variant}: {row.error}")
        return row
    ctx.log(f"{target} {variant}: video top-1 {row.accuracy.video_top1:.4f} on {row.accuracy.videos} held-out "
            f"videos ({row.accuracy.seconds:.0f} s), {row.size_bytes / 1e6:.2f} MB")
    return row


def model_bytes(folder: Path) -> int:
    """Bytes of the model files an artifact lists in ``edgevc.json`` (the JSON side files left out)."""
    from edgevc.spec import ArtifactMeta

    meta = ArtifactMeta.load(folder)
    return sum((folder / name).stat().st_size for name in meta.files if not name.endswith(".json"))


def _qat_loader(ctx: _Context) -> torch.utils.data.DataLoader:
    from edgevc.data.datasets import ClipDataset

    r, cfg = ctx.recipe, ctx.recipe.qat
    ds = ClipDataset(ctx.train, r.clip, r.preproc, train=True, augment=r.augment, seed=cfg.seed)
    if len(ds) < cfg.batch_size:
        raise EdgevcError(f"{len(ds)} training videos is less than one QAT batch of {cfg.batch_size}",
                          hint="lower qat.batch_size")
    return torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                                       generator=torch.Generator().manual_seed(cfg.seed),
                                       num_workers=r.data.workers, persistent_workers=r.data.workers > 0)


def _calib_clips(ctx: _Context) -> list[np.ndarray]:
    from edgevc.export.calib import RealClips

    r = ctx.recipe
    return list(RealClips(r.clip, r.preproc, len(ctx.calib_videos), ctx.calib_videos, phase=0.0))


def _qat_nncf(ctx: _Context, result: CompressResult) -> None:
    from edgevc.compress.nncf_qat import nncf_qat

    cfg = ctx.recipe.qat
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads or ctx.recipe.threads)
    model, stats, info = nncf_qat(ctx.model, _calib_clips(ctx), _qat_loader(ctx), cfg, ctx.log)
    torch.set_num_threads(ctx.recipe.threads)
    state = _save_state(model, ctx.out / "qat_nncf.pt")
    result.qat["nncf"] = {"stats": stats.to_dict(), **info, "state": str(state)}
    ctx.log(f"qat nncf: {stats.steps} steps in {stats.seconds:.0f} s, loss {stats.loss_first:.4f} -> "
            f"{stats.loss_last20:.4f} (last 20), stopped by {stats.stopped}")
    for target in (t for t in ctx.recipe.targets if t in NNCF_TARGETS):
        result.variants.append(_variant(ctx, target, "qat", ctx.prepared(model, True, "NNCF QAT"), state,
                                        info["method"], "the NNCF QAT network in torch (fake-quantized)"))


def _qat_xnnpack(ctx: _Context, result: CompressResult) -> None:
    from edgevc.compress.xnnpack_qat import xnnpack_qat

    cfg = ctx.recipe.qat
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads or ctx.recipe.threads)
    model, stats, info = xnnpack_qat(ctx.model, _qat_loader(ctx), cfg, ctx.log)
    torch.set_num_threads(ctx.recipe.threads)
    state = _save_state(model, ctx.out / "qat_xnnpack.pt")
    result.qat["xnnpack"] = {"stats": stats.to_dict(), **info, "state": str(state)}
    ctx.log(f"qat xnnpack: {stats.steps} steps in {stats.seconds:.0f} s, loss {stats.loss_first:.4f} -> "
            f"{stats.loss_last20:.4f} (last 20), stopped by {stats.stopped}")
    result.variants.append(_variant(ctx, "executorch", "qat", ctx.prepared(model, False, "PT2E QAT weights"), state,
                                    info["method"], "the PT2E QAT weights in fp32 torch"))


def _save_state(model: torch.nn.Module, path: Path) -> Path:
    from edgevc.train.checkpoint import atomic_save

    return atomic_save({k: v.detach().clone() for k, v in model.state_dict().items()}, path)


def _prepare_out(out: Path, force: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise EdgevcError(f"--out '{out}' is a file", hint="pass a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise EdgevcError(f"output folder '{out}' exists and is not empty",
                          hint="pass --force to replace its artifacts, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _split(ctx: _Context) -> dict[str, Any]:
    r = ctx.recipe
    source = f"benchmark '{r.data.bench.name}' test split" if r.data.kind == "bench" else f"{r.data.kind} {r.data.test}"
    return {"source": source, "videos": len(ctx.test), "clips_per_video": r.eval.clips_per_video,
            "runtime_options": r.eval.runtime_options, "calib_videos": len(ctx.calib_videos),
            "verify_videos": len(ctx.verify_videos)}


def _torch_fp32(recipe: CompressRecipe) -> dict[str, Any] | None:
    if not recipe.source.run:
        return None
    final = read_run(recipe.source.run).get("final") or {}
    return {k: final.get(k) for k in ("video_top1", "clip_top1", "videos", "clips_per_video")} if final else None


def _describe(err: Exception) -> str:
    return err.message if isinstance(err, EdgevcError) else f"{type(err).__name__}: {str(err).strip()[:300]}"


def _sha(path: Path) -> str:
    from edgevc.assets import sha256_file

    return sha256_file(path)
