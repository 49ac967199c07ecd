# The two set-up commands: `make demo` and `make test`. Both work from a clean clone on a fresh
# Debian 12 machine as root with only python3 (>= 3.11), make and git.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install lint test test-dates demo stack-down clean browser chaos

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed")'
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; \
	  else echo "python3 has no venv module: run 'sudo apt-get install python3-venv'"; exit 1; fi; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: install lint browser
	$(BIN)/python -m pytest

# The whole suite as of each date that has turned suites red (the 1st, the 15th, the last of a month,
# 29 February, New Year's Eve in UTC that is New Year's Day in Nairobi), with TZ=UTC and
# TZ=Asia/Phnom_Penh: a line per run (devtools/test_dates.py; its --help says how to pick others).
test-dates: install lint browser
	$(BIN)/python -m devtools.test_dates

# The page tests drive Debian's chromium through Playwright (never a browser download).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	  else echo "the browser tests need Debian's chromium: run 'sudo apt-get install chromium'"; exit 1; fi; }

demo: install
	$(BIN)/paygo demo

# The chaos run on the HA stack (docs/operations.md): about 4 minutes; prints the faults and the checks.
chaos: install
	$(BIN)/paygo chaos

stack-down:
	$(BIN)/paygo stack down

clean: stack-down
	rm -rf $(VENV) .paygo
