# Two commands set up everything: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first, pinned, so that pip never resolves a second multi-GB build for the project.
# Override for your machine, e.g. TORCH_PACKAGES="torch torchvision --index-url https://download.pytorch.org/whl/cu124"
TORCH_PACKAGES ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast bench bench-full load test-tools clean help

help:
	@echo "make run    - install, start worker + app (queues a demo job if no model exists)"
	@echo "make test   - install and run the whole test suite (starts what it needs)"
	@echo "make bench  - training, PNG and /generate benchmarks (CPU)"
	@echo "make load   - 60 s load run against a local app while a job trains"

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install $(TORCH_PACKAGES)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: install
	@bash scripts/run-local.sh

test-tools:
	@bash scripts/ensure-test-tools.sh

test: install test-tools
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow and not browser"

bench: install
	$(PY) benchmarks/train_bench.py
	$(PY) benchmarks/png_bench.py
	$(PY) benchmarks/generate_bench.py

bench-full: install
	$(PY) benchmarks/train_bench.py --full

load: install
	$(PY) benchmarks/load_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
