"""What ``edgevc compress`` measured: one row per artifact, a table per target, JSON and Markdown.

Drops are in percentage points of video top-1 against the same target's
fp32 artifact (``fp32 - int8``; positive = lost), all measured through the
artifacts with ``edgevc.runtime`` on the held-out split. The acceptance
line of issue #6 is ``QAT_DROP_LIMIT`` (0.5 point) for every target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgevc.compress.evaluate import ArtifactAccuracy

VARIANTS = ("fp32", "ptq", "qat")
QAT_DROP_LIMIT = 0.5  # percentage points of video top-1


@dataclass
class VariantResult:
    """One artifact: how it was made, its size, the export's verification, and its measured accuracy."""

    target: str
    variant: str
    precision: str
    method: str
    folder: str
    size_bytes: int = 0
    export_seconds: float = 0.0
    verify_passed: bool | None = None
    verify_failures: list[str] = field(default_factory=list)
    verified_against: str = ""
    accuracy: ArtifactAccuracy | None = None
    error: str | None = None

    @property
    def top1(self) -> float | None:
        return self.accuracy.video_top1 if self.accuracy else None


@dataclass
class CompressResult:
    """Everything one ``edgevc compress`` run produced; saved as ``compress.json`` and ``compress.md``."""

    model: str
    labels: list[str]
    weights: str
    weights_sha256: str
    recipe: dict[str, Any]
    split: dict[str, Any]
    torch_fp32: dict[str, Any] | None
    variants: list[VariantResult] = field(default_factory=list)
    qat: dict[str, dict[str, Any]] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    command: str | None = None
    out: str = ""

    def get(self, target: str, variant: str) -> VariantResult | None:
        return next((v for v in self.variants if v.target == target and v.variant == variant), None)

    def rows(self) -> list[dict[str, Any]]:
        """Per target: top-1 of fp32, PTQ and QAT, the drops in points, sizes, verification."""
        out = []
        for target in dict.fromkeys(v.target for v in self.variants):
            row: dict[str, Any] = {"target": target}
            base = self.get(target, "fp32")
            for name in VARIANTS:
                v = self.get(target, name)
                row[f"{name}_top1"] = v.top1 if v else None
                row[f"{name}_mb"] = round(v.size_bytes / 1e6, 3) if v and v.size_bytes else None
                row[f"{name}_verify"] = v.verify_passed if v else None
                row[f"{name}_error"] = v.error if v else None
                if name != "fp32":
                    row[f"{name}_drop_pt"] = drop(base, v)
            row["qat_within_limit"] = (row["qat_drop_pt"] is not None and row["qat_drop_pt"] <= QAT_DROP_LIMIT)
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["table"] = self.rows()
        d["qat_drop_limit_pt"] = QAT_DROP_LIMIT
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompressResult:
        """Back from :meth:`to_dict` (``compress.json``): rebuild a record's Markdown with this code."""
        fields = {k: v for k, v in d.items() if k not in ("table", "qat_drop_limit_pt", "variants")}
        variants = [VariantResult(**{**v, "accuracy": ArtifactAccuracy(**v["accuracy"]) if v.get("accuracy") else None})
                    for v in d.get("variants", [])]
        return cls(**fields, variants=variants)

    def table(self) -> str:
        """The plain-text table ``edgevc compress`` prints."""
        lines = [f"{self.model} on {self.split.get('videos')} held-out videos x {self.split.get('clips_per_video')} "
                 f"clips (video top-1 through edgevc.runtime; drop = fp32 - int8 in points)"]
        head = f"{'target':<11} {'fp32':>8} {'PTQ (drop)':>17} {'QAT (drop)':>17}  {'MB fp32/PTQ/QAT':<20} verify"
        lines += [head, "-" * len(head)]
        for r in self.rows():
            sizes = "/".join(_num(r[f"{n}_mb"], "{:.2f}") for n in VARIANTS)
            verify = " ".join(f"{n}:{_ok(r[f'{n}_verify'])}" for n in VARIANTS)
            lines.append(f"{r['target']:<11} {_pct(r['fp32_top1']):>8} {_cell(r, 'ptq'):>17} {_cell(r, 'qat'):>17}  "
                         f"{sizes:<20} {verify}")
        errors = [f"{v.target} {v.variant}: {v.error}" for v in self.variants if v.error]
        return "\n".join(lines + [f"failed: {e}" for e in errors])

    def markdown(self) -> str:
        """The same table in Markdown, with the QAT runs and the machine, for ``benchmarks/``."""
        out = [f"# edgevc compress: {self.model}", "",
               f"Held-out split: {self.split.get('videos')} videos x {self.split.get('clips_per_video')} clips "
               f"({self.split.get('source')}). Video top-1 of each artifact through `edgevc.runtime` "
               f"(runtime options: {self.split.get('runtime_options')}); drop = fp32 - int8, in points.", ""]
        if self.torch_fp32:
            out += [f"PyTorch fp32 (from the training run): video top-1 {_pct(self.torch_fp32.get('video_top1'))}.", ""]
        out += ["| target | fp32 | PTQ (drop) | QAT (drop) | QAT drop <= 0.5 | MB fp32 / PTQ / QAT | verified |",
                "|---|---|---|---|---|---|---|"]
        for r in self.rows():
            sizes = " / ".join(_num(r[f"{n}_mb"], "{:.2f}") for n in VARIANTS)
            verify = ", ".join(f"{n} {_ok(r[f'{n}_verify'])}" for n in VARIANTS)
            out.append(f"| {r['target']} | {_pct(r['fp32_top1'])} | {_cell(r, 'ptq')} | {_cell(r, 'qat')} | "
                       f"{'yes' if r['qat_within_limit'] else 'no'} | {sizes} | {verify} |")
        against: dict[tuple[str, str], list[str]] = {}  # (variant, reference) -> targets
        for v in self.variants:
            if v.verified_against:
                against.setdefault((v.variant, v.verified_against), []).append(v.target)
        if against:
            out += ["", "Each export was verified against the network it was made from, run in torch: "
                    + "; ".join(f"{n} ({', '.join(ts)}) against {a}" for (n, a), ts in against.items()) + "."]
        if self.qat:
            out += ["", "| QAT run | steps | clips | seconds | loss first -> last 20 | stopped by |",
                    "|---|---|---|---|---|---|"]
            for name, q in self.qat.items():
                s = q.get("stats", {})
                out.append(f"| {name} | {s.get('steps')} | {s.get('clips')} | {s.get('seconds')} | "
                           f"{_num(s.get('loss_first'), '{:.3f}')} -> {_num(s.get('loss_last20'), '{:.3f}')} | "
                           f"{s.get('stopped')} |")
        errors = [f"- {v.target} {v.variant}: {v.error}" for v in self.variants if v.error]
        if errors:
            out += ["", "Failed:", *errors]
        m = self.machine
        versions = ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())
        out += ["", f"Machine: {m.get('cpu')}, {m.get('cores')} cores, load {m.get('loadavg_1m')} at the start; "
                    f"{versions}", "",
                f"Reproduce: `{self.command or 'edgevc compress RECIPE.yaml'}` ({self.seconds:.0f} s)"]
        return "\n".join(out) + "\n"


def drop(base: VariantResult | None, other: VariantResult | None) -> float | None:
    """``(fp32 - int8) * 100`` in points, rounded to 0.01; None when either was not measured."""
    if base is None or other is None or base.top1 is None or other.top1 is None:
        return None
    return round((base.top1 - other.top1) * 100, 2)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else fmt.format(x)


def _ok(x: bool | None) -> str:
    return {True: "ok", False: "FAIL", None: "-"}[x]


def _cell(row: dict[str, Any], name: str) -> str:
    if row[f"{name}_top1"] is None:
        return "failed" if row[f"{name}_error"] else "-"
    return f"{_pct(row[f'{name}_top1'])} ({row[f'{name}_drop_pt']:+.2f})"
