# chainrule: `make demo` and `make test` work on a fresh clone; both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
OUT ?= out/demo

.PHONY: demo test lint bench graphviz chromium clean

# `make demo` installs only what the demo runs (chainrule, NumPy, and the viz extra: matplotlib
# for the training plot, rich for its progress bar); `make test` adds everything the tests use
# (test tools with PyTorch as the oracle, the data, mpi and explorer extras, Playwright).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[viz]'
	touch $(STAMP)

TEST_STAMP := $(VENV)/.installed-test-stamp
$(TEST_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[viz,data,test,mpi,explore,explore-test]'
	touch $(TEST_STAMP)

# Graphviz renders the diagrams; without it chainrule still writes DOT files.
graphviz:
	@command -v dot >/dev/null 2>&1 || \
	  (command -v apt-get >/dev/null 2>&1 && \
	   (apt-get install -y -qq graphviz >/dev/null 2>&1 || \
	    (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq graphviz >/dev/null 2>&1))) || \
	  echo "note: Graphviz's 'dot' is not installed (apt-get install graphviz); diagrams are written as DOT only"

# Debian's chromium runs the explorer's end-to-end tests (Playwright's own browser download is
# not used); without it those tests are skipped.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  (command -v apt-get >/dev/null 2>&1 && \
	   (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1))) || \
	  echo "note: chromium is not installed (apt-get install chromium); the browser tests are skipped"

demo: $(STAMP) graphviz
	$(PY) -m chainrule demo --out $(OUT)

test: $(TEST_STAMP) graphviz chromium
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples
	$(PY) -m pytest

lint: $(TEST_STAMP)
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[viz,data,test,mpi,bench]'
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
	  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=268435456 \
	  $(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
