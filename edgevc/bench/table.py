"""A bench's results as data: one :class:`BenchRow` per timed configuration, rendered to Markdown and JSON.

Conventions, also printed under every table:

- latency is per clip (``Model.infer`` on a preprocessed real clip), p50/p90/p99 over the interleaved rounds;
- clips/s = 1000 / p50; ms/frame = p50 / hop, the amortized cost per source frame when a
  stream classifies every ``hop`` frames (the artifact's clip hop, default half the clip span);
- GMACs per clip are multiply-adds; GFLOP/s = 2 * MACs / p50 (integer ops for int8);
  "% peak" divides by the GEMM peak of the arithmetic the row runs in (fp32, bf16 or int8);
- parity (max abs diff, rel L2, top-1 agreement) is the artifact's own ``verify.json``
  on real clips against PyTorch fp32 -- not recomputed here;
- speed-up = PyTorch eager fp32 p50 / row p50, measured in the same interleaved loop.

:func:`pareto_front` picks the rows no other row beats on both axes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, FAIL = "✅", "❌"
SPEEDUP_TARGET = 5.0
# the keys every JSON row carries (the contract; more follow them)
ROW_KEYS = ("target", "precision", "status", "size_mb", "gmacs", "p50_ms", "p90_ms", "p99_ms",
            "speedup_vs_torch", "top1_agreement", "max_abs_diff")


@dataclass
class BenchRow:
    """One configuration: a target x precision (x runtime variant), or the PyTorch eager reference."""

    target: str
    precision: str
    status: str                       # OK or FAIL
    reason: str = ""                  # why FAIL (first line), or a remark
    variant: str = "artifact"         # "artifact", a profile variant ("default-precision"), or "eager"
    runs_as: str = ""                 # the arithmetic it ran in: f32, bf16, int8+f32, int8+bf16...
    peak_kind: str = "fp32"           # which GEMM peak "% peak" divides by
    size_mb: float | None = None
    gmacs: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    clips_per_s: float | None = None
    hop: int | None = None
    ms_per_frame: float | None = None
    max_abs_diff: float | None = None
    rel_l2: float | None = None
    rel_l2_limit: float | None = None
    top1_agreement: float | None = None
    top1_agreement_decisive: float | None = None
    parity_clips: int | None = None
    accuracy: float | None = None
    accuracy_note: str = ""
    speedup_vs_torch: float | None = None
    speedup_paired: float | None = None
    gflops: float | None = None
    peak_share: float | None = None
    artifact: str | None = None
    runtime_options: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    samples_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def label(self) -> str:
        extra = "" if self.variant in ("artifact", "eager") else f" ({self.variant})"
        return f"{self.target} {self.precision}{extra}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {**{k: d.pop(k) for k in ROW_KEYS}, "ok": self.ok, **d}


@dataclass
class BenchReport:
    """Everything one ``edgevc bench`` measured, with the machine and settings it ran with."""

    model: str
    clip: dict[str, Any]
    threads: int
    machine: dict[str, Any]
    peak: dict[str, Any] | None
    rows: list[BenchRow]
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "clip": self.clip, "threads": self.threads, "machine": self.machine,
                "peak": self.peak, "settings": self.settings, "timing": self.timing, "notes": self.notes,
                "rows": [r.to_dict() for r in self.rows]}

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, default=str, ensure_ascii=False) + "\n")
        return path

    def to_markdown(self) -> str:
        return render_markdown(self)


def machine_line(machine: dict[str, Any], threads: int) -> str:
    """``Intel(R) Xeon(R) Processor, 2 cores, flags avx2 avx512f ...; load 1.5; 2 threads``."""
    flags = " ".join(machine.get("flags", [])) or "none of interest"
    return (f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, flags {flags}; "
            f"load {machine.get('loadavg_1m', '?')} (1 min) at the start; {threads} threads for every framework")


COLUMNS = ("target", "precision", "runs as", "status", "size MB", "GMACs", "p50 ms", "p90 ms", "p99 ms",
           "clips/s", "ms/frame @hop", "max abs diff", "rel L2 (limit)", "top-1 agr.", "accuracy", "speed-up",
           "GFLOP/s", "% peak")


def _f(x: float | None, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def row_cells(r: BenchRow) -> list[str]:
    """The Markdown cells of one row, in :data:`COLUMNS` order."""
    status = r.status if r.ok else f"{FAIL} {r.reason}"
    if r.ok and r.reason:
        status = f"{OK} ({r.reason})"
    rel = _f(r.rel_l2, ".2e")
    if r.rel_l2 is not None and r.rel_l2_limit is not None:
        rel += f" (≤{r.rel_l2_limit:g})"
    agr = _f(r.top1_agreement, ".1%")
    if r.top1_agreement is not None and r.parity_clips:
        agr += f" of {r.parity_clips}"
    acc = _f(r.accuracy, ".1%") if r.accuracy is not None else (r.accuracy_note and "n/a") or "–"
    variant = "" if r.variant in ("artifact",) else f" ({r.variant})"
    return [r.target + variant, r.precision, r.runs_as or "–", status.replace("|", "/"), _f(r.size_mb, ".1f"),
            _f(r.gmacs, ".3f"), _f(r.p50_ms, ".2f"), _f(r.p90_ms, ".2f"), _f(r.p99_ms, ".2f"),
            _f(r.clips_per_s, ".1f"), _f(r.ms_per_frame, ".3f"), _f(r.max_abs_diff, ".2e"), rel, agr, acc,
            "–" if r.speedup_vs_torch is None else f"{r.speedup_vs_torch:.2f}x", _f(r.gflops, ".1f"),
            _f(None if r.peak_share is None else 100 * r.peak_share, ".0f")
            + ("" if r.peak_share is None else f" of {r.peak_kind}")]


def markdown_table(rows: Sequence[BenchRow]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(report: BenchReport) -> str:
    """The whole report: title, machine, peak, settings, the table, then the notes."""
    clip = report.clip
    out = [f"## edgevc bench {report.model}: {clip.get('num_frames')} frames x {clip.get('size')}², "
           f"hop {clip.get('hop')}", "",
           f"Machine: {machine_line(report.machine, report.threads)}."]
    if report.peak:
        from edgevc.bench.peak import Peak

        out.append(f"GEMM peak, measured before the latency loop: {Peak(**_peak_args(report.peak)).describe()}.")
    t = report.timing
    if t:
        out.append(f"Timing: {t.get('rounds')} interleaved rounds of one clip per row ({t.get('stopped')}), "
                   f"{t.get('warmup')} warm-up rounds, {t.get('clips')} real clips; medians and percentiles "
                   f"over rounds.")
    out += ["", markdown_table(report.rows), ""]
    out += [f"- {n}" for n in report.notes]
    return "\n".join(out).rstrip() + "\n"


def _peak_args(d: dict[str, Any]) -> dict[str, Any]:
    keys = ("threads", "fp32", "bf16", "int8", "sizes", "notes")
    args = {k: d[k] for k in keys if k in d}
    if "sizes" in args:
        args["sizes"] = tuple(args["sizes"])
    return args


def pareto_front(xs: Sequence[float], ys: Sequence[float], maximize_y: bool = False) -> list[int]:
    """Indices of the points no other point beats: smaller-or-equal x and better-or-equal y, one strictly.

    x is always minimised (latency, GMACs); y is minimised, or maximised with
    ``maximize_y`` (accuracy, agreement). Returned sorted by x. Example:
    ``pareto_front([1, 2, 3], [0.5, 0.9, 0.8], maximize_y=True) == [0, 1]``
    (the third is slower and worse than the second).
    """
    pts = [(float(x), -float(y) if maximize_y else float(y)) for x, y in zip(xs, ys, strict=True)]
    front = []
    for i, (xi, yi) in enumerate(pts):
        dominated = any((xj <= xi and yj <= yi) and (xj < xi or yj < yi) for j, (xj, yj) in enumerate(pts) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (pts[i][0], pts[i][1]))


def speedup_note(rows: Sequence[BenchRow], peak: dict[str, Any] | None, target: float = SPEEDUP_TARGET) -> str:
    """The acceptance note: the fastest passing int8 row's speed-up over PyTorch eager fp32, and if it is
    under ``target``, the best ratio reached and why, from the peaks measured in the same run."""
    torch_row = next((r for r in rows if r.variant == "eager"), None)
    int8 = [r for r in rows if r.precision == "int8" and r.ok and r.speedup_vs_torch is not None]
    if torch_row is None or torch_row.p50_ms is None:
        return "no PyTorch eager fp32 row: no speed-up measured"
    if not int8:
        return f"no int8 artifact passed its verification and ran here: no int8 speed-up (target ≥ {target:g}x)"
    best = max(int8, key=lambda r: r.speedup_vs_torch or 0.0)
    head = f"fastest passing int8 artifact: {best.label}, {best.speedup_vs_torch:.2f}x PyTorch eager fp32"
    if best.speedup_vs_torch >= target:
        return f"{head} (target ≥ {target:g}x: reached)"
    why = []
    fp32, int8_peak = (peak or {}).get("fp32"), (peak or {}).get("int8")
    if torch_row.gflops and fp32:
        why.append(f"PyTorch eager already reaches {torch_row.gflops:.0f} GFLOP/s, "
                   f"{torch_row.gflops / fp32:.0%} of the fp32 GEMM peak ({fp32:.0f})")
    if int8_peak and fp32:
        why.append(f"the int8 GEMM peak ({int8_peak:.0f} GOP/s) is {int8_peak / fp32:.1f}x the fp32 one")
    if int8_peak and torch_row.gflops:
        why.append(f"so int8 arithmetic alone caps the gain near {int8_peak / torch_row.gflops:.1f}x "
                   f"(int8 peak / PyTorch achieved)")
    if best.gflops and int8_peak:
        why.append(f"the best int8 artifact reaches {best.gflops:.0f} GOP/s ({best.gflops / int8_peak:.0%} of "
                   f"the int8 peak)")
    if not why:
        why.append("no GEMM peak was measured (--no-peak) to say why")
    return f"{head}: under the {target:g}x target on this CPU; " + "; ".join(why)
