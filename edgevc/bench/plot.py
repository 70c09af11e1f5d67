"""The bench plot: latency vs GMACs, and latency vs accuracy (or top-1 agreement), with the Pareto front.

One PNG, two panels, one point per timed row (failed rows and rows without
a latency are left out; the table says why):

- left: p50 latency per clip against GMACs per clip (log-log). Within one
  model every row has the same GMACs, so the points form a column; across
  models (``benchmarks/bench_tables.py`` plots them all together) the front
  shows the cheapest-and-fastest choices;
- right: accuracy on the benchmark split when the bench had one, else
  top-1 agreement with PyTorch fp32 on real clips, against latency; the
  front joins the rows no other row beats on both (faster AND at least as
  accurate).

Marker = target, colour = precision; the front is a dashed line through its circled points. With
many points (several models) only the front and the PyTorch rows are named.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgevc.bench.table import pareto_front
from edgevc.errors import MissingDependencyError

# with more points than this (several models on one plot), only the front and the PyTorch rows are named
LABEL_ALL_UP_TO = 14
MARKERS = {"pytorch": "o", "openvino": "s", "onnx": "^", "executorch": "D", "coreml": "X"}
COLOURS = {"fp32": "tab:blue", "fp16": "tab:green", "bf16": "tab:purple", "int8": "tab:red"}


def _points(reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    many = len({r["model"] for r in reports}) > 1
    pts = []
    for rep in reports:
        for row in rep["rows"]:
            if not row.get("ok") or row.get("p50_ms") is None:
                continue
            variant = row.get("variant", "artifact")
            extra = "" if variant in ("artifact", "eager") else f" ({variant}: {row.get('runs_as') or '?'})"
            name = f"{row['target']} {row['precision']}{extra}"
            pts.append({**row, "name": f"{rep['model']}: {name}" if many else name})
    return pts


def plot_bench(reports: Sequence[Any], path: str | Path, title: str | None = None) -> Path:
    """Write the two-panel PNG for one or more bench reports (:class:`BenchReport` or their dicts)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        raise MissingDependencyError("matplotlib", "bench", "the bench plot (--plot)") from None
    dicts = [r.to_dict() if hasattr(r, "to_dict") else r for r in reports]
    pts = _points(dicts)
    use_acc = any(p.get("accuracy") is not None for p in pts)
    ykey, ylabel = ("accuracy", "video top-1 accuracy") if use_acc else \
        ("top1_agreement", "top-1 agreement with PyTorch fp32 (real clips)")
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    _panel(left, pts, "gmacs", "p50_ms", "GMACs per clip (multiply-adds)", "p50 latency per clip (ms)",
           maximize_y=False, logx=True)
    _panel(right, [p for p in pts if p.get(ykey) is not None], "p50_ms", ykey, "p50 latency per clip (ms)",
           ylabel, maximize_y=True, logx=True)
    left.set_yscale("log")
    left.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    left.yaxis.set_minor_formatter(FuncFormatter(_minor_label))
    left.set_title("latency vs compute")
    untrained = any(r.get("variant") == "eager" and r.get("export", {}).get("trained") is False
                    for d in dicts for r in d["rows"])
    right.set_title(f"latency vs {'accuracy' if use_acc else 'agreement'}"
                    + ("" if use_acc or not untrained else "\n(random-init head: agreement means little, "
                       "see rel L2 in the table)"), fontsize=10)
    handles = [plt.Line2D([], [], ls="", marker=m, color="grey", label=t) for t, m in MARKERS.items()]
    handles += [plt.Line2D([], [], ls="", marker="o", color=c, label=p) for p, c in COLOURS.items()]
    handles.append(plt.Line2D([], [], ls="--", marker="o", mfc="none", ms=10, color="black", label="Pareto front"))
    right.legend(handles=handles, fontsize=7, loc="best")
    models = ", ".join(dict.fromkeys(d["model"] for d in dicts))
    machine = dicts[0].get("machine", {}) if dicts else {}
    fig.suptitle(title or f"edgevc bench {models} -- {machine.get('cpu', '?')}, {dicts[0].get('threads')} threads"
                 if dicts else "edgevc bench", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _minor_label(v: float, _pos: int) -> str:
    """Label the 2x and 5x minor ticks of a log axis (0.2, 0.5, 20, 50...), not the others."""
    import math

    if v <= 0:
        return ""
    lead = round(v / 10 ** math.floor(math.log10(v)), 6)
    return f"{v:g}" if lead in (2.0, 5.0) else ""


def _panel(ax: Any, pts: list[dict[str, Any]], xkey: str, ykey: str, xlabel: str, ylabel: str,
           maximize_y: bool, logx: bool) -> None:
    from matplotlib.ticker import FuncFormatter

    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(_minor_label))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    if not pts:
        ax.text(0.5, 0.5, "no row to plot", ha="center", va="center", transform=ax.transAxes)
        return
    for p in pts:
        colour = COLOURS.get("bf16" if str(p.get("runs_as", "")).endswith("bf16") and p["precision"] != "int8"
                             else p["precision"], "tab:gray")
        ax.scatter(p[xkey], p[ykey], marker=MARKERS.get(p["target"], "o"), color=colour, s=42, zorder=3)
    front = pareto_front([p[xkey] for p in pts], [p[ykey] for p in pts], maximize_y=maximize_y)
    ax.plot([pts[i][xkey] for i in front], [pts[i][ykey] for i in front], ls="--", color="black", lw=1, zorder=2)
    ax.scatter([pts[i][xkey] for i in front], [pts[i][ykey] for i in front], s=140, facecolors="none",
               edgecolors="black", lw=1, zorder=4)
    ax.margins(x=0.08, y=0.12)
    named = pts if len(pts) <= LABEL_ALL_UP_TO else \
        [p for i, p in enumerate(pts) if i in front or p.get("variant") == "eager"]
    _labels(ax, named, xkey, ykey)


# label offsets in points, tried in order until one does not overlap a label already placed
# (points are labelled bottom-up, so moving a label up keeps it next to its own point)
OFFSETS = ((6, 3), (6, 13), (6, 23), (-6, 3), (-6, 13), (6, -10), (-6, -10), (6, 33))


def _labels(ax: Any, pts: list[dict[str, Any]], xkey: str, ykey: str) -> None:
    """Annotate every point, nudging a label that would print over an earlier one (greedy, in display space)."""
    ax.figure.canvas.draw()  # fixes the autoscaled limits, so data -> display is final
    scale = ax.figure.dpi / 72.0
    placed: list[tuple[float, float, float, float]] = []
    for p in sorted(pts, key=lambda q: (q[xkey], q[ykey])):
        x, y = ax.transData.transform((p[xkey], p[ykey]))
        w, h = 3.3 * len(p["name"]) * scale, 7.0 * scale
        for dx, dy in OFFSETS:
            left = x + dx * scale if dx > 0 else x + dx * scale - w
            box = (left, y + dy * scale, left + w, y + dy * scale + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        ax.annotate(p["name"], (p[xkey], p[ykey]), fontsize=6, xytext=(dx, dy), textcoords="offset points",
                    ha="left" if dx > 0 else "right")
