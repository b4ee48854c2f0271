# Developer entry points: `make dev` runs the whole stack, `make test` and `make check` gate a change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install dev test check

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

dev: install
	exec $(VENV)/bin/python -m scripts.devstack

test: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

.PHONY: bench

# Benchmarks (never run as tests): each prints a table with ratios against its own baseline.
bench: install
	$(VENV)/bin/python -m bench.run_all $(BENCH_ARGS)
