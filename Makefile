# Two commands for readers: `make book` (the executed book) and `make test` (the suite).
# Both create .venv with the pinned versions on first use and reuse it afterwards.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# progress bars are for people at a terminal, not for logs and the rendered book
export MMNB_PROGRESS ?= 0

.PHONY: help setup test lint unit notebooks suite book book-fast check-book check-book-fast \
	test-installs test-lower-bounds bench clean maps check-maps check-maps-rerun

help:
	@echo "make book              build the executed book into _build/html (only changed"
	@echo "                       pages run again) and check it in headless Chromium"
	@echo "make test              lint, unit tests, every chapter under nbval, a fast book build"
	@echo "                       checked in headless Chromium"
	@echo "make check-book        check _build/html in Chromium, screenshots in _build/screenshots"
	@echo "make test-installs     install the wheel in a fresh venv, run chapter 00 as in Colab"
	@echo "make test-lower-bounds the same at the oldest dependency versions pyproject allows"
	@echo "make bench             performance measurements (benchmarks/)"
	@echo "make maps              the regime maps in data/maps/ (MAPS=01_snr for one chapter,"
	@echo "                       JOBS=2 notebooks at a time, SCHEDULER=tcp://... for Dask)"

setup: $(STAMP)

# pip byte-compiles the installed modules one by one (about 40 of the 70 s a clean clone
# takes here); compileall does the same work on every core, skipping as pip does the few
# files some packages ship that are not Python 3 (hence `|| true`)
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "mmnb needs Python >= 3.10"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile \
		-c constraints.txt -e ".[book,dev,dask]"
	$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c 'import sysconfig; \
		print(sysconfig.get_paths()["purelib"])') >/dev/null || true
	@touch $@

test: setup lint suite

# chapters are linted and formatted too (chapters/ruff.toml: 86 columns, 88 for long lines)
lint: setup
	$(BIN)/ruff check mmnb tests benchmarks tools chapters
	$(BIN)/ruff format --check mmnb tests benchmarks tools chapters

# includes tests/test_packaging.py: the wheel in a fresh venv runs chapter 00 as in Colab
# two workers: the chapters and most tests run on one thread each (2 cores here)
unit: setup
	$(BIN)/python -m pytest tests -q -n 2 --dist loadfile

notebooks: setup
	MMNB_THREADS=1 $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=1800 chapters -q -n 2 --dist loadscope

# `make test` runs the unit tests and the chapters in one session on two workers, one
# thread each, the longest files first, so that neither core idles at the end
LONGEST_FIRST := chapters/05_intrinsic_dimension.ipynb chapters/06_five_lenses.ipynb \
	chapters/04_identifiability.ipynb chapters/03_pmi.ipynb \
	chapters/02_matrix_factorization.ipynb tests/test_book_fast.py tests/test_packaging.py \
	chapters/01_snr.ipynb \
	tests/test_runs.py tests/test_maps.py tests/test_faults.py tests/test_config_property.py \
	chapters/00_contrastive_learning.ipynb
SUITE := $(LONGEST_FIRST) \
	$(filter-out $(LONGEST_FIRST),$(sort $(wildcard chapters/*.ipynb tests/test_*.py)))
suite: setup check-maps
	MMNB_THREADS=1 $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=1800 -q \
		-n $(or $(JOBS),2) --dist loadfile --no-loadscope-reorder --durations=15 $(SUITE)

# a stored regime map made by other code than the chapter's now stops the build
check-maps: setup
	$(BIN)/python tools/maps.py --check

# CELLS random cells of every stored map run again and compared with the stored values
# (make test reruns one cell of one map; each cell is a chapter run, 0.5-2.5 core-minutes)
check-maps-rerun: setup
	MMNB_MAP_RERUN_CELLS=$(or $(CELLS),1) $(BIN)/python -m pytest -n $(or $(JOBS),2) -q \
		tests/test_maps.py -k every_map

# each map sweeps its chapter over two knobs (data/maps/<chapter>/, times in the README);
# finished runs are kept in _build/maps/, so an interrupted `make maps` resumes
maps: setup
	MMNB_PROGRESS=1 MMNB_THREADS=1 $(BIN)/python tools/maps.py $(MAPS) \
		$(if $(SCHEDULER),--scheduler $(SCHEDULER),--jobs $(or $(JOBS),2))

# execution off: catches a broken toc, references, math and MyST syntax quickly (glued
# numbers and numbered figures exist only in an executed build: tools/book_fast.py);
# `make test` runs it and check-book-fast as one test of the suite (tests/test_book_fast.py)
book-fast: setup check-maps
	$(BIN)/python tools/book_fast.py

# a figure without a numbered caption or alt text fails the check (MMNB_CHECK_FIGURES=0
# make ... only counts them)
check-book-fast: setup
	$(BIN)/python tools/check_book.py _build/fast/_build/html

# a page runs again only when its code, the mmnb modules it imports or its data changed;
# those pages run two at a time (one thread each) before jupyter-book renders the cache
book: setup check-maps
	$(BIN)/python tools/book_cache.py --cache _build/.jupyter_cache --jobs 2
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	$(MAKE) --no-print-directory check-book
	@echo "open _build/html/index.html"

check-book: setup
	$(BIN)/python tools/check_book.py _build/html --screenshots _build/screenshots

# the wheel in a fresh venv runs chapter 00 as in Colab: newest dependencies (also part of
# `make unit`) and, with test-lower-bounds, the oldest that pyproject.toml allows (slow:
# old releases are downloaded)
test-installs: setup
	$(BIN)/python -m pytest tests/test_packaging.py -q

test-lower-bounds: setup
	MMNB_LOWER_BOUNDS=1 $(BIN)/python -m pytest tests/test_packaging.py -q -k lower_bounds

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf _build
