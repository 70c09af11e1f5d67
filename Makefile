# The two commands a new user types: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
VENV := .venv/bin
export EDGEVC_SHARED ?= $(abspath ../shared)

.PHONY: setup demo test test-all lint

setup:
	@./scripts/setup.sh

## the main job on the built-in default: export i3d_k400 to OpenVINO int8 (cached), stream-classify real clips
demo: setup
	@./scripts/main_job.sh

## the test suite CI runs (slow checks excluded; `make test-all` includes them)
test: setup
	$(VENV)/ruff check edgevc tests benchmarks apps
	$(VENV)/python -m pytest -m "not slow" --timeout 900 $(PYTEST_ARGS)

test-all: setup
	$(VENV)/python -m pytest --timeout 3600 $(PYTEST_ARGS)

lint: setup
	$(VENV)/ruff check edgevc tests benchmarks apps
