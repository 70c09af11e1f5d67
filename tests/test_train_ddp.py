"""``torchrun --nproc-per-node 2``: two gloo processes train the tiny recipe and end with the same weights."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from edgevc.train.distributed import state_sha256

ROOT = Path(__file__).resolve().parents[1]


def _torchrun() -> list[str]:
    exe = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.timeout(120)
def test_two_processes_end_with_identical_weights(tmp_path):
    from edgevc.data.synth import make_bench
    from edgevc.train import load_recipe

    make_bench(load_recipe(ROOT / "recipes" / "tiny_ci.yaml").data.bench)  # generate once, outside the timing
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [*_torchrun(), "--standalone", "--nproc-per-node", "2", "-m", "edgevc", "train",
           str(ROOT / "recipes" / "tiny_ci.yaml"), "--out", str(tmp_path), "--no-progress", "--json"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])  # only rank 0 prints
    hashes = result["rank_weights_sha256"]
    assert result["world_size"] == 2 and len(hashes) == 2 and hashes[0] == hashes[1]
    # what rank 0 saved is what both ranks held
    assert state_sha256_of(tmp_path / "model.pt") == hashes[0]
    # the 16 training videos were split between the ranks: 8 each, 2 steps of 4 per epoch
    assert [h["steps"] for h in result["history"]] == [2, 2]
    assert result["final"]["videos"] == 8  # every test video evaluated once across the two ranks
    assert "2 process(es)" in proc.stderr and seconds < 60


def state_sha256_of(path: Path) -> str:
    from edgevc.models import create

    model = create("x3d_xs", num_classes=8)
    model.load_state_dict(torch.load(path, weights_only=True))
    return state_sha256(model)
