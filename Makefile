# Slotbook developer commands. Everything runs from the project's own .venv.
#
#   make run      start Slotbook locally (SQLite + embedded Redis unless configured otherwise)
#   make test     run the test suite (PYTEST_ARGS="-k something" to narrow it, TEST_WORKERS=0
#                 to run it in one process)
#   make lock     regenerate the lock files after editing a requirements*.txt file
#   make lint     ruff check + ruff format --check
#   make format   sort imports and format the code
#   make screenshots  refresh docs/screenshots/ from the browser tests

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Installs come from lock files: every package, direct or not, at one version with its hashes.
# requirements.txt (production), requirements-local.txt (+ the embedded Redis of `make run`)
# and requirements-dev.txt (+ tests, lint, the lock tool) hold the direct pins; `make lock`
# turns each into its .lock (uv pip compile --generate-hashes), the local lock constrained by
# the production one and the dev lock by the local one, so all three agree on shared versions.
LOCK := requirements.lock
LOCAL_LOCK := requirements-local.lock
DEV_LOCK := requirements-dev.lock
PIP_INSTALL := $(BIN)/pip install --quiet --require-hashes
# Stamps record that the venv holds what a lock file asks for; pip runs again only when the
# lock file is newer than its stamp.
STAMP := $(VENV)/.installed-requirements
LOCAL_STAMP := $(VENV)/.installed-requirements-local
DEV_STAMP := $(VENV)/.installed-requirements-dev
PYTEST_ARGS ?=
LOCK_ARGS ?=
UV_COMPILE := $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock" $(LOCK_ARGS)

.PHONY: venv run test lint format chromium icaljs axe screenshots lock

venv: $(STAMP)

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 (python3.11 or python3) is required" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(LOCK) | $(BIN)/python
	$(PIP_INSTALL) -r $(LOCK)
	@touch $@

$(LOCAL_STAMP): $(LOCAL_LOCK) | $(BIN)/python
	$(PIP_INSTALL) -r $(LOCAL_LOCK)
	@touch $@ $(STAMP)

$(DEV_STAMP): $(DEV_LOCK) | $(BIN)/python
	$(PIP_INSTALL) -r $(DEV_LOCK)
	@touch $@ $(LOCAL_STAMP) $(STAMP)

# Regenerate the lock files from the requirements*.txt pins. Versions already locked are kept
# unless a pin moved them; `make lock LOCK_ARGS=--upgrade` moves every unpinned one to its
# newest release. Needs PyPI. Commit the three .lock files with the .txt change.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet "$$(grep -E '^uv==' requirements-dev.txt)"
	$(UV_COMPILE) requirements.txt -o $(LOCK)
	$(UV_COMPILE) requirements-local.txt -c $(LOCK) -o $(LOCAL_LOCK)
	$(UV_COMPILE) requirements-dev.txt -c $(LOCAL_LOCK) -o $(DEV_LOCK)

run: $(LOCAL_STAMP)
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

# The suite runs in TEST_WORKERS processes (pytest-xdist), each with its own databases, Redis
# and browser; much of a test's time is spent waiting on servers and subprocesses, so three
# workers beat two on a 2-core machine. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 3

test: $(DEV_STAMP) chromium icaljs axe
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# Refresh the screenshots the README links to (the browser tests take them).
screenshots: $(DEV_STAMP) chromium axe
	SLOTBOOK_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest -m browser

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_STAMP)
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .
