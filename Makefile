# refstream — `make demo` and `make test` work on a fresh machine (they create .venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint demo bench schemas clean

BENCH_STAMP := $(VENV)/.bench-installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	$(BIN)/python -m pytest

demo: install
	$(BIN)/python -m dev.demo

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Not part of `make test`: about 30 minutes on 2 cores; prints a table, writes bench-results.json.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

schemas: install
	$(BIN)/refstream schemas

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
