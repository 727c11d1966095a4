# chainrule: `make demo` and `make test` work on a fresh clone; both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
OUT ?= out/demo

.PHONY: demo test lint bench graphviz clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[viz,data,test,mpi]'
	touch $(STAMP)

# Graphviz renders the diagrams; without it chainrule still writes DOT files.
graphviz:
	@command -v dot >/dev/null 2>&1 || \
	  (command -v apt-get >/dev/null 2>&1 && \
	   (apt-get install -y -qq graphviz >/dev/null 2>&1 || \
	    (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq graphviz >/dev/null 2>&1))) || \
	  echo "note: Graphviz's 'dot' is not installed (apt-get install graphviz); diagrams are written as DOT only"

demo: $(STAMP) graphviz
	$(PY) -m chainrule demo --out $(OUT)

test: $(STAMP) graphviz
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[viz,data,test,mpi,bench]'
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
	  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=268435456 \
	  $(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
