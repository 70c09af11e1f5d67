"""Shared test fixtures: where ../shared is, the real clips, and a quiet torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEVC_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: tests read real clips from ../shared (set EDGEVC_SHARED to its location)")
    return path


@pytest.fixture(scope="session")
def arm_wrestling() -> Path:
    return shared_path("clips", "kinetics", "arm_wrestling.mp4")


@pytest.fixture(scope="session")
def edge_cases() -> Path:
    return shared_path("clips", "edge_cases")


@pytest.fixture(autouse=True, scope="session")
def _threads():
    """Two cores: never let a framework oversubscribe them."""
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        pass
    yield


# Known failures, as data: each is deselected from `make test` (marked slow) with its reason, and listed in
# the closing note. `make test-all` still runs them, so a fix shows up as a pass there.
KNOWN_FAILING: dict[str, str] = {
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        reason = KNOWN_FAILING.get(item.nodeid)
        if reason:
            item.add_marker(pytest.mark.slow)
            item.user_properties.append(("known_failing", reason))
