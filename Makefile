# o2c — order-to-cash services. `make run` starts everything; `make test` runs the suite.
# The first use creates .venv and installs the project; later runs reuse it.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	  if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; \
	  then command -v $$p; break; fi; done)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-postgres test-faults lint bench clean help

help:
	@echo "make run            start all four services on SQLite (./var)"
	@echo "make test           run the whole suite on SQLite"
	@echo "make test-postgres  run the suite on a throwaway PostgreSQL database"
	@echo "make test-faults    fault injection: the services as processes, killed on purpose, on SQLite"
	@echo "                    and PostgreSQL (FAULTS_BOUNDED=1: the small form CI runs)"
	@echo "make lint           ruff"
	@echo "make bench          figures: service calls; payments vs bare inserts; aging report and"
	@echo "                    overdue scan over 1,000,000 invoices vs bare SQL (PostgreSQL); a"
	@echo "                    10,000-row CSV import of open invoices vs the same rows bare; write"
	@echo "                    paths vs bare endpoints issuing the same SQL, and the whole lifecycle;"
	@echo "                    1 vs 2 replicas; webhook fan-out and event -> webhook latency"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

run: $(STAMP)
	$(BIN)/o2c run $(if $(PORT_BASE),--port-base $(PORT_BASE)) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

# One pytest-xdist worker per core (each with its own databases); TEST_JOBS=0 runs in one process.
TEST_JOBS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) $(PYTEST_ARGS)

# PG_SERVER is a PostgreSQL server URL (default: local, user postgres, trust auth).
PG_SERVER ?= postgresql://postgres@127.0.0.1:5432/postgres
test-postgres: $(STAMP)
	@db=o2c_test_$$$$; \
	O2C_TEST_PG_SERVER=$(PG_SERVER) $(BIN)/python tests/pg_admin.py create $$db || exit 1; \
	trap "O2C_TEST_PG_SERVER=$(PG_SERVER) $(BIN)/python tests/pg_admin.py drop $$db" EXIT; \
	O2C_TEST_POSTGRES_URL=$$(echo $(PG_SERVER) | sed "s#^postgresql://#postgresql+asyncpg://#; s#/[^/]*\$$#/$$db#") \
	  $(BIN)/python -m pytest -n $(TEST_JOBS) $(PYTEST_ARGS)

# Fault injection (tests/faults): real processes SIGKILLed at random moments and at failpoints,
# on SQLite files and on throwaway PostgreSQL databases of PG_SERVER (created and dropped).
# The full form by default; FAULTS_BOUNDED=1 is the bounded form CI runs.
test-faults: $(STAMP)
	O2C_FAULTS_PG_SERVER=$(PG_SERVER) $(if $(FAULTS_BOUNDED),O2C_FAULTS_BOUNDED=1) \
	  $(BIN)/python -m pytest -m faults -rA tests/faults $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench.http_client
	$(BIN)/python -m bench.payments
	$(BIN)/python -m bench.aging
	$(BIN)/python -m bench.imports
	$(BIN)/python -m bench.write_paths --core-floor $(WRITE_PATHS_ARGS)
	$(BIN)/python -m bench.replicas
	$(BIN)/python -m bench.webhooks --form batch

clean:
	rm -rf var .pytest_cache .ruff_cache
