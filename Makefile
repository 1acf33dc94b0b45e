# udl: set-up, build, test, report. `make test` and `make report` are all a fresh clone needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The nvcc on PATH may be a wrapper script: setup.py finds the real toolkit it runs.
export TORCH_CUDA_ARCH_LIST ?= 9.0
NATIVE_SRC := $(shell find csrc -name '*.cpp' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh' 2>/dev/null)
EXT_STAMP := .stamp-build

.PHONY: venv build test test-fast report report-quick bench lint cmake-check clean gpu-check

## Create .venv and install the pinned dependencies (once; again when a requirements file changes).
venv: .stamp-venv
.stamp-venv: requirements.txt requirements-peers.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	@# Peers for benchmarks/comparison tests: best effort, one at a time.
	@grep -Ev '^\s*(#|$$)' requirements-peers.txt | while read -r pkg; do \
	  $(PIP) install -q "$$pkg" >/dev/null 2>&1 || echo "note: optional peer '$$pkg' did not install"; \
	done
	touch $@

## Build udl._C in place (incremental: ninja rebuilds only what changed).
build: .stamp-venv .stamp-editable $(EXT_STAMP)
.stamp-editable: .stamp-venv setup.py pyproject.toml
	UDL_NO_EXT=1 $(PIP) install -q --no-build-isolation --no-deps -e . >/dev/null
	touch $@
$(EXT_STAMP): .stamp-editable $(NATIVE_SRC)
	$(PY) setup.py -q build_ext --inplace
	$(PY) -c "import udl; print('udl._C ok:', udl.BUILD_INFO)"
	touch $@

## The whole test suite (the README's test command; CI runs it).
test: build
	$(PY) -m pytest -q -p no:cacheprovider tests

## Quick tests only (skips tests marked slow).
test-fast: build
	$(PY) -m pytest -q -m "not slow" tests

## The main job: every method's miniature reproduction -> udl-report/index.html
report: build
	$(VENV)/bin/udl report --out udl-report

report-quick: build
	$(VENV)/bin/udl report --quick --out udl-report

## Side-by-side benchmarks (ratios against peers) and pytest-benchmark JSON.
bench: build
	$(VENV)/bin/udl bench --out benchmarks/results/side_by_side_cpu.json
	$(PY) -m pytest benchmarks/ --benchmark-only --benchmark-json=benchmarks/results/pytest_benchmark_cpu.json

lint: .stamp-venv
	$(VENV)/bin/ruff check pyext tests benchmarks scripts

## Separate CMake build of csrc/ against libtorch (CPU), for C++ users.
cmake-check: .stamp-venv
	scripts/cmake_check.sh

clean:
	rm -rf build cmake-build cmake-build.log pyext/udl/*.so $(EXT_STAMP) udl-report
