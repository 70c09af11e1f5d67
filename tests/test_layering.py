"""The device side never imports torch; nothing below imports from above."""

from __future__ import annotations

import subprocess
import sys

import pytest

DEVICE_MODULES = ["edgevc.spec", "edgevc.sampling", "edgevc.video", "edgevc.assets", "edgevc.runtime",
                  "edgevc.cli.main", "edgevc.bench.measure", "edgevc.bench.table", "edgevc.bench.accuracy"]


@pytest.mark.parametrize("module", DEVICE_MODULES)
def test_device_side_imports_without_torch(module):
    code = f"import sys, {module}; bad = [m for m in ('torch', 'torchvision', 'nncf') if m in sys.modules]; " \
           "print(','.join(bad)); sys.exit(1 if bad else 0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, f"{module} pulled in {proc.stdout.strip()} {proc.stderr[-500:]}"


def test_cli_help_does_not_import_torch():
    code = "import sys; from edgevc.cli.main import build_parser; build_parser(); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "False", proc.stderr[-500:]
