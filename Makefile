# Gatherly: every target bootstraps .venv itself from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_DEFAULT := postgresql+psycopg://postgres@127.0.0.1:5432/test
# Run the suite on PostgreSQL too when a server answers on 127.0.0.1:5432.
PG_UP := $(shell $(PYTHON) -c "import socket; s=socket.socket(); s.settimeout(1); print(1 if s.connect_ex(('127.0.0.1', 5432)) == 0 else '')" 2>/dev/null)
GATHERLY_TEST_POSTGRES_URL ?= $(if $(PG_UP),$(PG_DEFAULT),)
export GATHERLY_TEST_POSTGRES_URL
# One worker more than cores: many tests wait on a browser, a worker process or HTTP.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(len(os.sched_getaffinity(0)) + 1)")

.PHONY: demo test lint chromium bench bench-load bench-sync bench-segments bench-email bench-journeys bench-matching bench-scoring bench-reports bench-discovery bench-notifications format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $(VENV)/.installed $(VENV)/.installed-test $@

# `make demo PORT=8010` serves on another port when 8000 is taken.
demo: $(VENV)/.installed
	$(BIN)/gatherly demo $(if $(PORT),--port $(PORT),)

lint: $(VENV)/.installed-test
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# The web UI tests drive Debian's Chromium; install it when it is missing.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "Installing Debian's chromium for the browser tests (apt-get)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

test: lint chromium
	@if [ -n "$$GATHERLY_TEST_POSTGRES_URL" ]; then echo "PostgreSQL tests: on ($$GATHERLY_TEST_POSTGRES_URL)"; else echo "PostgreSQL tests: off (no server on 127.0.0.1:5432)"; fi
	$(BIN)/pytest -n $(TEST_WORKERS)

bench: $(VENV)/.installed-test
	$(BIN)/python bench/access.py

# The L1 load benchmark: locust against `gatherly serve` on PostgreSQL, 1M contacts; 15-25
# minutes (the first run 1 more, to build the data). A quick run:
# `make bench-load ARGS="--contacts 50000 --duration 30 --step-seconds 15"`.
bench-load: $(VENV)/.installed-bench
	$(BIN)/python bench/load.py $(ARGS)

bench-sync: $(VENV)/.installed-test
	$(BIN)/python bench/sync.py

bench-segments: $(VENV)/.installed-test
	$(BIN)/python bench/segments.py

bench-email: $(VENV)/.installed-test
	$(BIN)/python bench/email_send.py

bench-journeys: $(VENV)/.installed-test
	$(BIN)/python bench/journeys.py

bench-matching: $(VENV)/.installed-test
	$(BIN)/python bench/matching.py

bench-scoring: $(VENV)/.installed-test
	$(BIN)/python bench/scoring.py

bench-reports: $(VENV)/.installed-test
	$(BIN)/python bench/reports.py

bench-discovery: $(VENV)/.installed-test
	$(BIN)/python bench/discovery.py

bench-notifications: $(VENV)/.installed-test
	$(BIN)/python bench/notifications.py

# R3: 2 API processes and 2 workers on PostgreSQL + Redis under load for 10 minutes, a
# worker killed every minute; prints what was done and every invariant's verdict.
# `make bench-soak ARGS="--minutes 3"`.
.PHONY: bench-soak
bench-soak: $(VENV)/.installed-test
	$(BIN)/python bench/soak.py $(ARGS)

# S1: the access property against its oracle on 10,000 random organisations (about 20
# minutes on SQLite; on PostgreSQL too when GATHERLY_TEST_POSTGRES_URL is set).
.PHONY: test-authz-long
test-authz-long: $(VENV)/.installed-test
	$(BIN)/pytest -p no:xdist -s -q --timeout 0 --hypothesis-profile long tests/properties/test_access_property.py

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
