# Two commands for a newcomer: `make demo` (the main job) and `make test` (`make test-fast` while developing).
# Both create .venv with Python 3.10 when it is missing and install the pins.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATASET ?= synthetic
PYTEST_ARGS ?=
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONWARNINGS ?= ignore::FutureWarning,ignore::DeprecationWarning

.PHONY: demo test test-fast setup clean help

help:
	@echo "make demo   run the main job on the embedded synthetic data (DATASET=movielens-1m for real data)"
	@echo "make test   run the whole test suite (what CI runs)"
	@echo "make test-fast  the suite without the tests marked slow (trainings, runs, sweeps, subprocesses, servers): < 2 min"
	@echo "make setup  create .venv and install the pinned requirements"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@bash scripts/setup_venv.sh $(VENV)
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/diit demo --dataset $(DATASET)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf runs/ .pytest_cache
