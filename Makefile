# Two commands for a newcomer on a fresh Debian machine:
#   make demo   installs what is missing, starts the embedded PostGIS, loads the
#               demo county and serves the map at http://127.0.0.1:8000
#   make test   installs what is missing and runs every check and test
# Any target first creates .venv/ with the `wangge` command installed.

PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := install
.PHONY: install demo serve test lint typecheck layers pytest bench db-start db-stop clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps
	scripts/install-system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/wangge db start
	$(BIN)/wangge migrate
	$(BIN)/wangge demo --live
	$(BIN)/wangge serve --port $(PORT)

serve: $(STAMP)
	$(BIN)/wangge serve --port $(PORT)

test: $(STAMP)
	scripts/install-system-deps --browser
	$(MAKE) --no-print-directory lint typecheck layers pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy api db geo bench

layers: $(STAMP)
	$(BIN)/lint-imports

# pytest exits 5 when it collects no test: make treats that as a failure.
pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run

db-start: $(STAMP)
	$(BIN)/wangge db start

db-stop: $(STAMP)
	$(BIN)/wangge db stop

clean:
	-$(BIN)/wangge db stop
	rm -rf $(VENV) var test-artifacts
