# Two commands for a new machine: `make demo` and `make test`. Each creates .venv and installs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: install demo test lint pytest bench-probes bench-alerts bench-triage bench-tui clean

$(STAMP): pyproject.toml core/__init__.py cli/__init__.py tui/__init__.py styles/__init__.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "opswatch needs Python 3.11 or newer (found %s); set PYTHON=python3.11" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/opswatch demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check core cli tui tests bench
	$(BIN)/ruff format --check core cli tui tests bench
	$(BIN)/mypy core cli tui

pytest: $(STAMP)
	$(BIN)/pytest -q $(ARGS)

test: lint pytest

bench-probes: $(STAMP)
	$(BIN)/python -m bench.probes $(ARGS)

bench-triage: $(STAMP)
	$(BIN)/python -m bench.triage $(ARGS)

bench-alerts: $(STAMP)
	$(BIN)/python -m bench.alerts $(ARGS)

bench-tui: $(STAMP)
	$(BIN)/python -m bench.tui $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
