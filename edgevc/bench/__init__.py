"""``edgevc bench``: every export target x precision timed against PyTorch eager fp32, in one run.

- :mod:`edgevc.bench.cells`: exports on demand, cached by model, target, precision and input;
- :mod:`edgevc.bench.peak`: this machine's fp32 / bf16 / int8 GEMM peak, measured in the same run;
- :mod:`edgevc.bench.measure`: interleaved timing (A B C A B C ...), warm-up, raw samples, percentiles;
- :mod:`edgevc.bench.accuracy`: video-level top-1 on a labelled split, torch-free;
- :mod:`edgevc.bench.table`: rows and report -> Markdown and JSON, the Pareto front, the speed-up note;
- :mod:`edgevc.bench.plot`: latency vs GMACs and latency vs accuracy/agreement (matplotlib);
- :mod:`edgevc.bench.runner`: :func:`run_bench` ties them together.

Modules are imported lazily: ``import edgevc.bench`` pulls in neither torch nor a runtime.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BenchReport", "BenchRequest", "BenchRow", "pareto_front", "run_bench"]


def __getattr__(name: str) -> Any:
    if name in ("BenchRequest", "run_bench"):
        from edgevc.bench import runner

        return getattr(runner, name)
    if name in ("BenchReport", "BenchRow", "pareto_front"):
        from edgevc.bench import table

        return getattr(table, name)
    raise AttributeError(f"module 'edgevc.bench' has no attribute '{name}'")
