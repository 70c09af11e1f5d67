"""This machine's compute ceiling, measured with a GEMM in the same run as the figures compared to it.

A peak copied from a datasheet or measured in another run says little on a
shared 2-vCPU machine (the same fp32 matmul gave 84 and 175 GFLOP/s an hour
apart): :func:`measure_peak` times square matrix products with the bench's
thread count just before the latency loop, and keeps the best of a few
sizes and repeats (a peak, not a typical value):

- ``fp32``: ``torch.matmul`` on float32;
- ``bf16``: ``torch.matmul`` on bfloat16 (AVX-512 BF16 or AMX where the CPU has them);
- ``int8``: ``torch._int_mm`` (int8 x int8 -> int32), where this torch build has it on the CPU.

Each is 2 * n**3 operations per product (a multiply-add counts as 2, as in
the GMACs -> GFLOP/s conversion of the table). A kind that cannot run is
``None`` with the reason in ``notes``, shown as "n/a".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

SIZES = (1024, 2048)
REPEATS = 3


@dataclass(frozen=True)
class Peak:
    """GEMM peaks in GFLOP/s (GOP/s for int8) with ``threads`` threads; None where not measurable."""

    threads: int
    fp32: float | None
    bf16: float | None
    int8: float | None
    sizes: tuple[int, ...] = SIZES
    notes: dict[str, str] = field(default_factory=dict)

    def of(self, kind: str) -> float | None:
        """The peak for a row's arithmetic: ``fp32``, ``bf16`` or ``int8``."""
        return {"fp32": self.fp32, "bf16": self.bf16, "int8": self.int8}.get(kind)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """``fp32 142 GFLOP/s, bf16 1210, int8 640 GOP/s (torch GEMM, 2 threads)``."""
        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.0f}"

        return (f"fp32 {fmt(self.fp32)} GFLOP/s, bf16 {fmt(self.bf16)} GFLOP/s, int8 {fmt(self.int8)} GOP/s "
                f"(torch GEMM {'/'.join(map(str, self.sizes))}², best of {REPEATS}, {self.threads} threads)")


def best_rate(run: Callable[[], Any], ops: float, repeats: int = REPEATS,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """The best of ``repeats`` timed calls of ``run`` (after one warm-up call), in G-ops per second."""
    run()
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        run()
        best = min(best, clock() - t0)
    return ops / max(best, 1e-12) / 1e9


def measure_peak(threads: int, sizes: tuple[int, ...] = SIZES, repeats: int = REPEATS) -> Peak:
    """Measure the fp32, bf16 and int8 GEMM peaks with ``threads`` torch threads (restored afterwards)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    results: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    try:
        gen = torch.Generator().manual_seed(0)
        for kind in ("fp32", "bf16", "int8"):
            best = None
            for n in sizes:
                try:
                    run = _gemm(kind, n, gen)
                    rate = best_rate(run, 2.0 * n ** 3, repeats)
                except (RuntimeError, NotImplementedError, AttributeError, TypeError) as err:
                    notes[kind] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
                    break
                best = rate if best is None else max(best, rate)
            results[kind] = None if best is None else round(best, 1)
    finally:
        torch.set_num_threads(saved)
    return Peak(int(threads), results["fp32"], results["bf16"], results["int8"], tuple(sizes), notes)


def _gemm(kind: str, n: int, gen: Any) -> Callable[[], Any]:
    import torch

    if kind == "int8":
        if not hasattr(torch, "_int_mm"):
            raise NotImplementedError("this torch has no torch._int_mm")
        a = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=gen)
        b = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=gen)
        return lambda: torch._int_mm(a, b)
    dtype = torch.float32 if kind == "fp32" else torch.bfloat16
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    return lambda: torch.matmul(a, b)
