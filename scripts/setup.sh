#!/usr/bin/env bash
# Create .venv and install edgevc with everything (idempotent: re-installs only when pyproject.toml changed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "edgevc needs Python >= 3.10 (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.edgevc-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setting up .venv (torch CPU, OpenVINO, ONNX Runtime, ExecuTorch, NNCF, coremltools: ~2 GB, ~2 min) ..."
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v WARNING || true
  # torch first and pinned, so no other package pulls a CUDA build
  .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v WARNING || true
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v WARNING || true
  .venv/bin/python -c "import edgevc, torch, openvino, onnxruntime, executorch, nncf" \
    || { echo "setup failed: see the pip output above" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
