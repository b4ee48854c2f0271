# Developer entry points: `make dev` runs the whole stack, `make test` and `make check` gate a change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install dev test check

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed since the last install. pip's full output goes to
# .venv/install.log; the terminal gets a dot per package (a first install takes a minute or so).
$(STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "installing orderflow and its dependencies into $(VENV) (log: $(VENV)/install.log)"
	@$(VENV)/bin/pip install --disable-pip-version-check --progress-bar off -e '.[dev]' > $(VENV)/install.log 2>&1 & \
	pip=$$!; seen=0; \
	while kill -0 $$pip 2>/dev/null; do \
		now=$$(grep -c '^Collecting ' $(VENV)/install.log); \
		while [ $$seen -lt $$now ]; do printf .; seen=$$((seen + 1)); done; \
		sleep 0.5; \
	done; \
	if wait $$pip; then echo " done"; else echo " failed:"; tail -n 30 $(VENV)/install.log; exit 1; fi
	@touch $(STAMP)

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
