# Two commands for readers: `make book` (the executed book) and `make test` (the suite).
# Both create .venv with the pinned versions on first use and reuse it afterwards.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# progress bars are for people at a terminal, not for logs and the rendered book
export MMNB_PROGRESS ?= 0

.PHONY: help setup test lint unit notebooks book book-fast bench clean

help:
	@echo "make book   build the executed book into _build/html"
	@echo "make test   lint, unit tests, every chapter under nbval, a fast book build"
	@echo "make bench  performance measurements (benchmarks/)"

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "mmnb needs Python >= 3.10"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e ".[book,dev,dask]"
	@touch $@

test: setup lint unit notebooks book-fast

lint: setup
	$(BIN)/ruff check mmnb tests benchmarks

unit: setup
	$(BIN)/python -m pytest tests -q

notebooks: setup
	$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=1800 chapters -q

# execution off: catches a broken toc, references, math and MyST syntax quickly
book-fast: setup
	$(BIN)/python -c 'import yaml, pathlib; c = yaml.safe_load(open("_config.yml")); \
		c["execute"]["execute_notebooks"] = "off"; pathlib.Path("_build").mkdir(exist_ok=True); \
		yaml.safe_dump(c, open("_build/_config_fast.yml", "w"))'
	$(BIN)/jupyter-book build . --config _build/_config_fast.yml --path-output _build/fast \
		--warningiserror --keep-going --quiet

book: setup
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "open _build/html/index.html"

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf _build
