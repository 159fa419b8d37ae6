# make run    the whole stack in the foreground (servers, migrations, models, keys, Procfile)
# make test   the whole suite, with the same bootstrap
# make bench  the benchmarks
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench deps clean-run chromium

deps: $(STAMP) node_modules/.installed chromium

$(STAMP): requirements.txt requirements-test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt
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

run: deps
	$(PY) -m devstack

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: deps
	$(PY) -m bench $(BENCH_ARGS)

clean-run:
	rm -rf .run
