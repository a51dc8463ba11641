# Slotbook developer commands. Everything runs from the project's own .venv.
#
#   make run      start Slotbook locally (SQLite + embedded Redis unless configured otherwise)
#   make test     run the test suite (PYTEST_ARGS="-k something" to narrow it)
#   make lint     ruff check + ruff format --check
#   make format   sort imports and format the code
#   make screenshots  refresh docs/screenshots/ from the browser tests

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Stamps record that the venv holds what the requirements files ask for; pip runs again only
# when a requirements file is newer than its stamp.
STAMP := $(VENV)/.installed-requirements
DEV_STAMP := $(VENV)/.installed-requirements-dev
PYTEST_ARGS ?=

.PHONY: venv run test lint format chromium icaljs axe screenshots

venv: $(STAMP)

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 (python3.11 or python3) is required" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(DEV_STAMP): requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@ $(STAMP)

run: $(STAMP)
	$(BIN)/python -m app.devserver

# Browser tests drive Debian's chromium. Install it when we can (root with apt-get); otherwise
# say so and carry on: only the browser tests need it.
chromium:
	@if [ -x /usr/bin/chromium ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing chromium for the browser tests (apt-get)..."; \
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then \
			echo "WARNING: could not install chromium with apt-get; browser tests will fail." >&2; \
		fi; \
	else \
		echo "WARNING: /usr/bin/chromium is missing and cannot be installed here (needs root and apt-get);" \
			"browser tests will fail. Install Debian's chromium package to run them." >&2; \
	fi

# The .ics tests also read Slotbook's calendars with Mozilla's ical.js under Node, pinned by
# tests/notifications/icaljs/package-lock.json. `npm ci` runs again only when the lock file is
# newer than its stamp; without npm, say so and carry on: only those checks need it.
ICALJS := tests/notifications/icaljs
ICALJS_STAMP := $(ICALJS)/node_modules/.installed-lock

$(ICALJS_STAMP): $(ICALJS)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "WARNING: npm is missing; the ical.js checks in tests/notifications will fail." \
			"Install Node.js 20 and npm to run them." >&2; \
	elif npm ci --prefix $(ICALJS) --no-audit --no-fund --loglevel=error >/dev/null; then \
		touch $@; \
	else \
		echo "WARNING: npm ci failed in $(ICALJS); the ical.js checks will fail." >&2; \
	fi

icaljs: $(ICALJS_STAMP)

# The browser tests inject axe-core (pinned by tests/browser/axe/package-lock.json) into pages
# and fail on serious or critical accessibility findings.
AXE := tests/browser/axe
AXE_STAMP := $(AXE)/node_modules/.installed-lock

$(AXE_STAMP): $(AXE)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "WARNING: npm is missing; the browser tests' accessibility checks will fail." \
			"Install Node.js 20 and npm to run them." >&2; \
	elif npm ci --prefix $(AXE) --no-audit --no-fund --loglevel=error >/dev/null; then \
		touch $@; \
	else \
		echo "WARNING: npm ci failed in $(AXE); the accessibility checks will fail." >&2; \
	fi

axe: $(AXE_STAMP)

test: $(DEV_STAMP) chromium icaljs axe
	$(BIN)/pytest $(PYTEST_ARGS)

# Refresh the screenshots the README links to (the browser tests take them).
screenshots: $(DEV_STAMP) chromium axe
	SLOTBOOK_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest -m browser

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_STAMP)
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .
