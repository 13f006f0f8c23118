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

FRONTEND_DEPS := frontend/node_modules/.package-lock.json
FRONTEND_SRC := $(shell find frontend/src frontend/public -type f 2>/dev/null) \
	frontend/index.html frontend/vite.config.ts frontend/tsconfig.json frontend/package.json

.PHONY: install system-deps frontend run test test-embedded test-scaleout test-frontend lint bench bench-orthanc clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# dcmtk: storescu/echoscu/dcmdump as real DICOM peers in the tests; zip writes a really
# encrypted archive for them. poppler-utils (pdftotext, pdfsig) with poppler-data (the Adobe-GB1
# CMaps that read the STSong-Light text), libnss3-tools (certutil: the NSS trust store pdfsig
# reads) and fonts-wqy-microhei (a TrueType CJK font to embed) check the report PDFs. Under
# CI=true also Debian's chromium, which the browser tests (tests/e2e, Playwright) drive:
# Playwright downloads no browser.
system-deps:
	@command -v storescu >/dev/null && command -v zip >/dev/null && command -v pdfsig >/dev/null \
	  && command -v certutil >/dev/null && test -d /usr/share/poppler/cMap/Adobe-GB1 \
	  && test -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    dcmtk zip poppler-utils poppler-data libnss3-tools fonts-wqy-microhei; }
	@if [ "$(CI)" = "true" ] && [ ! -x /usr/bin/chromium ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; fi

$(FRONTEND_DEPS): frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $(FRONTEND_DEPS)

frontend/dist/index.html: $(FRONTEND_DEPS) $(FRONTEND_SRC)
	cd frontend && npm run build

frontend: frontend/dist/index.html

install: $(STAMP) system-deps frontend

# The demo declares a study complete after 15 s of quiet instead of the default 60 s.
run: export RADRELAY_STABLE_AGE_SECONDS ?= 15
run: install
	$(BIN)/radrelay migrate
	$(BIN)/radrelay demo
	@echo "RadRelay: http://127.0.0.1:8000 (API docs at /docs), DICOM on port 11112, AE title RADRELAY"
	$(BIN)/radrelay serve --host 127.0.0.1 --port 8000 --dicom-port 11112

lint: install
	$(BIN)/ruff check backend tests bench
	$(BIN)/ruff format --check backend tests bench
	$(BIN)/mypy

# The browser tests run under CI=true (system-deps installs chromium) or where /usr/bin/chromium
# is; elsewhere they are deselected. `install` builds the UI (frontend/dist) they load first.
BROWSER_TESTS := $(if $(or $(filter true,$(CI)),$(wildcard /usr/bin/chromium)),,-m "not browser")

test-embedded: install
	$(BIN)/pytest $(BROWSER_TESTS)

# The same suite, browser tests included, on PostgreSQL + Redis with an arq worker.
test-scaleout: install
	RADRELAY_TEST_DATABASE_URL=$(PG_TEST_URL) RADRELAY_TEST_REDIS_URL=$(REDIS_TEST_URL) \
	  $(BIN)/pytest $(BROWSER_TESTS)

test-frontend: $(FRONTEND_DEPS)
	cd frontend && npm run lint && npm test

test: lint test-frontend test-embedded
	@if [ "$(CI)" = "true" ]; then $(MAKE) --no-print-directory test-scaleout; fi

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/dicomweb.py
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/reports.py

# RadRelay next to Debian's Orthanc in a private network namespace (root; installs orthanc).
bench-orthanc: install
	bench/compare_orthanc.sh

clean:
	rm -rf $(VENV) var test-artifacts frontend/node_modules frontend/dist
