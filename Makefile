# Two commands do all the set-up on a fresh machine: `make lab` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: lab test lint layers typecheck notebooks bench chromium screenshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,lab,autogen]'
	touch $@

# A second environment without the autogen extra: the package must type-check where AutoGen is absent.
BARE ?= .venv-bare
BARE_STAMP := $(BARE)/.installed
$(BARE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BARE)
	$(BARE)/bin/python -m pip install --quiet --upgrade pip
	$(BARE)/bin/python -m pip install --quiet -e '.[dev]'
	touch $@

## JupyterLab's and Notebook 7's defaults in this environment (lab/overrides.json): widget state is
## saved with the notebook, so a notebook reopened without its kernel still shows its panels.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_SETTINGS): lab/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp lab/overrides.json $@

## Open JupyterLab on the quickstart notebook (offline emulator unless ANTHROPIC_API_KEY is set).
## As root (containers), Jupyter refuses to start without --allow-root.
lab: $(STAMP) $(LAB_SETTINGS)
	$(BIN)/jupyter lab $(if $(SUDO),,--allow-root) notebooks/quickstart.ipynb

## Debian's chromium for the browser test (never a downloaded browser).
chromium:
	@command -v $(CHROMIUM) >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

LINTED := pcache_magic tests benchmarks scripts

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

## The layers of design.md, as import-linter contracts in pyproject.toml.
layers: $(STAMP)
	$(BIN)/lint-imports

## mypy with the autogen extra installed, and again without it: everything but the AutoGen
## integration (whose base classes are AutoGen's) must type-check where AutoGen is absent.
typecheck: $(STAMP) $(BARE_STAMP)
	$(BIN)/mypy
	$(BARE)/bin/mypy --exclude 'pcache_magic/(integrations|autogen)/'

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

## The whole suite: lint, layers, types, unit tests, notebooks (nbval) and the real-browser test.
test: $(STAMP) chromium lint layers typecheck
	PCACHE_OFFLINE=1 $(BIN)/python -m pytest $(NBVAL) tests notebooks

## Re-run the notebooks offline and store their outputs (what nbval compares against).
notebooks: $(STAMP)
	$(BIN)/python scripts/run_notebooks.py

## Refresh the screenshots in docs/ from the browser test: panel.png (the widget in JupyterLab) and
## one view of each front-end, theme and width ({jupyterlab,notebook7}-{light,dark}-{1008,700}.png).
screenshot: $(STAMP) chromium
	PCACHE_OFFLINE=1 PCACHE_SCREENSHOT=1 $(BIN)/python -m pytest tests/browser -q

bench: $(STAMP)
	PCACHE_OFFLINE=1 $(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(BARE) .pytest_cache .mypy_cache .ruff_cache
