"""A progress bar with loss and accuracy: tqdm on a terminal, plain lines otherwise.

Plain lines (no tqdm, or output piped to a log file) print every ``every``
steps and at the end of the epoch, so CI logs stay readable. Only rank 0
shows anything.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """``update(n, **metrics)`` per step; ``close()`` at the end of an epoch."""

    def __init__(self, total: int, desc: str, enabled: bool = True, every: int = 10,
                 stream: TextIO | None = None) -> None:
        self.total, self.desc, self.enabled, self.every = total, desc, enabled, every
        self.stream = stream or sys.stderr
        self.count = 0
        self.start = time.monotonic()
        self.metrics: dict[str, Any] = {}
        self.bar = None
        if enabled and self.stream.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, file=self.stream, dynamic_ncols=True, leave=True)

    def update(self, n: int = 1, **metrics: Any) -> None:
        self.count += n
        self.metrics = metrics
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix({k: _fmt(v) for k, v in metrics.items()}, refresh=False)
            self.bar.update(n)
        elif self.count % self.every == 0 or self.count == self.total:
            self._line()

    def _line(self) -> None:
        elapsed = time.monotonic() - self.start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.count) / rate if rate > 0 else 0.0
        parts = " ".join(f"{k}={_fmt(v)}" for k, v in self.metrics.items())
        print(f"{self.desc} {self.count}/{self.total} {parts} [{elapsed:.0f}s<{eta:.0f}s]",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.count % self.every != 0 and self.count != self.total:
            self._line()


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
