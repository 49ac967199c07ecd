# The two set-up commands: `make demo` and `make test`. Both work from a clean clone on a fresh
# Debian 12 machine as root with only python3 (>= 3.11), make and git.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install lint test test-dates demo stack-down clean browser chaos promtool

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

lint: install promtool
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m devtools.lint_deploy deploy/k8s
	promtool check rules deploy/prometheus/paygo-alerts.yml
	$(BIN)/python -c 'import json, sys; [json.load(open(f)) for f in sys.argv[1:]]' deploy/grafana/*.json

test: install lint browser
	cd deploy/prometheus && promtool test rules paygo-alerts.test.yml
	$(BIN)/python -m pytest

# The whole suite as of each date that has turned suites red (the 1st, the 15th, the last of a month,
# 29 February, New Year's Eve in UTC that is New Year's Day in Nairobi), with TZ=UTC and
# TZ=Asia/Phnom_Penh: a line per run (devtools/test_dates.py; its --help says how to pick others).
test-dates: install lint browser
	$(BIN)/python -m devtools.test_dates

# The alert rules are checked and tested with Debian's promtool (package prometheus; its service is
# not started by the tests, only the promtool command is used).
promtool:
	@command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; \
	  else echo "make lint needs promtool: run 'sudo apt-get install prometheus'"; exit 1; fi; }

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
