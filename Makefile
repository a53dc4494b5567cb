# `make demo` runs the main job, `make test` runs every check. Both set up .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tierroute-installed
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
export TIERROUTE_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install demo test lint typecheck pytest bench services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch is pinned first: a CPU build of 2.13.0 is on this machine's disk; an unpinned torch pulls a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/tierroute demo --config examples/tierroute.yaml

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

services:
	bash scripts/ensure_services.sh
	bash scripts/ensure_chromium.sh

pytest: install services
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/decision_latency.py
	$(BIN)/python benchmarks/semantic_accuracy.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/overhead_llamaindex.py
	$(BIN)/python benchmarks/overhead_langchain.py
	$(BIN)/python benchmarks/ledger.py
	$(BIN)/python benchmarks/routing_quality.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
