# Two commands matter: `make run` (install, migrate, seed the demo, serve) and `make test`.
# Everything a fresh machine needs is installed from here.

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell md5sum pyproject.toml | cut -c1-8)
export RADRELAY_DATA_DIR ?= var

# CI=true adds the PostgreSQL + Redis run of the whole suite.
PG_TEST_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/0

.PHONY: install system-deps frontend run test test-embedded test-scaleout lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# dcmtk: storescu/echoscu/dcmdump as real DICOM peers in the tests.
system-deps:
	@command -v storescu >/dev/null || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dcmtk; }

install: $(STAMP) system-deps

run: install
	$(BIN)/radrelay migrate
	$(BIN)/radrelay demo
	@echo "RadRelay: http://127.0.0.1:8000 (API docs at /docs), DICOM on port 11112, AE title RADRELAY"
	$(BIN)/radrelay serve --host 127.0.0.1 --port 8000 --dicom-port 11112

lint: install
	$(BIN)/ruff check backend tests bench
	$(BIN)/ruff format --check backend tests bench

test-embedded: install
	$(BIN)/pytest

test-scaleout: install
	RADRELAY_TEST_DATABASE_URL=$(PG_TEST_URL) RADRELAY_TEST_REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest

test: lint test-embedded
	@if [ "$(CI)" = "true" ]; then $(MAKE) --no-print-directory test-scaleout; fi

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var test-artifacts
