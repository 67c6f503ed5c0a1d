# refstream — `make demo` and `make test` work on a fresh machine (they create .venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-tansu lint demo bench soak schemas clean

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

# The broker is chosen by tests/integration/conftest.py (the pytest header names it):
# Apache Kafka from dev/kafka.py where Java and Maven are installed, else the embedded Tansu.
test: install lint
	$(BIN)/python -m pytest

# The demo's embedded broker: the tests that cover REFSTREAM_BROKER_COMPAT=tansu, on Tansu.
TANSU_TESTS := tests/integration/test_tansu.py \
	tests/integration/test_commands.py \
	"tests/integration/test_join.py::test_join_is_exact_against_the_rules" \
	"tests/integration/test_join.py::test_kill_9_mid_stream_recovers_exactly[rocksdb://]" \
	"tests/integration/test_sinks.py::test_every_attribution_reaches_each_vendor_exactly_once"
test-tansu: install
	REFSTREAM_TEST_BROKER=tansu $(BIN)/python -m pytest $(TANSU_TESTS)

# `make demo DEMO_ARGS=--keep`: in a terminal, the worker stays up (its /roi page) until Enter.
demo: install
	$(BIN)/python -m dev.demo $(DEMO_ARGS)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Not part of `make test`: about 30 minutes on 2 cores; prints a table, writes bench-results.json.
# One section: make bench BENCH_ARGS="--only gateway" (needs wrk: apt-get install wrk).
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Not part of `make test`: ONE HOUR (issue 17 item 4): 500 events/s through two workers,
# a kill -9 every 10 min, a vendor down 2 min every 15; writes soak-results.json. Shorter:
# REFSTREAM_SOAK_SECONDS=300 REFSTREAM_SOAK_KILL_EVERY=100 REFSTREAM_SOAK_OUTAGE_EVERY=120
# REFSTREAM_SOAK_OUTAGE_SECONDS=30 REFSTREAM_SOAK_WARMUP=60 (tests/integration/soak.py).
soak: install
	$(BIN)/python -m pytest -m slow tests/integration/test_soak.py -s

schemas: install
	$(BIN)/refstream schemas

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
