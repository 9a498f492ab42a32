# Two commands set up everything: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first, pinned, so that pip never resolves a second multi-GB build for the project.
# Override for your machine, e.g. TORCH_PACKAGES="torch torchvision --index-url https://download.pytorch.org/whl/cu126"
TORCH_PACKAGES ?= torch==2.14.1 torchvision==0.29.1
# Unless TORCH_PACKAGES is overridden: on Linux with no NVIDIA GPU, PyTorch's CPU-only build from
# this index when it answers (PyPI's default Linux build carries ~4 GB of CUDA libraries), else PyPI's.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint bench bench-full quality load test-tools clean help wheelhouse compat

help:
	@echo "make run    - install, start worker + app (queues a demo job if no model exists)"
	@echo "make test   - install and run the whole test suite (starts what it needs)"
	@echo "make bench  - training, PNG and /generate benchmarks (CPU)"
	@echo "make load   - 60 s load run against a local app while a job trains"
	@echo "make quality - time to quality of the presets on two image sets (~70 min on 2 cores, resumable)"
	@echo "make wheelhouse - the service's packages as Python 3.12 wheels, for a GPU machine without network"
	@echo "make compat - that machine's stack (Python 3.12, torch 2.11) here: fast tests, CLI, GPU check dry run"

install: $(STAMP)

# One line per step on the screen; pip's output in $(VENV)/install.log (scripts/install.sh).
$(STAMP): pyproject.toml
	@PYTHON="$(PYTHON)" VENV="$(VENV)" TORCH_PACKAGES="$(TORCH_PACKAGES)" TORCH_CPU_INDEX="$(TORCH_CPU_INDEX)" \
	  TORCH_CHOSEN=$(if $(filter file,$(origin TORCH_PACKAGES)),0,1) bash scripts/install.sh
	@touch $(STAMP)

# Build the Docker image and prove the Compose stack on this machine's CPU (docker/smoke.sh).
# Needs a Docker daemon; builds a multi-GB image, so it is not part of `make test`.
.PHONY: docker-smoke
docker-smoke:
	@bash docker/smoke.sh

run: install
	@bash scripts/run-local.sh

test-tools:
	@bash scripts/ensure-test-tools.sh

lint: install
	$(VENV)/bin/ruff check .

test: install test-tools lint
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow and not browser"

bench: install
	$(PY) benchmarks/train_bench.py
	$(PY) benchmarks/png_bench.py
	$(PY) benchmarks/generate_bench.py

bench-full: install
	$(PY) benchmarks/train_bench.py --full

# Time to quality (BENCHMARKS.md): 120 single-thread CPU minutes, ~70 min on 2 cores; resumable (state kept in .bench/quality).
# The emoji image set needs Debian's Noto Color Emoji font, installed here when missing and root.
quality: install
	@$(PY) -c "from benchmarks.image_sets import emoji_font_path; emoji_font_path()" 2>/dev/null \
	  || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	         apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-color-emoji >/dev/null; \
	       else echo "the emoji image set needs: sudo apt-get install fonts-noto-color-emoji" >&2; exit 1; fi; }
	nice -n 5 $(PY) benchmarks/quality_bench.py --work .bench/quality --pictures docs

load: install
	$(PY) benchmarks/load_bench.py

# For a GPU machine without network (docs/deploy.md): benchmarks/gpu_check.sh
# installs these wheels there when fastapi is missing.
wheelhouse: install
	@bash scripts/wheelhouse.sh

# The GPU machine's software stack on this CPU (downloads torch 2.11 once); not part of `make test`.
compat: wheelhouse
	@bash scripts/compat.sh

clean:
	rm -rf $(VENV) .pytest_cache
