# make run    the whole stack in the foreground (servers, migrations, models, keys, Procfile)
# make test   the whole suite, with the same bootstrap
# make bench  the benchmarks
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench deps clean-run

deps: $(STAMP) node_modules/.installed

$(STAMP): requirements.txt requirements-test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

# solc and anvil, pinned in package-lock.json
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

run: deps
	$(PY) -m devstack

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: deps
	$(PY) -m bench

clean-run:
	rm -rf .run
